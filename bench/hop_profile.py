"""Where one uncached ``/_authz`` decision's CPU goes: ``python -m bench.hop_profile``.

Issue 20 asks the verifier to spend no more CPU per uncached decision than
oauth2-proxy spends per request. ``make bench`` measures the whole process tree
under load; this splits one decision into its parts, in-process, so each lever
can be judged on its own item. Not part of ``make bench`` and never a test: it
prints figures, asserts nothing.

Each item is the same work the verifier does for the allowed subrequest
``bench.core`` builds (a real token, python-client's certificate, the production
settings, Keycloak's keys fetched once), called alone in a bounded loop; the
figure is this thread's CPU per call (``time.thread_time``: time the core spent on
other stacks is not counted), the best of ``ROUNDS`` rounds. The last line is
the whole thing (gunicorn's parse and environ, then the Flask app's WSGI call);
the items do not add up to it exactly (each loop runs hot, alone). Under the real
server each item costs more (cold caches, thread hand-offs): docs/benchmarks.md
("Issue 20, round 2") has both views.

The audit line goes to a file in ``.state/bench/work``, its sink copy to a
datagram socket this process binds and drains (on another thread, not counted);
the lockout folder is a bench folder too. The metrics run in multiprocess mode
as under gunicorn: the measurement runs in a child process whose
``PROMETHEUS_MULTIPROC_DIR`` is a temporary folder (``prometheus-client`` picks its
value class when first imported).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.config import Config
from gunicorn.http.message import Request
from gunicorn.http.unreader import IterUnreader
from gunicorn.http.wsgi import create as gunicorn_environ

from bench import config as bench_config
from bench.core import CoreInputs, build_inputs, wsgi_call
from bench.metrics_cost import cpu_us
from bench.sinkdrain import SinkDrain
from verifier import app as verifier_app
from verifier.audit import audit_record
from verifier.auditchain import chained_line
from verifier.auditlog import AuditWriter
from verifier.event import AuthorizerEvent
from verifier.metrics import EXTENSION as METRICS_EXTENSION
from verifier.promexport import MULTIPROC_ENV
from verifier.settings import ENV_PREFIX
from verifier.subrequest import event_from_subrequest

ROUNDS = 7
CALLS = 400
"""Calls per round of each item: ~0.1-0.5 s a round on this machine."""


def _raw_request(headers: list[tuple[str, str]]) -> bytes:
    """The subrequest as nginx writes it on the upstream connection (HTTP/1.1, keep-alive)."""
    lines = ["GET /_authz HTTP/1.1", "Host: localhost", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _app(inputs: CoreInputs, work: str) -> Flask:
    """The production app, its files in ``work``."""
    env = bench_config.verifier_env(Path(work) / "audit.log", Path(work) / "sink.sock")
    cfg: dict[str, Any] = {name.removeprefix(ENV_PREFIX): value for name, value in env.items()}
    cfg |= {
        "LOCKOUT_DIR": work,
        "KEY_SOURCE": inputs.keys,
        "REVOCATION": inputs.revocation,
    }
    return verifier_app.create_app(cfg)


def _bare_flask() -> Flask:
    """Flask alone: one route answering 204 with as many headers as an allow."""
    app = Flask(__name__)
    headers = [(f"X-Bench-{i}", "x" * 40) for i in range(5)]

    @app.route("/_authz", methods=["GET"])
    def authz() -> verifier_app.Response:
        return verifier_app._NoContent(status=204, headers=headers)

    return app


def measure() -> dict[str, float]:
    """Every item, in microseconds of CPU per decision."""
    bench_config.BENCH_WORK.mkdir(parents=True, exist_ok=True)
    inputs = build_inputs()
    work = tempfile.mkdtemp(prefix="hop-profile-", dir=bench_config.BENCH_WORK)
    drain = SinkDrain(Path(work) / "sink.sock")
    try:
        return _items(inputs, work)
    finally:
        drain.close()


def _items(inputs: CoreInputs, work: str) -> dict[str, float]:
    app = _app(inputs, work)
    verifier: verifier_app.Verifier = app.extensions["verifier"]
    raw = _raw_request(inputs.headers)
    cfg, stock = Config(), Config()
    cfg.set("http_parser", "fast")  # the verifier's (scripts/services/apps.py)
    stock.set("http_parser", "python")
    peer = ("127.0.0.1", 0)
    left, right = socket.socketpair()

    def parse() -> Request:
        return Request(cfg, IterUnreader([raw]), peer)

    def parse_stock() -> Request:
        return Request(stock, IterUnreader([raw]), peer)

    request = parse()

    def environ() -> dict[str, Any]:
        return gunicorn_environ(request, left, peer, "unix:/bench", cfg)[1]

    base_environ = environ()
    full = wsgi_call(app, base_environ)
    headers = inputs.headers
    pems = verifier.escaped_pems
    event = AuthorizerEvent(event_from_subrequest(headers, pems=pems))
    now = time.time()
    decider = verifier.decider
    response = decider.decide(event, now)
    record = audit_record(event, response, now=now, latency_ms=0.5)
    audit_path = os.path.join(work, "items-audit.log")
    writer = AuditWriter(audit_path)
    line = chained_line(dict(record), 1, "0" * 64)
    sink = verifier.audit.sink
    assert sink is not None
    counted = app.extensions[METRICS_EXTENSION]
    serial = response.identity.cert_serial
    signer = verifier_app._signer(verifier, event, now, 5)
    fd = os.open(os.path.join(work, "raw-write.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    lock_probe = os.path.join(work, "open-lock.log")

    kept = os.open(lock_probe, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def lock_check_unlock() -> None:
        fcntl.flock(kept, fcntl.LOCK_EX)
        os.fstat(kept)
        os.stat(lock_probe)
        fcntl.flock(kept, fcntl.LOCK_UN)

    def open_lock_close() -> None:
        f = os.open(lock_probe, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(f, fcntl.LOCK_EX)
            os.fstat(f)
            os.stat(lock_probe)
        finally:
            os.close(f)

    items: dict[str, Callable[[], object]] = {
        "gunicorn: parse the request (stock pure-Python parser)": parse_stock,
        "gunicorn: parse the request (gunicorn_h1c, the verifier's)": parse,
        "gunicorn: WSGI environ": environ,
        "Flask alone: contexts, dispatch, a 204 with 5 headers": wsgi_call(
            _bare_flask(), base_environ
        ),
        "adapter: event from the headers + AuthorizerEvent": lambda: AuthorizerEvent(
            event_from_subrequest(headers, pems=pems)
        ),
        "CRL file: refresh_if_changed (real clock)": lambda: decider.revocation.refresh_if_changed(
            time.time()
        ),
        "decide() (token cached; includes the lockout stat)": lambda: decider.decide(event, now),
        "  of which the lockout stat (locked_until)": lambda: decider.lockouts.locked_until(
            serial, now
        ),
        "audit: the record (audit_record)": lambda: audit_record(
            event, response, now=now, latency_ms=0.5
        ),
        "audit: the chain line (JSON + encode)": lambda: chained_line(dict(record), 1, "0" * 64),
        "audit: open + flock + fstat + stat + close (before round 2)": open_lock_close,
        "audit: flock + fstat + stat + unlock (descriptor kept, now)": lock_check_unlock,
        "audit: os.write of the line": lambda: os.write(fd, line),
        "audit: AuditWriter.append, all of it (no sink)": lambda: writer.append(record),
        "sink: one datagram (sendto)": lambda: sink.send(line),
        "lockout: record (an allow: nothing)": lambda: decider.lockouts.record(response, now),
        "metrics: observe": lambda: counted.observe(event, response, 0.0005),
        "answer: identity JSON + assertion + response": lambda: verifier_app._answer(
            response, 5, signer, []
        ),
        "whole: gunicorn parse + environ + Flask app /_authz": lambda: (
            parse(),
            environ(),
            full(),
        ),
    }
    figures: dict[str, float] = {}
    with app.app_context():
        for name, fn in items.items():
            figures[name] = round(cpu_us(fn, CALLS, rounds=ROUNDS), 1)
    os.close(fd)
    os.close(kept)
    left.close()
    right.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    """Run the measurement in a child with multiprocess metrics, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.hop_profile", description=__doc__)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure()))
        return 0
    with tempfile.TemporaryDirectory(prefix="zt-hop-profile-") as folder:
        child = subprocess.run(
            [sys.executable, "-m", "bench.hop_profile", "--child"],
            env={**os.environ, MULTIPROC_ENV: folder},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    if child.returncode != 0:
        print(child.stdout + child.stderr, file=sys.stderr)
        return 1
    figures: dict[str, float] = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"{'CPU µs per uncached decision, best of ' + str(ROUNDS) + ' rounds':<62}{'µs':>8}")
    for name, value in figures.items():
        print(f"{name:<62}{value:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
