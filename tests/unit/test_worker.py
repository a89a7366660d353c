"""``verifier.worker.KeepAliveWorker`` in a real gunicorn on a unix socket.

What nginx relies on: many requests on one kept-alive connection, and a reload
(HUP, as ``zt rollover-client-ca`` does) that finishes a request in progress and
still answers a request sent on an idle connection, with ``Connection: close``.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from scripts import config
from scripts.services import unixhttp
from scripts.steps import wait_until

GUNICORN = Path(sys.prefix) / "bin" / "gunicorn"


_Unix = unixhttp.UnixHTTPConnection  # the stack's own unix-socket HTTP client


def _get(conn: http.client.HTTPConnection, path: str = "/") -> http.client.HTTPResponse:
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response


@pytest.fixture
def server(tmp_path):
    sock = tmp_path / "w.sock"
    proc = subprocess.Popen(
        [
            str(GUNICORN),
            "--bind",
            f"unix:{sock}",
            "--workers",
            "1",
            "--worker-class",
            config.VERIFIER_WORKER_CLASS,
            "--worker-connections",
            "8",
            "--keep-alive",
            "30",
            "--graceful-timeout",
            "10",
            "--no-control-socket",
            "tests.unit.worker_app:app",
        ],
        cwd=config.REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(
        "test gunicorn",
        lambda: proc.poll() is None and unixhttp.answers(sock, "/"),
        30,
        "gunicorn's stderr (run the command above by hand)",
        interval=0.1,
    )
    yield proc, sock
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_one_connection_carries_request_after_request(server):
    _, sock = server
    conn = _Unix(sock)
    answers = [_get(conn)]
    opened = conn.sock
    answers += [_get(conn) for _ in range(4)]
    assert [r.status for r in answers] == [200] * 5
    assert all((r.getheader("Connection") or "").lower() != "close" for r in answers)
    assert conn.sock is opened  # http.client would have reconnected after a close


def test_a_reload_finishes_the_request_in_progress(server):
    proc, sock = server
    conn = _Unix(sock)
    assert _get(conn).status == 200  # the connection is open and idle now
    result: dict[str, object] = {}

    def slow() -> None:
        response = _get(conn, "/slow?1.0")
        result["status"], result["connection"] = response.status, response.getheader("Connection")

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.3)  # the request is being handled now
    proc.send_signal(signal.SIGHUP)
    thread.join(timeout=15)
    assert result["status"] == 200
    assert (str(result["connection"]) or "").lower() == "close"  # stopping: no keep-alive


def test_a_reload_still_answers_a_request_sent_on_an_idle_connection(server):
    proc, sock = server
    conn = _Unix(sock)
    first = _get(conn)
    assert first.status == 200
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)  # the old worker is stopping, within its linger time
    answer = _get(conn)
    assert answer.status == 200
    assert (answer.getheader("Connection") or "").lower() == "close"
    # ...and the reloaded server answers on a new connection, from a new worker.
    wait_until(
        "an answer after the reload",
        lambda: unixhttp.answers(sock, "/"),
        20,
        "the reloaded gunicorn",
        interval=0.1,
    )
    assert os.path.exists(sock)
