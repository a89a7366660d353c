"""Attacks on the token's JOSE header and its compact serialisation.

Each attack is python-client's valid certificate plus a token that is wrong in
one way only: no ``kid``, an unknown ``kid``, the ``kid`` of the realm's
ENCRYPTION key, a header that asks the verifier to fetch or trust a key of the
attacker's choosing (``jku``/``x5u``/``jwk``/``x5c``), ``crit``, a JWE-shaped or
otherwise mis-segmented token, bad base64url, duplicate JSON members, or a
token too large for a header. Every refusal is asserted in three places: the
HTTP status, the verifier's audit reason, and an empty API trail.

The "nothing was fetched" proof for ``jku``/``x5u``: those headers point at a
TCP listener this test opens on loopback; after the verifier has decided, the
listener must not have seen a single connection.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jwt.algorithms import RSAAlgorithm

from scripts import config
from tests.attacks.conftest import (
    SERVER_CA,
    bearer,
    call,
    cert_of,
    present_token,
)
from tests.x509_helpers import build_cert

ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_json(value: Any) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def _sign_raw(header_json: str, payload_json: str, key: rsa.RSAPrivateKey = ATTACKER_KEY) -> str:
    """RS256 over hand-written header/payload JSON text (so duplicates survive)."""
    signing_input = f"{_b64url(header_json.encode())}.{_b64url(payload_json.encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def _forge(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return _sign_raw(
        json.dumps(header, separators=(",", ":")), json.dumps(claims, separators=(",", ":"))
    )


@pytest.fixture
def real(token_for) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a fresh, genuine python-client token."""
    token = token_for("python-client")
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


@pytest.fixture(scope="module")
def realm_jwks(stack) -> list[dict[str, Any]]:
    identity = json.loads(config.IDENTITY_OUTPUTS.read_text())
    r = requests.get(identity["jwks_uri"], verify=SERVER_CA, timeout=10)
    r.raise_for_status()
    return r.json()["keys"]


@contextlib.contextmanager
def _listener() -> Iterator[tuple[str, socket.socket]]:
    """A loopback TCP listener that only counts connections; yields (https url base, socket)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((config.HOST, 0))
        sock.listen(8)
        sock.settimeout(0.5)
        yield f"https://{config.HOST}:{sock.getsockname()[1]}", sock
    finally:
        sock.close()


def _connections(sock: socket.socket) -> int:
    """How many connections are waiting on ``sock`` (0.5 s grace for a late fetch)."""
    seen = 0
    while True:
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            return seen
        conn.close()
        seen += 1


# --- kid ------------------------------------------------------------------------------


def test_a_token_without_kid_is_refused_kid_missing(log_since, real):
    header, claims = real
    header.pop("kid")
    trail = present_token(log_since(), _forge(header, claims))
    assert trail.reasons == ["token_kid_missing"]


def test_a_token_with_an_unknown_kid_is_refused_key_unknown(log_since, real):
    header, claims = real
    header["kid"] = "attacker-kid-" + _b64url(b"\x00" * 6)
    trail = present_token(log_since(), _forge(header, claims))
    assert trail.reasons == ["token_key_unknown"]


def test_a_token_naming_the_realm_encryption_key_is_refused_key_unknown(
    log_since, real, realm_jwks
):
    # The realm publishes an RSA-OAEP key with use=enc; the verifier drops it
    # from its key set, so it can never verify a signature.
    enc = [k for k in realm_jwks if k.get("use") == "enc"]
    assert enc, "precondition: the realm publishes an encryption key"
    header, claims = real
    header["kid"] = enc[0]["kid"]
    trail = present_token(log_since(), _forge(header, claims))
    assert trail.reasons == ["token_key_unknown"]


def test_an_es256_header_with_the_realm_rsa_kid_is_refused_alg_not_allowed(log_since, real):
    header, claims = real
    header["alg"] = "ES256"
    trail = present_token(log_since(), _forge(header, claims))
    assert trail.reasons == ["token_alg_not_allowed"]


# --- headers that name a key source ---------------------------------------------------


@pytest.mark.parametrize("param", ["jku", "x5u"])
def test_a_foreign_token_with_a_key_url_header_is_refused_and_nothing_is_fetched(
    log_since, real, param
):
    header, claims = real  # the realm's kid: the URL is the only other key source offered
    with _listener() as (base, sock):
        header[param] = f"{base}/{param}"
        trail = present_token(log_since(), _forge(header, claims))
        assert _connections(sock) == 0, f"the verifier fetched the {param} URL"
    assert trail.reasons == ["token_signature_invalid"]


def test_a_foreign_token_carrying_its_own_jwk_is_refused_signature_invalid(log_since, real):
    header, claims = real
    header["jwk"] = RSAAlgorithm.to_jwk(ATTACKER_KEY.public_key(), as_dict=True)
    trail = present_token(log_since(), _forge(header, claims))
    assert trail.reasons == ["token_signature_invalid"]


def test_a_foreign_token_carrying_its_own_x5c_chain_is_refused_signature_invalid(log_since, real):
    cert = build_cert("python-client", ATTACKER_KEY)
    header, claims = real
    header["x5c"] = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
    trail = present_token(log_since(), _forge(header, claims))
    assert trail.reasons == ["token_signature_invalid"]


def test_a_token_with_a_crit_header_is_refused_crit_unsupported(log_since, real):
    header, claims = real
    header["crit"] = ["exp"]
    trail = present_token(log_since(), _forge(header, claims))
    assert trail.reasons == ["token_crit_unsupported"]


# --- serialisation ----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RSA-OAEP", "RS256"])
def test_a_jwe_shaped_five_part_token_is_refused_malformed(log_since, realm_jwks, alg):
    # Five segments never parse as a JWS (the "payload" would contain dots), so
    # the header's alg is not even looked at.
    enc = next(k for k in realm_jwks if k.get("use") == "enc")
    header = {"alg": alg, "enc": "A256GCM", "kid": enc["kid"], "typ": "JWT"}
    parts = [_b64url_json(header)] + [_b64url(bytes([n]) * 32) for n in range(1, 5)]
    trail = present_token(log_since(), ".".join(parts))
    assert trail.reasons == ["token_malformed"]


@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        pytest.param(lambda t: t + "." + _b64url(b"extra"), "token_malformed", id="four-segments"),
        pytest.param(lambda t: t.rsplit(".", 1)[0], "token_malformed", id="two-segments"),
        pytest.param(lambda t: t.split(".", 1)[0], "token_malformed", id="header-only"),
        pytest.param(lambda t: "." + t.split(".", 1)[1], "token_malformed", id="empty-header"),
        # Well-formed JWS with a zero-length signature: parses, then fails to verify.
        pytest.param(
            lambda t: t.rsplit(".", 1)[0] + ".", "token_signature_invalid", id="empty-signature"
        ),
    ],
)
def test_a_token_with_extra_or_missing_segments_is_refused(log_since, token_for, shape, reason):
    trail = present_token(log_since(), shape(token_for("python-client")))
    assert trail.reasons == [reason]


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda s: s.replace("-", "+").replace("_", "/") + "+/", id="plus-slash"),
        pytest.param(lambda s: s[:-1] + "*", id="outside-b64token"),
        pytest.param(lambda s: s[: len(s) // 2] + "%41" + s[len(s) // 2 :], id="percent"),
    ],
)
def test_a_signature_that_is_not_base64url_is_refused_malformed(log_since, token_for, mangle):
    header, payload, signature = token_for("python-client").split(".")
    trail = present_token(log_since(), f"{header}.{payload}.{mangle(signature)}")
    assert trail.reasons == ["token_malformed"]


def test_a_real_token_with_base64_padding_appended_is_refused_malformed(log_since, token_for):
    # RFC 7515 section 2: base64url WITHOUT '=' padding. Accepting "sig==" makes
    # one token spellable in several ways (replay caches and token-hash caches
    # keyed on the string then disagree). Kept as a finding; see the report.
    trail = present_token(log_since(), token_for("python-client") + "==")
    assert trail.reasons == ["token_malformed"]


def test_duplicate_alg_members_in_the_header_are_read_last_wins_and_refused(log_since, real):
    # {"alg":"RS256",...,"alg":"none"}: a parser taking the first would verify
    # RS256, one taking the last sees "none". Ours takes the last and refuses.
    header, claims = real
    text = json.dumps(header, separators=(",", ":"))[:-1] + ',"alg":"none"}'
    trail = present_token(log_since(), _sign_raw(text, json.dumps(claims)))
    assert trail.reasons == ["token_alg_not_allowed"]


def test_duplicate_claims_in_a_foreign_payload_do_not_get_past_the_signature(log_since, real):
    header, claims = real
    body = json.dumps(claims, separators=(",", ":"))[:-1]
    body += ',"realm_access":{"roles":["admin"]},"azp":"python-client"}'
    trail = present_token(log_since(), _sign_raw(json.dumps(header), body))
    assert trail.reasons == ["token_signature_invalid"]


# --- size -----------------------------------------------------------------------------------


def test_a_12_kib_token_reaches_the_verifier_and_is_refused_too_large(log_since):
    trail = present_token(log_since(), "a" * 12 * 1024)
    assert trail.reasons == ["token_too_large"]


@pytest.mark.parametrize("kib", [17, 64])
def test_a_token_larger_than_nginx_header_buffers_gets_400_not_5xx(log_since, token_for, kib):
    """nginx's ``large_client_header_buffers 4 16k``: a longer header line is its 494,
    answered as 400 "Request Header Or Cookie Too Large"; the verifier never sees it."""
    real = token_for("python-client")
    window = log_since()
    token = real + "." + "A" * (kib * 1024)
    r = call(window, "GET", "/api/resource", cert=cert_of("python-client"), headers=bearer(token))
    assert r.status_code == 400, r.text[:200]
    trail = window.trail()
    assert trail.nginx["status"] == 400
    assert trail.audit == []
    assert trail.api == []
