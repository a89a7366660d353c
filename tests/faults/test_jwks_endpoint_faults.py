"""The JWKS endpoint misbehaves: slow, garbage, HTML, errors, huge, trickling.

In-process, no stack needed: a tiny HTTPS server on loopback (its own throw-away
CA, so the verifier's TLS check is real) serves the JWKS, and
``verifier.jwks.JWKSKeySource`` fetches from it. After one good fetch the server
switches to a fault mode and the key source is forced to refetch (cooldown 0,
max age 0). Expected for every mode:

* ``get_key`` for a known kid answers at once while the refetch runs in the
  background, and that refetch ends within its total deadline (plus a margin)
  — a bad JWKS endpoint must not hold a verifier worker (nginx gives up after 3 s);
* the last good keys are kept (the known kid still verifies), the unknown kid is
  ``token_key_unknown``, and ``last_error`` says what went wrong;
* the good document served again is picked up.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.x509_helpers import build_cert, cert_pem, key_pem, new_key
from verifier.errors import TokenKeyUnknown
from verifier.jwks import MAX_JWKS_BYTES, JWKSKeySource

TIMEOUT = 1.0
MARGIN = 1.5  # scheduling slack on a loaded 2-core machine
TRICKLE_CAP = 6.0
SIGNING = rsa.generate_private_key(public_exponent=65537, key_size=2048)
GOOD = {
    "keys": [
        {
            **RSAAlgorithm.to_jwk(SIGNING.public_key(), as_dict=True),
            "kid": "good-kid",
            "alg": "RS256",
            "use": "sig",
        }
    ]
}


class _Handler(BaseHTTPRequestHandler):
    mode = "good"
    stop = threading.Event()

    def log_message(self, *args: object) -> None:
        return

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        mode = type(self).mode
        if mode == "good":
            self._send(200, json.dumps(GOOD).encode())
        elif mode == "slow":  # says nothing for longer than the timeout
            self.stop.wait(TIMEOUT * 4)
            self._send(200, json.dumps(GOOD).encode())
        elif mode == "html":
            self._send(200, b"<html><body>Login required</body></html>", "text/html")
        elif mode == "not-an-object":
            self._send(200, b"[1, 2, 3]")
        elif mode == "no-keys":
            self._send(200, b'{"keys": []}')
        elif mode == "only-enc-and-oct":
            doc = {
                "keys": [
                    {"kty": "oct", "k": "c2VjcmV0", "kid": "oct"},
                    {**GOOD["keys"][0], "use": "enc"},
                ]
            }
            self._send(200, json.dumps(doc).encode())
        elif mode == "server-error":
            self._send(500, b'{"error":"boom"}')
        elif mode == "redirect":
            self.send_response(302)
            self.send_header("Location", "https://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif mode == "huge":
            self._send(200, b'{"keys": [' + b" " * (MAX_JWKS_BYTES + 10) + b"]}")
        elif mode == "trickle":
            # A valid length, one byte every TIMEOUT/4: never idle long enough for
            # a per-read timeout. After TRICKLE_CAP it sends the rest at once, so a
            # fetch without a total deadline fails the test in seconds, not minutes.
            body = json.dumps(GOOD).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            cap = time.monotonic() + TRICKLE_CAP
            for i in range(len(body)):
                if self.stop.wait(TIMEOUT / 4) or time.monotonic() > cap:
                    with contextlib.suppress(OSError):
                        self.wfile.write(body[i:])
                    return
                try:
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                except OSError:
                    return
        elif mode == "truncated":  # promises more than it sends, then closes
            body = json.dumps(GOOD).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body[:50])
            self.wfile.flush()
            self.close_connection = True


def _tls_files(tmp: Path) -> tuple[Path, Path, Path]:
    ca_key, key = new_key(), new_key()
    ca = build_cert("jwks test CA", ca_key, ca=True, path_length=0)
    leaf = build_cert(
        "127.0.0.1", key, issuer=ca.subject, signing_key=ca_key, san_ips=["127.0.0.1"]
    )
    ca_file, cert_file, key_file = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    ca_file.write_text(cert_pem(ca))
    cert_file.write_text(cert_pem(leaf))
    key_file.write_bytes(key_pem(key))
    return ca_file, cert_file, key_file


@pytest.fixture(scope="module")
def jwks_server(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """(url, ca_file) of a local HTTPS JWKS endpoint whose mode tests switch."""
    ca_file, cert_file, key_file = _tls_files(tmp_path_factory.mktemp("jwks-tls"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/certs", str(ca_file)
    finally:
        _Handler.stop.set()
        server.shutdown()
        server.server_close()


FAULTS = [
    "slow",
    "html",
    "not-an-object",
    "no-keys",
    "only-enc-and-oct",
    "server-error",
    "redirect",
    "huge",
    "trickle",
    "truncated",
]


@pytest.mark.parametrize("mode", FAULTS)
def test_a_misbehaving_jwks_endpoint_is_abandoned_in_time_and_the_last_good_keys_stay(
    jwks_server, mode
):
    url, ca_file = jwks_server
    _Handler.mode = "good"
    _Handler.stop.clear()
    keys = JWKSKeySource(url, ca_file, timeout=TIMEOUT, cooldown=0, max_age=0)
    assert keys.get_key("good-kid", time.time()).key_id == "good-kid"
    try:
        _Handler.mode = mode
        started = time.monotonic()
        key = keys.get_key("good-kid", time.time())  # due (max_age 0): background refetch
        answered = time.monotonic() - started
        assert key.key_id == "good-kid"  # a known kid is answered from the cache at once
        assert keys.wait_for_refresh(TIMEOUT + MARGIN), f"{mode}: fetch outlived its deadline"
        fetched = time.monotonic() - started
        print(f"{mode}: known kid {answered * 1000:.1f} ms, fetch gave up after {fetched:.2f}s")
        assert answered < TIMEOUT, f"{mode}: the known kid waited {answered:.1f}s for the fetch"
        assert keys.last_error, "the failed fetch must be recorded"
        assert keys.get_key("good-kid", time.time()).key_id == "good-kid"  # last good key kept
        with pytest.raises(TokenKeyUnknown):
            keys.get_key("other-kid", time.time())
    finally:
        _Handler.stop.set()  # release a handler still sleeping or trickling
        _Handler.mode = "good"
    keys.wait_for_refresh(TIMEOUT + MARGIN)  # the other-kid refetch (cooldown 0)
    _Handler.stop.clear()
    keys.refresh_if_stale(time.time(), wait=TIMEOUT + MARGIN)
    assert keys.get_key("good-kid", time.time()).key_id == "good-kid"
    assert keys.last_error is None  # recovered
