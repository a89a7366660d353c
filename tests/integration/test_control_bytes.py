"""Every byte a client can send is decided and audited: never a 5xx (issue 17).

Against the real stack, one request per byte, written on a TLS socket by hand
(``requests`` refuses to send most of these bytes) with python-client's
certificate. Before issue 17 the 29 bytes gunicorn refuses in a header value
(0x01-0x08, 0x0B, 0x0C, 0x0E-0x1F, 0x7F) in ``Authorization`` got 503 and left
no audit line: gunicorn refused the auth subrequest before the verifier ran.
Now nginx withholds such a value (nginx/snippets/authz-maps.conf) and the
verifier refuses the request as ``token_malformed``, audited, naming the header.

Two answers are correct, and each case says which it gets:

* nginx refuses the request while parsing it: 400, no audit line (NUL and CR
  in a header; control bytes and 0x80-0xFF in the request target);
* the verifier decides it: 401 (or the route's answer for a harmless byte in
  the target), with exactly one audit line.

Each request carries a marker in its query string, so its audit line (``path``)
and nginx's line (``uri``) are found by marker. Bounded: 256 requests per sweep
and a time budget per sweep, both printed. Bytes 0x80-0xFF go into the
``Authorization`` value only: in the request target nginx would log them raw
(see the target test).
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts import config
from tests.tokens import SERVER_CA, cert_of, fetch_token

MARKER = "ctlbyte"
SWEEP_BUDGET_SECONDS = 300.0
LOG_WAIT_SECONDS = 10.0
GUNICORN_REFUSES = {*range(0x01, 0x09), *range(0x0A, 0x20), 0x7F} - {0x0A, 0x0D}
"""The 29 bytes gunicorn refuses in a header value that nginx would forward (LF and
CR are not among them: they end or break nginx's header line first)."""
CONTROLS = {*range(0x00, 0x20), 0x7F}
B64TOKEN = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/")


@pytest.fixture(scope="module")
def tls(stack: None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=SERVER_CA)
    ctx.load_cert_chain(*cert_of("python-client"))
    return ctx


@pytest.fixture(scope="module")
def token(stack: None) -> str:
    return fetch_token("python-client")


def _send(tls: ssl.SSLContext, head: bytes) -> int | None:
    """The status of nginx's answer to ``head``; None when it answered without a status
    line (an HTTP/0.9 answer)."""
    with (
        socket.create_connection((config.HOST, config.NGINX_PORT), timeout=10) as sock,
        tls.wrap_socket(sock, server_hostname="localhost") as conn,
    ):
        conn.sendall(head)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    first = answer.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) > 1 and first[0].startswith(b"HTTP/") else None


def _lines(path: Path, offset: int) -> list[dict[str, Any]]:
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    # nginx's escape=json passes bytes >= 0x80 of a URI through raw: not always UTF-8.
    complete = data[: data.rfind(b"\n") + 1].decode("utf-8", "replace")
    return [json.loads(line) for line in complete.splitlines() if line]


class Sweep:
    """Requests sent with markers, and what the logs say about each marker."""

    def __init__(self) -> None:
        self.run = secrets.token_hex(4)
        self.offsets = {p: p.stat().st_size for p in (config.AUDIT_LOG, config.NGINX_ACCESS_LOG)}
        self.started = time.monotonic()

    def target(self, case: int) -> str:
        return f"/api/resource?{MARKER}={self.run}-{case:03d}"

    def check_budget(self) -> None:
        assert time.monotonic() - self.started < SWEEP_BUDGET_SECONDS, "sweep over its budget"

    def logs(self, count: int) -> tuple[dict[int, list[dict]], dict[int, dict]]:
        """(audit lines, nginx line) by case number, once nginx has logged ``count``."""
        pattern = re.compile(rf"{MARKER}={self.run}-(\d{{3}})")
        deadline = time.monotonic() + LOG_WAIT_SECONDS
        while True:
            nginx = {
                int(m.group(1)): line
                for line in _lines(config.NGINX_ACCESS_LOG, self.offsets[config.NGINX_ACCESS_LOG])
                if (m := pattern.search(line["uri"]))
            }
            if len(nginx) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        audit: dict[int, list[dict]] = {}
        for line in _lines(config.AUDIT_LOG, self.offsets[config.AUDIT_LOG]):
            if m := pattern.search(line["path"]):
                audit.setdefault(int(m.group(1)), []).append(line)
        return audit, nginx


def _sweep(
    tls: ssl.SSLContext, head: Callable[[Sweep, int], bytes], bytes_: range = range(256)
) -> Iterator[Any]:
    """Send ``head(sweep, byte)`` for every byte; yields (byte, status, audit, nginx)."""
    sweep = Sweep()
    statuses = {}
    for byte in bytes_:
        sweep.check_budget()
        statuses[byte] = _send(tls, head(sweep, byte))
    print(f"{len(bytes_)} requests in {time.monotonic() - sweep.started:.1f}s")
    audit, nginx = sweep.logs(sum(1 for s in statuses.values() if s is not None))
    for byte in bytes_:
        yield byte, statuses[byte], audit.get(byte, []), nginx.get(byte)


def _request(target: str | bytes, authorization: bytes) -> bytes:
    """A GET of ``target`` (bytes as given) with ``authorization`` (bytes as given)."""
    raw_target = target.encode("ascii") if isinstance(target, str) else target
    return (
        b"GET " + raw_target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        b"Authorization: " + authorization + b"\r\n\r\n"
    )


def _expected_in_token(byte: int) -> set[str] | None:
    """The reasons a token with ``byte`` inserted after its 10th character may get
    (None: any ``token_*`` reason)."""
    if byte in GUNICORN_REFUSES or byte >= 0x80 or byte in (0x09, 0x20):
        return {"token_malformed"}
    if byte == ord(","):
        return {"token_header_multiple"}  # how proxies join repeated headers
    if byte == 0x0A:  # ends nginx's header line: a truncated token reaches the verifier
        return {"token_malformed"}
    if byte in B64TOKEN:  # still a b64token: PyJWT has its say
        return None
    return {"token_malformed"}


def test_every_byte_inside_a_valid_bearer_token_is_decided_and_audited(tls, token):
    refused_by_nginx, decided = [], []
    raw = token.encode()
    for byte, status, audit, nginx in _sweep(
        tls,
        lambda sweep, b: _request(sweep.target(b), b"Bearer " + raw[:10] + bytes([b]) + raw[10:]),
    ):
        assert status is not None and status < 500, f"byte {byte:#04x}: {status}"
        if status == 400:
            refused_by_nginx.append(byte)
            assert audit == [], f"byte {byte:#04x}: nginx refused it, yet the verifier decided"
            continue
        decided.append(byte)
        assert status == 401, f"byte {byte:#04x}: {status}"
        assert len(audit) == 1, f"byte {byte:#04x}: {len(audit)} audit lines"
        (line,) = audit
        expected = _expected_in_token(byte)
        reason = line["reason"]
        assert reason.startswith("token_") if expected is None else reason in expected, (
            f"byte {byte:#04x}: {reason}"
        )
        assert nginx is not None and nginx["auth_reason"] == line["reason"]
        if byte in GUNICORN_REFUSES:
            assert line["detail"].startswith("Authorization: a control byte"), line["detail"]
        assert token[10:] not in json.dumps(line)  # never the token, never the raw value
    print(f"nginx refused {[hex(b) for b in refused_by_nginx]}; {len(decided)} bytes decided")
    assert refused_by_nginx == [0x00, 0x0D]  # NUL and CR: nginx's own 400
    assert set(decided) >= GUNICORN_REFUSES


def test_every_byte_as_the_whole_authorization_value_is_decided_and_audited(tls):
    for byte, status, audit, _nginx in _sweep(
        tls, lambda sweep, b: _request(sweep.target(b), bytes([b]))
    ):
        assert status is not None and status < 500, f"byte {byte:#04x}: {status}"
        if status == 400:
            assert byte in (0x00, 0x0D), f"byte {byte:#04x}: an unexpected 400"
            assert audit == []
            continue
        assert status == 401, f"byte {byte:#04x}: {status}"
        assert len(audit) == 1, f"byte {byte:#04x}: {len(audit)} audit lines"
        if byte in GUNICORN_REFUSES:
            assert audit[0]["reason"] == "token_malformed"
            assert audit[0]["detail"].startswith("Authorization: a control byte")
        else:
            assert audit[0]["reason"].startswith("token_")


def test_every_ascii_byte_in_the_request_target_is_refused_by_nginx_or_decided(tls, token):
    """0x00-0x7F (0x80-0xFF: the next test; nginx logs such a target as a marker)."""
    bearer = f"Bearer {token}".encode()
    refused, decided = [], {}
    for byte, status, audit, _nginx in _sweep(
        tls,
        lambda sweep, b: _request(sweep.target(b).encode() + b"&b=" + bytes([b]), bearer),
        range(0x80),
    ):
        if byte == 0x0A:  # ends the request line: an HTTP/0.9 request (no headers)
            assert [line["reason"] for line in audit] in ([], ["token_missing"])
            continue
        assert status is not None and status < 500, f"byte {byte:#04x}: {status}"
        if not audit:
            refused.append(byte)
            assert status == 400, f"byte {byte:#04x}: {status} and no audit line"
        else:
            assert len(audit) == 1, f"byte {byte:#04x}: {status}, {len(audit)} audit lines"
            decided[byte] = status
    print(f"nginx refused {len(refused)} bytes (400); decided: {set(decided.values())}")
    assert set(refused) == CONTROLS - {0x0A}  # nginx's own 400 for every control byte
    assert len(decided) == 0x80 - len(CONTROLS)


@pytest.mark.parametrize("size", [8192, 8193, 12_000, 16_000])
def test_a_very_long_authorization_value_is_decided_never_a_5xx(tls, size):
    sweep = Sweep()
    status = _send(tls, _request(sweep.target(0), b"Bearer " + b"a" * size))
    audit, _ = sweep.logs(1)
    print(f"Bearer + {size} bytes: {status}")
    assert status == 401
    assert [line["reason"] for line in audit.get(0, [])] == [
        "token_malformed" if size <= 8192 else "token_too_large"
    ]


def test_an_authorization_value_past_nginx_buffers_is_nginx_s_own_400(tls):
    sweep = Sweep()
    status = _send(tls, _request(sweep.target(0), b"Bearer " + b"a" * 16_400))
    audit, _ = sweep.logs(1)
    assert status == 400
    assert audit == {}


def test_bytes_0x80_to_0xff_in_the_request_target_keep_the_access_log_valid_json(tls, token):
    """Before the log map, such a byte reached nginx's access log raw (not UTF-8), and a
    JSON reader of the log failed on the line. Each request is answered (never a 5xx)
    and logged with the marker instead of its target."""
    log = config.NGINX_ACCESS_LOG
    offset = log.stat().st_size
    bearer = f"Bearer {token}".encode()
    statuses = {}
    for byte in range(0x80, 0x100):
        statuses[byte] = _send(tls, _request(b"/api/resource?hi=" + bytes([byte]), bearer))
    assert all(s is not None and s < 500 for s in statuses.values()), statuses
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while True:
        with open(log, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
        lines = [json.loads(line) for line in data.decode("utf-8").splitlines() if line]
        marked = [line for line in lines if line["uri"].startswith("<request target with bytes")]
        if len(marked) >= 0x80 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(marked) == 0x80, (len(marked), len(lines))
    print(f"0x80-0xFF in the target: answers {sorted(set(statuses.values()))}, log valid")
