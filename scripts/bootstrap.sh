#!/usr/bin/env bash
# Create (once) the pinned Python venv in the tool cache and link it as .venv.
#
# The venv is keyed by a hash of requirements.txt, so a pin change builds a new
# one and a second run reuses the cached one. A half-built venv (failed or
# interrupted pip) lacks the .complete marker and is rebuilt on the next run.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
# As root, the verifier's and the API's workers run as an unprivileged user
# (scripts/services/accounts.py), so their interpreter and packages must be readable by
# it: the cache lives in /var/cache (not root's 0700 home) and the venv is built
# on Debian's python3.11 (a pyenv build under /root is out of their reach).
if [[ "$(id -u)" == 0 ]]; then
  cache="${ZT_CACHE:-/var/cache/zerotrust}"
  python="${ZT_PYTHON:-/usr/bin/python3.11}"
  if [[ ! -x "$python" ]] || ! "$python" -c 'import ensurepip' 2>/dev/null; then
    echo "==> Debian's python3.11 + venv (apt-get)"
    apt-get update -qq && apt-get install -y -qq python3.11 python3.11-venv >/dev/null
  fi
else
  cache="${ZT_CACHE:-$HOME/.cache/zerotrust}"
  python="${ZT_PYTHON:-python3.11}"
fi
command -v "$python" >/dev/null || python=python3

ver="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$ver" in
  3.11|3.12|3.13) ;;
  *) echo "error: Python >= 3.11 required, found $ver at $(command -v "$python")" >&2; exit 1 ;;
esac

hash="$(sha256sum "$repo/requirements.txt" | cut -c1-12)"
venv="$cache/venv-py$ver-$hash"

if [[ ! -f "$venv/.complete" ]]; then
  echo "==> Python venv $venv (PyPI, pinned requirements.txt)"
  start=$(date +%s)
  mkdir -p "$cache"
  "$python" -m venv --clear "$venv"
  if ! "$venv/bin/pip" install --disable-pip-version-check -q -r "$repo/requirements.txt"; then
    echo "error: pip could not install requirements.txt from PyPI (see above);" \
         "check network access to PyPI and re-run 'make up' (it resumes)" >&2
    exit 1
  fi
  touch "$venv/.complete"
  echo "    done in $(( $(date +%s) - start ))s"
fi
ln -sfn "$venv" "$repo/.venv"
