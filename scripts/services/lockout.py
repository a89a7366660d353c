"""The lockout's bring-up side: the numbers in force, the verifier's folder, nginx's hop.

The verifier counts refused tokens per certificate and locks one out
(``verifier/lockout.py``); nginx keeps its ``locked_out`` answer per serial in the
lockout hop (``nginx/snippets/lockout-hop.conf``). This module gives both what they
need from the state folder:

* the numbers: the verifier's defaults (``verifier/settings.py``: 10 refused tokens in
  60 s lock a certificate out for 300 s) unless ``zt lockout`` saved others in
  ``config.LOCKOUT_SETTING``; they reach the verifier as ``ZT_VERIFIER_LOCKOUT_*``
  (``apps.verifier_env``), so a change replaces it blue/green like any setting;
* the verifier's folder ``config.LOCKOUT_DIR`` (its workers' own, 0700);
* nginx's hop: its socket in a folder only nginx's workers may enter, its cache folder,
  and a generation (a digest of the numbers) in the cache key, so lockouts nginx kept
  under other numbers are never served after a change.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from scripts import config
from scripts.files import read_json, write_atomic
from scripts.services import accounts

CHOICES: Final = {
    "threshold": "ZT_VERIFIER_LOCKOUT_THRESHOLD",
    "window": "ZT_VERIFIER_LOCKOUT_WINDOW_SECONDS",
    "period": "ZT_VERIFIER_LOCKOUT_SECONDS",
}
"""What ``zt lockout`` may set, and the verifier setting each one is."""


EPOCH: Final = "epoch"
"""A random value saved with the numbers: part of nginx's cache generation only, so
saving (even the same numbers again) starts nginx's lockout cache empty."""


def _file() -> dict[str, Any]:
    if not config.LOCKOUT_SETTING.exists():
        return {}
    found = read_json(config.LOCKOUT_SETTING)
    unknown = set(found) - {*CHOICES, EPOCH}
    if unknown:
        raise ValueError(f"{config.LOCKOUT_SETTING}: unknown keys {sorted(unknown)}")
    return found


def saved() -> dict[str, float]:
    """The numbers ``zt lockout`` saved; empty: the verifier's defaults."""
    return {name: float(value) for name, value in _file().items() if name in CHOICES}


def save(choice: Mapping[str, float]) -> None:
    """Keep ``choice`` (names of ``CHOICES``; empty: the verifier's defaults) with a new
    epoch: the next nginx configuration keeps none of the lockouts it kept before."""
    config.LOCKOUT_SETTING.parent.mkdir(parents=True, exist_ok=True)
    data = {**choice, EPOCH: secrets.token_hex(8)}
    write_atomic(config.LOCKOUT_SETTING, json.dumps(data, sort_keys=True) + "\n")


def setting_value(value: float) -> str:
    """A number as the verifier reads it (a whole number without a fraction)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def verifier_env() -> dict[str, str]:
    """The verifier's ``ZT_VERIFIER_LOCKOUT_*`` settings: its folder and any saved numbers."""
    env = {"ZT_VERIFIER_LOCKOUT_DIR": str(config.LOCKOUT_DIR)}
    env.update({CHOICES[name]: setting_value(value) for name, value in sorted(saved().items())})
    return env


def describe(choice: Mapping[str, float]) -> str:
    if not choice:
        return "the verifier's defaults (verifier/settings.py)"
    if choice.get("threshold") == 0:
        return "off"
    return ", ".join(f"{name} {setting_value(value)}" for name, value in sorted(choice.items()))


def prepare_folder() -> None:
    """The verifier's counts folder, its workers' own (0700)."""
    accounts.service_folder(config.LOCKOUT_DIR)


def clear() -> int:
    """Forget every count and lockout the verifier holds; how many files went."""
    if not config.LOCKOUT_DIR.exists():
        return 0
    removed = 0
    for path in config.LOCKOUT_DIR.iterdir():
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def generation() -> str:
    """Part of nginx's lockout cache key: a digest of the numbers in force and the epoch."""
    text = json.dumps(_file(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def hop_values(run_dir: Path, tmp_dir: Path) -> dict[str, object]:
    """The nginx.conf.tmpl placeholders of the lockout hop for an nginx whose run and
    temporary folders are these (the stack's, the benchmark's, a test's)."""
    socket = config.LOCKOUT_HOP_SOCKET
    if run_dir != config.RUN:
        socket = run_dir / socket.parent.name / socket.name
    accounts.nginx_workers_folder(socket.parent)
    return {
        "lockout_socket": socket,
        "lockout_cache_dir": tmp_dir / "lockout-cache",
        "lockout_generation": generation(),
    }
