"""Attacks on HTTP itself, sent as raw bytes over python-client's mTLS channel.

``requests`` normalises what these attacks depend on (repeated headers, the
request line, Host, framing), so they are written on a TLS socket by hand.
Two kinds of answer are correct, and each test says which one it gets:

* nginx refuses the request while parsing it: 400, no audit line (the verifier
  was never asked), nothing at the API;
* nginx passes it to the verifier, which refuses it with its reason code.

Never 5xx, never a line at the API.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import time

import pytest

from scripts import config
from tests.attacks.conftest import SERVER_CA, LogWindow, Trail, cert_of


def _raw(window: LogWindow, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send ``head`` (``{target}`` is replaced by the marked path) and read the answer."""
    ctx = ssl.create_default_context(cafile=SERVER_CA)
    ctx.load_cert_chain(*cert_of("python-client"))
    data = head.replace("{target}", window.url("/api/resource", base="")).encode()
    with (
        socket.create_connection((config.HOST, config.NGINX_PORT), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname="localhost") as tls,
    ):
        tls.sendall(data + body)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def _target(window: LogWindow, path: str) -> str:
    return window.url(path, base="")


def _nginx_refused(window: LogWindow, status: int) -> Trail:
    assert status == 400
    trail = window.trail()
    assert trail.nginx["status"] == 400
    assert trail.nginx["ssl_client_verify"] == "SUCCESS"  # the cert was fine
    assert trail.audit == []
    assert trail.api == []
    return trail


def _verifier_refused(window: LogWindow, status: int, body: bytes, expect: int) -> Trail:
    assert status == expect, body
    assert json.loads(body) == {401: {"error": "unauthorized"}, 403: {"error": "forbidden"}}[expect]
    trail = window.trail()
    assert trail.nginx["status"] == expect
    assert trail.api == []
    return trail


def test_two_authorization_headers_are_refused_by_nginx_as_a_duplicate(log_since, token_for):
    # nginx treats Authorization as a unique header: "client sent duplicate
    # header line" -> 400 before the verifier's token_header_multiple can apply.
    token = token_for("python-client")
    window = log_since()
    status, _ = _raw(
        window,
        "GET {target} HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {token}\r\nAuthorization: Bearer {token}\r\n"
        "Connection: close\r\n\r\n",
    )
    _nginx_refused(window, status)


def test_two_tokens_joined_in_one_authorization_header_are_refused_header_multiple(
    log_since, token_for
):
    token = token_for("python-client")
    window = log_since()
    status, body = _raw(
        window,
        "GET {target} HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {token}, Bearer {token}\r\nConnection: close\r\n\r\n",
    )
    trail = _verifier_refused(window, status, body, 401)
    assert trail.reasons == ["token_header_multiple"]


@pytest.mark.parametrize(
    ("scheme", "reason"),
    [
        ("Basic", "token_scheme_not_bearer"),
        ("bearer", "token_scheme_case_invalid"),
        ("BEARER", "token_scheme_case_invalid"),
        ("DPoP", "token_scheme_not_bearer"),
    ],
)
def test_a_real_token_under_another_scheme_is_refused(log_since, token_for, scheme, reason):
    token = token_for("python-client")
    window = log_since()
    status, body = _raw(
        window,
        "GET {target} HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: {scheme} {token}\r\nConnection: close\r\n\r\n",
    )
    trail = _verifier_refused(window, status, body, 401)
    assert trail.reasons == [reason]


@pytest.mark.parametrize(
    "path",
    [
        "/api%2Fadmin/stats",
        "/api%2fadmin%2fstats",
        "/api/admin%2Fstats",
        "//api/admin/stats",
        "/api/admin//stats",
        "/api/resource/%2E%2E/admin/stats",
    ],
)
def test_encoded_or_doubled_slashes_toward_the_admin_route_are_refused_not_canonical(
    log_since, token_for, path
):
    token = token_for("python-client")
    window = log_since()
    status, body = _raw(
        window,
        f"GET {_target(window, path)} HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n",
    )
    trail = _verifier_refused(window, status, body, 403)
    assert trail.reasons == ["path_not_canonical"]


def test_http_1_0_without_host_is_decided_like_any_request(log_since, token_for):
    # HTTP/1.0 may omit Host; nginx serves it from the one server block and the
    # verifier decides it normally: a viewer's POST stays forbidden.
    token = token_for("python-client")
    window = log_since()
    status, body = _raw(
        window,
        "POST {target} HTTP/1.0\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        "Content-Length: 2\r\n\r\n",
        b"{}",
    )
    trail = _verifier_refused(window, status, body, 403)
    assert trail.reasons == ["realm_role_missing"]


def test_http_1_1_without_host_is_refused_by_nginx(log_since, token_for):
    token = token_for("python-client")
    window = log_since()
    status, _ = _raw(
        window,
        f"GET {{target}} HTTP/1.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
    )
    _nginx_refused(window, status)


@pytest.mark.parametrize("kib", [17, 64])
def test_an_oversized_header_is_refused_by_nginx_with_400(log_since, token_for, kib):
    token = token_for("python-client")
    window = log_since()
    status, body = _raw(
        window,
        "GET {target} HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {token}\r\nX-Padding: {'a' * kib * 1024}\r\n"
        "Connection: close\r\n\r\n",
    )
    assert b"Request Header Or Cookie Too Large" in body
    _nginx_refused(window, status)


def test_too_many_large_headers_are_refused_by_nginx_with_400(log_since, token_for):
    # Each under one 16k buffer, together more than the 4 buffers nginx allows.
    token = token_for("python-client")
    window = log_since()
    padding = "".join(f"X-Pad-{n}: {'b' * 12000}\r\n" for n in range(8))
    status, _ = _raw(
        window,
        "GET {target} HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {token}\r\n{padding}Connection: close\r\n\r\n",
    )
    _nginx_refused(window, status)


def test_content_length_with_transfer_encoding_is_refused_by_nginx(log_since, token_for):
    # The classic CL.TE smuggling shape. batch-worker may POST, so only the
    # framing can be the reason for the refusal.
    token = token_for("batch-worker")
    ctx_cert = cert_of("batch-worker")
    window = log_since()
    smuggled = b"0\r\n\r\nGET /api/admin/stats HTTP/1.1\r\nHost: localhost\r\n\r\n"
    ctx = ssl.create_default_context(cafile=SERVER_CA)
    ctx.load_cert_chain(*ctx_cert)
    head = (
        f"POST {window.url('/api/resource', base='')} HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(smuggled)}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    with (
        socket.create_connection((config.HOST, config.NGINX_PORT), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname="localhost") as tls,
    ):
        tls.sendall(head + smuggled)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    assert answer.count(b"HTTP/1.1 ") == 1, answer  # no second (smuggled) response
    status = int(answer.split(b"\r\n", 1)[0].split()[1])
    _nginx_refused(window, status)


def test_transfer_encoding_on_http_1_0_is_refused_by_nginx(log_since, token_for):
    token = token_for("batch-worker")
    window = log_since()
    ctx = ssl.create_default_context(cafile=SERVER_CA)
    ctx.load_cert_chain(*cert_of("batch-worker"))
    head = (
        f"POST {window.url('/api/resource', base='')} HTTP/1.0\r\nHost: localhost\r\n"
        f"Authorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
    ).encode()
    with (
        socket.create_connection((config.HOST, config.NGINX_PORT), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname="localhost") as tls,
    ):
        tls.sendall(head)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    status = int(answer.split(b"\r\n", 1)[0].split()[1])
    _nginx_refused(window, status)


@pytest.mark.parametrize("count", [100, 300])
def test_many_small_headers_without_a_token_get_401_token_missing_not_5xx(log_since, count):
    """nginx accepts any number of headers that fit its buffers and (today) forwards
    them all on the ``/_authz`` subrequest; the verifier's gunicorn refuses more than
    ``limit_request_fields`` (100) with 400, which ``auth_request`` turns into 500
    -> our 503. A client's own excess must never look like a server fault: the
    request should be decided like any other (here: no token -> 401 token_missing).
    Fails until the nginx snippet patch in the report is applied."""
    window = log_since()
    padding = "".join(f"X-H{n}: v\r\n" for n in range(count))
    status, body = _raw(
        window,
        f"GET {{target}} HTTP/1.1\r\nHost: localhost\r\n{padding}Connection: close\r\n\r\n",
    )
    trail = window.trail()
    assert trail.api == []
    assert status < 500, f"{status} {body[:80]!r}: a client's excess answered as a server fault"
    assert status == 401, body
    assert trail.reasons == ["token_missing"]


RESETS = 30


def test_clients_resetting_mid_request_leave_only_parseable_access_log_lines(stack):
    """nginx logs status "000" for a request whose client went away before any
    answer; written bare, that line was not JSON and broke every reader of the
    log (an attacker could blind log-based tooling at will). It is logged as 0."""
    ctx = ssl.create_default_context(cafile=SERVER_CA)
    ctx.load_cert_chain(*cert_of("python-client"))
    offset = config.NGINX_ACCESS_LOG.stat().st_size
    for i in range(RESETS):
        tls = ctx.wrap_socket(
            socket.create_connection((config.HOST, config.NGINX_PORT), timeout=10),
            server_hostname="localhost",
        )
        tls.sendall(f"GET /api/resource?reset={i} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        time.sleep((i % 6) * 0.0005)  # a spread of moments: read, deciding, answering
        tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        tls.close()  # RST, before nginx can answer
    time.sleep(1)  # nginx logs after it gave up on each
    with open(config.NGINX_ACCESS_LOG, "rb") as fh:
        fh.seek(offset)
        raw_lines = fh.read().splitlines()
    assert raw_lines, "nginx logged none of the reset requests"
    lines = [json.loads(line) for line in raw_lines]  # every line is JSON
    assert all(isinstance(line["status"], int) for line in lines)
