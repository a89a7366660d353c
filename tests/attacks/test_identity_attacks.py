"""Tokens Keycloak really signed, but for the wrong realm or for a disabled client.

* Another realm on the same Keycloak (``attack-other``, created and deleted here)
  with its own ``python-client`` and an audience mapper naming ``zerotrust-api``:
  every claim but ``iss`` looks right. Each realm signs with its own keys, so the
  verifier never gets as far as comparing ``iss``: the other realm's ``kid`` is
  not in zerotrust's JWKS -> ``token_key_unknown`` (after one rate-limited
  refetch). ``token_issuer_invalid`` for a zerotrust-signed token with another
  ``iss`` (other realm, trailing slash) is covered in tests/unit/test_decision.py,
  because only the realm's private key could sign one.
* A disabled client: the verifier is stateless (JWKS only, no introspection),
  so a token issued BEFORE the client was disabled keeps working until its
  ``exp`` — bounded by the realm's access token lifespan (300 s) plus the
  verifier's leeway. Keycloak refuses to issue a new one at once.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

import jwt
import requests

from scripts import config
from tests.attacks.conftest import (
    CERTIFICATE_CLIENT_ATTRIBUTES,
    KeycloakAdmin,
    bearer,
    call,
    cert_of,
    fetch_token,
)
from tests.tokens import request_token

OTHER_REALM = "attack-other"


@contextlib.contextmanager
def _other_realm(admin: KeycloakAdmin) -> Iterator[str]:
    """A throw-away realm with a python-client that has the API audience; yields its token."""
    s = admin.session()
    base = f"{config.KEYCLOAK_URL}/admin/realms"
    realm = f"{OTHER_REALM}-{secrets.token_hex(3)}"
    r = s.post(base, json={"realm": realm, "enabled": True})
    assert r.status_code == 201, f"could not create realm {realm}: {r.status_code} {r.text}"
    try:
        client: dict[str, Any] = {
            "clientId": "python-client",
            "protocol": "openid-connect",
            "publicClient": False,
            "clientAuthenticatorType": "client-x509",
            "attributes": dict(CERTIFICATE_CLIENT_ATTRIBUTES),
            "serviceAccountsEnabled": True,
            "standardFlowEnabled": False,
            "protocolMappers": [
                {
                    "name": "api-audience",
                    "protocol": "openid-connect",
                    "protocolMapper": "oidc-audience-mapper",
                    "config": {
                        "included.custom.audience": "zerotrust-api",
                        "access.token.claim": "true",
                        "id.token.claim": "false",
                    },
                }
            ],
        }
        s = admin.session()
        r = s.post(f"{base}/{realm}/clients", json=client)
        assert r.status_code == 201, r.text
        endpoint = f"{config.KEYCLOAK_URL}/realms/{realm}/protocol/openid-connect/token"
        yield fetch_token("python-client", cert_of("python-client"), endpoint)
    finally:
        admin.session().delete(f"{base}/{realm}").raise_for_status()


def test_a_token_from_another_realm_on_the_same_keycloak_is_refused(log_since, keycloak_admin):
    with _other_realm(keycloak_admin) as token:
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["iss"].endswith(f"/realms/{claims['iss'].rsplit('/', 1)[1]}")
        assert OTHER_REALM in claims["iss"]
        assert "zerotrust-api" in (
            claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        )
        assert claims["azp"] == "python-client"
        window = log_since()
        r = call(
            window, "GET", "/api/resource", cert=cert_of("python-client"), headers=bearer(token)
        )
    assert r.status_code == 401, r.text
    assert r.json() == {"error": "unauthorized"}
    trail = window.trail()
    assert trail.reasons == ["token_key_unknown"]
    assert trail.api == []


def _client_repr(s: requests.Session, realm: str, client_id: str) -> dict[str, Any]:
    r = s.get(f"{config.KEYCLOAK_URL}/admin/realms/{realm}/clients", params={"clientId": client_id})
    r.raise_for_status()
    (found,) = r.json()
    return found


def _set_enabled(admin: KeycloakAdmin, realm: str, client_id: str, enabled: bool) -> None:
    s = admin.session()
    rep = _client_repr(s, realm, client_id)
    rep["enabled"] = enabled
    r = s.put(f"{config.KEYCLOAK_URL}/admin/realms/{realm}/clients/{rep['id']}", json=rep)
    assert r.status_code == 204, r.text


def test_a_disabled_clients_earlier_token_still_works_until_exp_and_no_new_one_is_issued(
    log_since, keycloak_admin, identity, token_for
):
    realm = identity["realm"]
    token = token_for("batch-worker")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] <= identity["access_token_lifespan_seconds"]
    try:
        _set_enabled(keycloak_admin, realm, "batch-worker", False)
        # Keycloak: no new token for a disabled client.
        r = request_token("batch-worker", cert_of("batch-worker"), identity["token_endpoint"])
        assert r.status_code in (400, 401), r.text
        # The gateway: the earlier token is still a valid signed token (documented bound).
        window = log_since()
        r = call(
            window, "GET", "/api/resource", cert=cert_of("batch-worker"), headers=bearer(token)
        )
        assert r.status_code == 200, r.text
        assert window.trail().reasons == ["ok"]
    finally:
        _set_enabled(keycloak_admin, realm, "batch-worker", True)
    window = log_since()
    fresh = token_for("batch-worker")
    r = call(window, "GET", "/api/resource", cert=cert_of("batch-worker"), headers=bearer(fresh))
    assert r.status_code == 200, r.text
