"""Levers, measured as scenarios: the same verifier app under another HTTP server.

Of the verifier's ~470 us per decision (hot, in-process) about 105 are gunicorn's
pure-Python HTTP parser and its worker loop. ``granian`` (a Rust HTTP server with a
WSGI interface) parses and serves in Rust and calls the unchanged Flask app. Scenario 8
runs the production nginx template against a second verifier — the same app, the
same settings (``apps.verifier_env``), 2 workers on a unix socket — served by granian,
interleaved with scenario 3 (the stack's gunicorn verifier), so 8/3 is the lever.

Not the production setup: the stack's verifier stays on gunicorn until the lead
decides (docs/benchmarks.md says what the switch needs). This verifier writes its
audit lines to a file of its own under ``.state/bench/granian/`` (deleted after the
run), so the stack's audit log keeps one writer, and its copies to a datagram socket
of its own there, drained by this process (``bench.sinkdrain``): sent to the stack's sink
they were lines the stack's primary file never had, and ``zt audit verify`` (and
tests/integration/test_audit_trail.py after a ``make bench``) reported thousands of
differences.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench import config as bench_config
from bench import sockets
from bench.sinkdrain import SinkDrain
from scripts import config
from scripts.services import apps, procs, unixhttp
from scripts.steps import wait_until

GRANIAN = Path(sys.prefix) / "bin" / "granian"
GRANIAN_DIR = bench_config.BENCH_DIR / "granian"
GRANIAN_VERIFIER = config.Service(
    "verifier-granian", None, run_dir=GRANIAN_DIR, log_dir=GRANIAN_DIR
)
GRANIAN_SOCKET = GRANIAN_DIR / "verifier.sock"
GRANIAN_AUDIT_LOG = GRANIAN_DIR / "audit.log"
GRANIAN_SINK_SOCKET = GRANIAN_DIR / "audit-sink.sock"
WORKERS = 2  # as the stack's gunicorn verifier (config.GUNICORN_WORKERS)
READY_SECONDS = 60.0


def granian_argv(socket: Path) -> list[str]:
    """granian serving the verifier's app factory on ``socket`` (WSGI, no access log)."""
    return [
        str(GRANIAN),
        "--interface",
        "wsgi",
        "--factory",
        "--workers",
        str(WORKERS),
        "--uds",
        str(socket),
        "--http",
        "1",
        "--no-ws",
        "--log-level",
        "warning",
        "verifier.app:create_app",
    ]


_DRAINS: list[SinkDrain] = []
"""The drain of the running granian verifier (at most one), closed by ``stop``."""


def start() -> int:
    """Start the granian verifier (one a crashed run left is stopped first); return its
    pid once it answers ``/healthz`` (Keycloak's keys loaded, CRL read)."""
    procs.stop(GRANIAN_VERIFIER)
    GRANIAN_DIR.mkdir(parents=True, exist_ok=True)
    GRANIAN_SOCKET.unlink(missing_ok=True)
    GRANIAN_AUDIT_LOG.unlink(missing_ok=True)
    _close_drains()
    _DRAINS.append(SinkDrain(GRANIAN_SINK_SOCKET))
    env = bench_config.verifier_env(GRANIAN_AUDIT_LOG, GRANIAN_SINK_SOCKET)
    pid = procs.start(
        GRANIAN_VERIFIER,
        granian_argv(GRANIAN_SOCKET),
        env=env,
        cwd=config.REPO,
        not_inherited=apps.SETTINGS_PREFIXES,
    )
    wait_until(
        "verifier on granian (scenario 8) answering /healthz",
        lambda: procs.alive_or_fail(GRANIAN_VERIFIER) and unixhttp.answers(GRANIAN_SOCKET),
        READY_SECONDS,
        str(GRANIAN_VERIFIER.log_file),
        interval=0.2,
    )
    sockets.open_to_nginx(GRANIAN_SOCKET)
    return pid


def stop() -> bool:
    """Stop it by pid; its audit log (a line per request) goes with it."""
    stopped = procs.stop(GRANIAN_VERIFIER, timeout=10.0)
    GRANIAN_AUDIT_LOG.unlink(missing_ok=True)
    _close_drains()
    return stopped


def _close_drains() -> None:
    while _DRAINS:
        _DRAINS.pop().close()
