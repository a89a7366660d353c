"""The one network call, ``fetch_jwks``, against a real TLS endpoint on loopback.

Nothing is patched: ``tests/unit/local_jwks.py`` serves the JWKS over TLS (its own
throw-away CA, so the server check is real) and misbehaves on demand. The point
of most tests is the TOTAL deadline: a byte-at-a-time status line or header
block (each byte well within any per-read timeout) must not stretch a fetch
past its timeout. Timings are printed; the bounds asserted are generous (a
loaded 2-core machine), yet far below the trickle's own length.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.unit.local_jwks import LocalJwks
from verifier.errors import JwksUnavailable
from verifier.jwks_fetch import fetch_jwks

TIMEOUT = 1.0
SLACK = 2.0  # scheduling slack; a trickle of the head alone lasts > 10 s


@pytest.fixture
def server(tmp_path, signing_key) -> Iterator[LocalJwks]:
    with LocalJwks(tmp_path, {"keys": [signing_key.jwk]}, interval=0.1) as local:
        yield local


def test_a_good_endpoint_gives_the_document(server, signing_key):
    assert fetch_jwks(server.url, server.ca_file, TIMEOUT) == {"keys": [signing_key.jwk]}


def test_the_server_certificate_is_checked_against_the_given_ca(server, tmp_path, pki):
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text(pki.client_ca.pem)
    with pytest.raises(JwksUnavailable, match="SSLCertVerificationError"):
        fetch_jwks(server.url, str(other_ca), TIMEOUT)


@pytest.mark.parametrize("mode", ["trickle-head", "trickle-body", "silent", "no-handshake"])
def test_a_trickling_or_silent_endpoint_is_abandoned_at_the_total_deadline(server, mode):
    server.mode = mode
    started = time.monotonic()
    with pytest.raises(JwksUnavailable, match="Timeout"):
        fetch_jwks(server.url, server.ca_file, TIMEOUT)
    elapsed = time.monotonic() - started
    print(f"{mode}: abandoned after {elapsed:.2f}s (deadline {TIMEOUT}s)")
    assert elapsed < TIMEOUT + SLACK


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("status-503", "HTTP 503"),
        ("redirect", "HTTP 302"),  # never followed
        ("not-json", "not JSON"),
        ("not-object", "not a JSON object"),
        ("huge", "larger than"),
        ("truncated", "cut short"),
    ],
)
def test_every_bad_answer_is_jwks_unavailable_saying_why(server, mode, why):
    server.mode = mode
    with pytest.raises(JwksUnavailable, match=why):
        fetch_jwks(server.url, server.ca_file, TIMEOUT)


def test_a_closed_port_is_jwks_unavailable(tmp_path):
    with pytest.raises(JwksUnavailable, match="ConnectionRefusedError"):
        fetch_jwks("https://127.0.0.1:1/certs", None, TIMEOUT)


def test_a_plain_http_url_is_refused_without_connecting(server):
    with pytest.raises(JwksUnavailable, match="must be https"):
        fetch_jwks(server.url.replace("https://", "http://"), server.ca_file, TIMEOUT)
    assert server.requests == 0
