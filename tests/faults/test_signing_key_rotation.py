"""Keycloak's signing key rotates while the gateway serves.

Rotation as an operator does it: a new ``rsa-generated`` key provider with a
higher priority (200 > Terraform's 100) is added to realm zerotrust through the
admin REST API; it becomes the active key, the old one stays published (enabled,
so tokens it signed still verify). Expected:

* new tokens carry the new ``kid``; the verifier does not know it yet, refetches
  the JWKS (at most once per worker per ``JWKS_COOLDOWN_SECONDS``) and accepts
  them — before that refetch is allowed, they are refused ``token_key_unknown``;
* tokens signed by the old key keep working until they expire.

The provider is deleted in ``finally``. (A key removed from the JWKS stays
trusted by a verifier that cached it until ``JWKS_MAX_AGE_SECONDS``, 300 s:
that is the revocation latency for an emergency key removal.)
"""

from __future__ import annotations

import secrets
import time
from collections import Counter

import jwt

from scripts import config
from tests.attacks.conftest import LogWindow, bearer, call, cert_of, verifier_seconds


def _get(window: LogWindow, token: str):
    return call(
        window, "GET", "/api/resource", cert=cert_of("python-client"), headers=bearer(token)
    )


def test_a_rotated_signing_key_is_accepted_after_a_refetch_and_old_tokens_keep_working(
    log_since, token_for, keycloak_admin, identity
):
    realm = identity["realm"]
    old_token = token_for("python-client")
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    components = f"{config.KEYCLOAK_URL}/admin/realms/{realm}/components"
    s = keycloak_admin.session()
    realm_id = s.get(f"{config.KEYCLOAK_URL}/admin/realms/{realm}").json()["id"]
    r = s.post(
        components,
        json={
            "name": f"attack-rotated-{secrets.token_hex(3)}",
            "providerId": "rsa-generated",
            "providerType": "org.keycloak.keys.KeyProvider",
            "parentId": realm_id,
            "config": {
                "priority": ["200"],
                "enabled": ["true"],
                "active": ["true"],
                "keySize": ["2048"],
                "algorithm": ["RS256"],
            },
        },
    )
    assert r.status_code == 201, r.text
    component = r.headers["Location"].rsplit("/", 1)[1]
    try:
        new_token = token_for("python-client")
        new_kid = jwt.get_unverified_header(new_token)["kid"]
        assert new_kid != old_kid, "Keycloak did not switch to the new key"
        # Accepted once each worker has refetched (bounded by one cooldown).
        outcomes: Counter[str] = Counter()
        streak = 0
        deadline = time.monotonic() + verifier_seconds("JWKS_COOLDOWN_SECONDS") + 10
        while streak < 6 and time.monotonic() < deadline:
            window = log_since()
            r = _get(window, new_token)
            reason = window.trail().reasons[0]
            outcomes[reason] += 1
            streak = streak + 1 if r.status_code == 200 else 0
            if r.status_code != 200:
                assert (r.status_code, reason) == (401, "token_key_unknown"), r.text
                time.sleep(1)
        print(f"\nnew kid {new_kid[:8]}...: {dict(outcomes)}")
        assert streak >= 6, f"new-kid tokens were not accepted in time: {dict(outcomes)}"
        # The old key is still published, so old tokens still verify.
        window = log_since()
        r = _get(window, old_token)
        assert r.status_code == 200, r.text
        assert window.trail().reasons == ["ok"]
    finally:
        keycloak_admin.session().delete(f"{components}/{component}").raise_for_status()
    # Back on the Terraform-managed key: fresh tokens carry the old kid again and work.
    window = log_since()
    fresh = token_for("python-client")
    assert jwt.get_unverified_header(fresh)["kid"] == old_kid
    assert _get(window, fresh).status_code == 200
