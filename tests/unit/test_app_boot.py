"""A production-configured worker loads Keycloak's keys as it boots."""

from __future__ import annotations

from verifier import app as app_module
from verifier import jwks


def test_each_worker_fetches_the_jwks_once_at_boot(monkeypatch, production_env, signing_key):
    calls = []

    def fake_fetch(url, ca_bundle, timeout):
        calls.append(url)
        return {"keys": [signing_key.jwk]}

    monkeypatch.setattr(jwks, "fetch_jwks", fake_fetch)
    application = app_module.create_app()
    assert len(calls) == 1
    assert application.extensions["verifier"].decider.keys.key_count == 1


def test_a_worker_boots_even_when_keycloak_is_down(monkeypatch, production_env):
    def down(url, ca_bundle, timeout):
        raise jwks.JwksUnavailable("connection refused")

    monkeypatch.setattr(jwks, "fetch_jwks", down)
    application = app_module.create_app()
    assert application.extensions["verifier"].decider.keys.key_count == 0
