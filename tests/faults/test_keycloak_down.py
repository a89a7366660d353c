"""Keycloak stops while the verifier's JWKS cache is warm.

Expected (DESIGN.md "Failure behaviour", verifier/jwks.py):

* tokens signed by a cached key keep verifying: Keycloak is not on the request
  path once the keys are loaded (the token was fetched BEFORE the stop);
* a token with an unknown ``kid`` is refused 401 ``token_key_unknown`` (the
  keys were fetched once, so not ``jwks_unavailable``), and the refetch it
  triggers is rate-limited: at most ONE attempt per gunicorn worker per
  ``JWKS_COOLDOWN_SECONDS`` (30 s), whatever the number of such tokens. Each
  failed attempt logs "JWKS refresh failed, keeping N keys" to the verifier's log
  (gunicorn's stderr), which is how this test counts them;
* ``scripts.zt up`` brings Keycloak back and new tokens work again.

Each gunicorn worker has its own cache; the warm-up sends enough requests to
reach both (accept() races between them).
"""

from __future__ import annotations

import secrets
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from scripts import config
from scripts.services import procs
from tests.attacks.conftest import LogWindow, bearer, call, cert_of, restore_stack, verifier_seconds

WARM_UP_REQUESTS = 40
UNKNOWN_KID_REQUESTS = 25
REFETCH_LOG = "JWKS refresh failed"


def _get(window: LogWindow, token: str):
    return call(
        window, "GET", "/api/resource", cert=cert_of("python-client"), headers=bearer(token)
    )


@pytest.mark.slow
def test_with_keycloak_stopped_cached_keys_keep_working_and_unknown_kids_are_refused(
    log_since, token_for
):
    token = token_for("python-client")
    claims = jwt.decode(token, options={"verify_signature": False})
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for _ in range(WARM_UP_REQUESTS):
        assert _get(log_since(), token).status_code == 200
    warmed = time.monotonic()  # the last fetch attempt of either worker is before this
    try:
        assert procs.stop(config.KEYCLOAK), "Keycloak was not running"
        # 1. the token from before the stop keeps working
        for _ in range(10):
            window = log_since()
            r = _get(window, token)
            assert r.status_code == 200, r.text
            assert window.trail().reasons == ["ok"]
        # 2. once the cooldown has passed, a burst of unknown kids: all refused,
        #    and at most one fetch attempt per worker (each one fails: Keycloak is down)
        time.sleep(
            max(0.0, warmed + verifier_seconds("JWKS_COOLDOWN_SECONDS") + 1 - time.monotonic())
        )
        log_offset = config.VERIFIER.log_file.stat().st_size
        started = time.monotonic()
        for _ in range(UNKNOWN_KID_REQUESTS):
            forged = jwt.encode(
                claims, attacker, algorithm="RS256", headers={"kid": secrets.token_hex(8)}
            )
            window = log_since()
            r = _get(window, forged)
            assert r.status_code == 401, r.text
            trail = window.trail()
            assert trail.reasons == ["token_key_unknown"]
            assert trail.api == []
        elapsed = time.monotonic() - started
        assert elapsed < verifier_seconds("JWKS_COOLDOWN_SECONDS"), (
            "the burst must fit in one cooldown for the bound below"
        )
        time.sleep(0.5)
        with open(config.VERIFIER.log_file, "rb") as fh:
            fh.seek(log_offset)
            new_log = fh.read().decode(errors="replace")
        attempts = new_log.count(REFETCH_LOG)
        print(
            f"\nKeycloak down: {UNKNOWN_KID_REQUESTS} unknown-kid tokens in {elapsed:.1f}s "
            f"-> {attempts} JWKS fetch attempts (at most {config.GUNICORN_WORKERS})"
        )
        assert 1 <= attempts <= config.GUNICORN_WORKERS, new_log[-2000:]
        assert "keeping 0 keys" not in new_log  # every failed attempt kept the warm keys
        # 3. after the failed refetches the cached key still verifies
        window = log_since()
        r = _get(window, token)
        assert r.status_code == 200, r.text
        assert window.trail().reasons == ["ok"]
    finally:
        restored = restore_stack()
    assert restored == 0, "`scripts.zt up` could not bring Keycloak back"

    window = log_since()
    r = _get(window, token_for("python-client"))
    assert r.status_code == 200, r.text
    assert window.trail().reasons == ["ok"]
