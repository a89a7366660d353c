"""Install the load generator, vegeta, into the tool cache (pinned, atomic, cached).

Why vegeta: it presents a client certificate (``-cert/-key/-root-certs``) and
headers, can run closed-loop at a fixed concurrency (``-rate=0 -workers=N
-max-workers=N``), can turn keep-alive off (``-keepalive=false``: a new TCP
connection and a full TLS handshake with the client certificate per request,
since it keeps no TLS session cache unless ``-session-tickets``), and stops
when its targets run out (``-lazy``), which bounds a run by count as well as by
time. The Go module proxy here serves it; bombardier answers 403 and
hey cannot present a client certificate.

Like ``scripts/tools.py``: ``go install`` into a temp folder of the cache, then
one rename into place, so an interrupted build leaves nothing half-written; the
Go module cache keeps downloads for a re-run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench import config as bench_config
from scripts import config
from scripts.steps import StepFailed, say


def install_vegeta() -> Path:
    """The pinned vegeta binary, built with ``go install`` on first use."""
    binary = bench_config.VEGETA
    if binary.exists():
        say(f"    cached: {binary}")
        _link(binary)
        return binary
    if shutil.which("go") is None:
        raise StepFailed("`go` is not on PATH; install Go (>= 1.22) and re-run `make bench`")
    spec = f"{bench_config.VEGETA_MODULE}@{bench_config.VEGETA_VERSION}"
    config.BIN.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=config.CACHE, prefix=".build-"))
    try:
        say(f"    go install {spec} (Go module proxy; first run only, ~15 s)")
        proc = subprocess.run(
            ["go", "install", "-trimpath", spec],
            env={
                **os.environ,
                "GOBIN": str(tmp),
                "GOFLAGS": "-buildvcs=false",
                "CGO_ENABLED": "0",
            },
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise StepFailed(
                f"go install {spec} failed (exit {proc.returncode}):\n{tail}\n"
                "Fix: check access to the Go module proxy (GOPROXY) and re-run `make bench`"
            )
        # A /vN module installs under its base name, not "vN".
        os.replace(tmp / "vegeta", binary)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"    vegeta {bench_config.VEGETA_VERSION} -> {binary}")
    _link(binary)
    return binary


def _link(binary: Path) -> None:
    """Point ``BIN/vegeta`` at the pinned binary (atomically), for use by hand."""
    link = bench_config.VEGETA_LINK
    if link.is_symlink() and os.readlink(link) == binary.name:
        return
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(binary.name)
    os.replace(tmp, link)
