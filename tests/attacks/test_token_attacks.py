"""Attacks on the bearer token, each with python-client's valid certificate.

The certificate is always right here, so the verifier's reason code names the
token check that refused the request. Every refusal is 401
``{"error":"unauthorized"}`` with ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.attacks.conftest import (
    SERVER_CA,
    present_token,
    verifier_seconds,
)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_json(value: dict[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def _unb64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_a_certificate_without_a_token_is_refused_token_missing(log_since):
    trail = present_token(log_since(), None)
    assert trail.reasons == ["token_missing"]
    assert trail.audit[0]["cert_subject_dn"] == "CN=python-client"  # the cert was fine


def test_a_garbage_token_is_refused_token_malformed(log_since):
    trail = present_token(log_since(), "this-is-not-a-jwt")
    assert trail.reasons == ["token_malformed"]


def test_a_token_signed_by_a_foreign_key_under_the_realm_kid_is_refused(log_since, token_for):
    real = token_for("python-client")
    kid = jwt.get_unverified_header(real)["kid"]
    claims = jwt.decode(real, options={"verify_signature": False})  # all claims valid
    attacker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, attacker_key, algorithm="RS256", headers={"kid": kid})
    trail = present_token(log_since(), forged)
    assert trail.reasons == ["token_signature_invalid"]
    assert trail.audit[0]["azp"] == ""  # unverified claims never reach the audit


def test_an_unsigned_alg_none_token_is_refused(log_since, token_for):
    real = token_for("python-client")
    kid = jwt.get_unverified_header(real)["kid"]
    claims = jwt.decode(real, options={"verify_signature": False})
    header = {"alg": "none", "typ": "JWT", "kid": kid}
    unsigned = f"{_b64url_json(header)}.{_b64url_json(claims)}."
    trail = present_token(log_since(), unsigned)
    assert trail.reasons == ["token_alg_not_allowed"]


def test_an_hs256_token_keyed_with_the_realm_public_key_is_refused(log_since, token_for, identity):
    # The classic RS/HS confusion: HMAC "signed" with the public key everyone can fetch.
    real = token_for("python-client")
    kid = jwt.get_unverified_header(real)["kid"]
    ctx = ssl.create_default_context(cafile=SERVER_CA)
    public = jwt.PyJWKClient(identity["jwks_uri"], ssl_context=ctx).get_signing_key(kid).key
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = jwt.decode(real, options={"verify_signature": False})
    signing_input = f"{_b64url_json({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}."
    signing_input += _b64url_json(claims)
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    trail = present_token(log_since(), f"{signing_input}.{_b64url(mac)}")
    assert trail.reasons == ["token_alg_not_allowed"]


def test_a_real_token_with_an_elevated_payload_is_refused_signature_invalid(log_since, token_for):
    # Keep Keycloak's header and signature, grant ourselves admin in the payload,
    # and aim at the admin route: only the signature stands in the way.
    header, payload, signature = token_for("python-client").split(".")
    claims = json.loads(_unb64url(payload))
    claims["realm_access"]["roles"].append("admin")
    claims["resource_access"]["zerotrust-api"]["roles"] = ["read", "write"]
    tampered = f"{header}.{_b64url_json(claims)}.{signature}"
    trail = present_token(log_since(), tampered, path="/api/admin/stats")
    assert trail.reasons == ["token_signature_invalid"]


def test_a_token_for_another_audience_is_refused_audience_invalid(log_since, keycloak_admin):
    # Really signed by the realm, but its client has no audience mapper for the API.
    with keycloak_admin.throwaway_client("noaud", api_audience=False) as token:
        aud = jwt.decode(token, options={"verify_signature": False}).get("aud")
        assert aud, "precondition: the token names some audience"
        assert "zerotrust-api" not in (aud if isinstance(aud, list) else [aud])
        trail = present_token(log_since(), token)
    assert trail.reasons == ["token_audience_invalid"]


@pytest.mark.slow
def test_an_expired_real_token_is_refused_token_expired(log_since, keycloak_admin):
    # Faster than shortening the realm's lifespan to 60 s: a throw-away client with
    # Keycloak's per-client access token lifespan of 1 s (and the API audience),
    # so the wait is only exp + leeway.
    with keycloak_admin.throwaway_client("expired", api_audience=True, lifespan_seconds=1) as tok:
        exp = jwt.decode(tok, options={"verify_signature": False})["exp"]
        # Control: within the leeway the same token passes every token check and
        # is refused only because it belongs to another client than the cert.
        assert present_token(log_since(), tok).reasons == ["binding_cn_mismatch"]
        time.sleep(max(0.0, exp + verifier_seconds("LEEWAY_SECONDS") + 1 - time.time()))
        trail = present_token(log_since(), tok)
    assert trail.reasons == ["token_expired"]
