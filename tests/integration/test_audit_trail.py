"""The tamper-evident audit trail on the real stack (issue 18, items 3 and 5).

Through the real nginx, verifier and API: each decision's line carries the hash
chain and the request context (user agent, W3C traceparent); the same bytes reach
the second sink (``zt audit-sink``, another user's file); ``zt audit verify``
says intact, names an edited copy's line, and compares with the sink's copy;
``zt audit rotate`` under load keeps the chain (and the sink) intact; a sink that
is down never fails a request and is reported by the verifier's ``/healthz``.
Edits are made to COPIES of the files: the running stack's trail stays intact.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.api import GatewayClient, Identity
from client.token import TokenSource
from scripts import config
from scripts.files import read_json
from scripts.pki import certs
from scripts.services import procs, unixhttp
from scripts.steps import wait_until
from tests.integration.conftest import run_zt
from verifier.auditrotate import archives

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def client(stack: None) -> GatewayClient:
    outputs = read_json(config.IDENTITY_OUTPUTS)
    cert, _ = config.client_cert_paths("python-client")
    identity = Identity(str(certs.bundle_path(cert)), None, str(config.SERVER_CA_BUNDLE))
    tokens = TokenSource(outputs["token_endpoint"], "python-client", identity)
    return GatewayClient(config.GATEWAY_URL, tokens)


def get(client: GatewayClient, headers: dict[str, str] | None = None):
    """A GET nginx's decision cache cannot answer (a new URI each time): every one is
    decided, so every one has its audit line."""
    return client.request("GET", f"/api/resource?n={secrets.token_hex(6)}", headers=headers or {})


def audit_line(request_id: str, path: Path = config.AUDIT_LOG) -> dict:
    found = [
        json.loads(line)
        for line in path.read_text().splitlines()
        if f'"request_id":"{request_id}"' in line
    ]
    assert len(found) == 1, f"{len(found)} lines for {request_id} in {path}"
    return found[0]


def raw_line(request_id: str, path: Path) -> bytes | None:
    for line in path.read_bytes().splitlines(keepends=True):
        if f'"request_id":"{request_id}"'.encode() in line:
            return line
    return None


def test_a_clients_traceparent_reaches_the_api_and_the_audit_line(client):
    answer = get(client, {"traceparent": TRACEPARENT, "User-Agent": "zt-test/1.0"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["traceparent"] == TRACEPARENT
    line = audit_line(body["request_id"])
    assert (line["traceparent"], line["user_agent"]) == (TRACEPARENT, "zt-test/1.0")
    api = [
        json.loads(raw)
        for raw in config.API_REQUEST_LOG.read_text().splitlines()
        if body["request_id"] in raw
    ]
    assert [entry["traceparent"] for entry in api] == [TRACEPARENT]


@pytest.mark.parametrize(
    "sent",
    [
        "garbage",
        TRACEPARENT.upper(),
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
        TRACEPARENT + "-extra",
        '00-"},{"decision":"allow"',
        "00-\x01-control",
        "x" * 8000,
    ],
    ids=["garbage", "upper", "zero-trace", "v00-extra", "json", "control-byte", "long"],
)
def test_a_malformed_traceparent_never_breaks_a_request_and_is_recorded_as_invalid(client, sent):
    answer = get(client, {"traceparent": sent})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["traceparent"] == ""  # the API never sees it
    line = audit_line(body["request_id"])
    assert line["traceparent"] == "invalid"


def test_a_long_or_odd_user_agent_is_recorded_cut_and_never_breaks_a_request(client):
    for agent in ("a" * 6000, "agent\x01with-control", "caf\xe9/1.0"):
        answer = get(client, {"User-Agent": agent})
        assert answer.status_code == 200, answer.text
        line = audit_line(answer.json()["request_id"])
        assert len(line["user_agent"]) <= 515
        print(repr(agent[:20]), "->", repr(line["user_agent"][:20]))


def _sink_has(request_id: str) -> bool:
    return raw_line(request_id, config.AUDIT_SINK_LOG) is not None


def test_the_line_is_in_both_sinks_and_the_chain_verifies(client):
    answer = get(client)
    rid = answer.json()["request_id"]
    wait_until("the sink's copy", lambda: _sink_has(rid), 5, str(config.AUDIT_SINK.log_file))
    assert raw_line(rid, config.AUDIT_SINK_LOG) == raw_line(rid, config.AUDIT_LOG)
    assert config.AUDIT_SINK_DIR.stat().st_mode & 0o777 == 0o700
    assert config.AUDIT_SINK_LOG.stat().st_mode & 0o777 == 0o600
    if os.geteuid() == 0:  # the bring-up ran as root: another user keeps the copy
        assert pwd.getpwuid(config.AUDIT_SINK_LOG.stat().st_uid).pw_name == config.AUDIT_USER
    done = run_zt("audit", "verify")
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("intact, ")
    assert "0 difference(s), identical" in done.stdout


def _copies(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    def copy(files: list[Path], folder: Path) -> list[Path]:
        folder.mkdir()
        return [Path(shutil.copy(f, folder / f.name)) for f in files]

    primary = copy([*archives(config.AUDIT_LOG), config.AUDIT_LOG], tmp_path / "primary")
    sink = copy([*archives(config.AUDIT_SINK_LOG), config.AUDIT_SINK_LOG], tmp_path / "sink")
    return primary, sink


def test_an_edited_line_is_named_by_verify_and_by_the_sinks_copy(client, tmp_path):
    rids = [get(client).json()["request_id"] for _ in range(3)]
    wait_until("the sink's copies", lambda: all(map(_sink_has, rids)), 5, "sink")
    primary, sink = _copies(tmp_path)
    live = primary[-1]
    lines = live.read_bytes().splitlines(keepends=True)
    target = next(i for i, line in enumerate(lines) if rids[0].encode() in line)
    lines[target] = lines[target].replace(b'"decision":"allow"', b'"decision":"allOw"')
    live.write_bytes(b"".join(lines))
    done = run_zt("audit", "verify", *map(str, primary), "--sink", *map(str, sink))
    print(done.stdout)
    assert done.returncode == 1
    assert f"broken: {live}, line {target + 1}: edited" in done.stdout
    assert f"differs from the sink: {live}, line {target + 1}" in done.stdout


def test_the_chain_and_the_sink_continue_across_a_rotation_under_load(client):
    stop = threading.Event()
    statuses: list[int] = []

    def load() -> None:
        for _ in range(400):  # bounded in count, and stopped after the rotation
            if stop.is_set():
                return
            statuses.append(get(client).status_code)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        wait_until("some load", lambda: len(statuses) >= 5, 30, "load")
        done = run_zt("audit", "rotate")
        print(done.stdout)
        assert done.returncode == 0, done.stdout + done.stderr
        count = len(statuses)
        wait_until("load after the rotation", lambda: len(statuses) >= count + 5, 30, "load")
    finally:
        stop.set()
        worker.join(60)
    assert set(statuses) == {200}, statuses
    first = json.loads(config.AUDIT_LOG.read_text().splitlines()[0])
    archive = archives(config.AUDIT_LOG)[-1]
    assert first["event"] == "audit_rotated" and first["previous_file"] == archive.name
    rid = get(client).json()["request_id"]
    wait_until("the sink's copy", lambda: _sink_has(rid), 5, "sink")
    assert (config.AUDIT_SINK_DIR / archive.name).exists()  # the sink rotated with it
    done = run_zt("audit", "verify")
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def sink_stopped(stack: None) -> Iterator[None]:
    """The sink down for one test (supervisord would restart it: stop it through it),
    then back with `zt up`."""
    assert procs.stop(config.AUDIT_SINK)
    try:
        yield
    finally:
        done = run_zt("up")
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_a_sink_that_is_down_fails_no_request_and_the_verifier_reports_it(client, sink_stopped):
    rids = []
    for _ in range(6):
        answer = get(client)
        assert answer.status_code == 200
        rids.append(answer.json()["request_id"])
    assert all(raw_line(rid, config.AUDIT_LOG) for rid in rids)
    assert not any(map(_sink_has, rids))
    reports = [
        json.loads(unixhttp.request(config.VERIFIER_SOCKET, "GET", "/healthz").body)
        for _ in range(8)
    ]
    failing = [r for r in reports if r["audit_sink"]["failing_since"] is not None]
    print([r["audit_sink"] for r in reports])
    assert failing, "no worker reported the sink"
    assert any("audit sink" in p for r in failing for p in r["problems"])
