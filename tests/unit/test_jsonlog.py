"""gunicorn's error and access logs are JSON lines (``verifier.jsonlog``), checked on a
real gunicorn serving the API on a unix socket (no stack, no assertion key)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from scripts.services import unixhttp

GUNICORN = Path(sys.prefix) / "bin" / "gunicorn"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_gunicorns_error_and_access_logs_are_json_lines(tmp_path):
    sock = tmp_path / "api.sock"
    log = tmp_path / "api.log"
    argv = [
        str(GUNICORN),
        "--bind",
        f"unix:{sock}",
        "--workers",
        "1",
        "--error-logfile",
        "-",
        "--access-logfile",
        "-",
        "--logger-class",
        "verifier.jsonlog.JsonLogger",
        "--no-control-socket",
        "api.app:create_app()",
    ]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ZT_")},
        "ZT_API_INSECURE_SKIP_ASSERTION": "1",
    }
    repo = Path(__file__).resolve().parents[2]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=repo, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while not unixhttp.answers(sock):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        headers = {"X-Request-ID": "rid-42", "traceparent": TRACEPARENT}
        answer = unixhttp.request(sock, "GET", '/api/resource?q="x"\\', headers)
        assert answer.status == 200
    finally:
        proc.terminate()
        proc.wait(30)
    lines = log.read_text().splitlines()
    print("\n".join(lines))
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    access = [r for r in records if r.get("type") == "access" and r["request_id"] == "rid-42"]
    assert len(access) == 1
    assert access[0]["status"] == 200 and access[0]["method"] == "GET"
    assert access[0]["path"] == '/api/resource?q="x"\\'
    assert access[0]["traceparent"] == TRACEPARENT
    assert access[0]["duration_ms"] >= 0
    errors = [r for r in records if "level" in r]
    assert any("Booting worker" in r["message"] for r in errors)
    assert all({"time", "level", "logger", "message", "pid"} <= set(r) for r in errors)
