"""The AWS Lambda adapter: a container builds its objects once, then decides per invocation.

Each test builds its own ``LambdaAuthorizer`` from the environment the
``production_env`` fixture sets, with an injected clock; the module's own
``authorizer`` (the container's) is only called where it can build nothing.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tests.verifier_fixtures import client_crls
from verifier import jwks
from verifier.lambda_handler import LambdaAuthorizer, handler


@pytest.fixture
def serve_jwks(monkeypatch, signing_key):
    """Answer every JWKS fetch with the test key; returns the URLs fetched."""
    fetched: list[str] = []

    def fake_fetch(url: str, ca_bundle: str | None, timeout: float) -> dict[str, Any]:
        fetched.append(url)
        return {"keys": [signing_key.jwk]}

    monkeypatch.setattr(jwks, "fetch_jwks", fake_fetch)
    return fetched


def test_the_lambda_authorizer_builds_its_decider_from_the_environment_once(
    make_event, make_token, monkeypatch, production_env, serve_jwks, now
):
    monkeypatch.setenv("ZT_VERIFIER_JWKS_URL", "https://keycloak.test/certs")
    authorizer = LambdaAuthorizer(os.environ, clock=lambda: now)
    allowed = authorizer(make_event(token=make_token()), None)
    decider = authorizer.decider
    denied = authorizer(make_event(), None)
    assert allowed["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert denied["context"]["reason"] == "token_missing"
    assert serve_jwks == ["https://keycloak.test/certs"]
    assert authorizer.decider is decider  # built on the first invocation only
    assert len(decider.caches.tokens) == 1


def test_the_lambda_entry_point_denies_when_misconfigured_instead_of_raising(
    make_event, make_token, monkeypatch
):
    monkeypatch.delenv("ZT_VERIFIER_CLIENT_CA_CERT", raising=False)
    body = handler(make_event(token=make_token()), None)
    assert body["context"]["reason"] == "internal_error"
    assert body["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_a_misconfigured_container_keeps_nothing_and_reads_its_environment_again(
    make_event, make_token, monkeypatch, production_env, serve_jwks, now
):
    monkeypatch.delenv("ZT_VERIFIER_ISSUER")
    authorizer = LambdaAuthorizer(os.environ, clock=lambda: now)
    refused = authorizer(make_event(token=make_token()), None)
    assert refused["context"]["reason"] == "internal_error"
    assert authorizer.decider is None
    monkeypatch.setenv("ZT_VERIFIER_ISSUER", "https://localhost:8443/realms/zerotrust")
    allowed = authorizer(make_event(token=make_token()), None)
    assert allowed["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_the_lambda_authorizer_denies_and_logs_every_problem_when_a_variable_is_misspelt(
    make_event, make_token, monkeypatch, production_env, caplog, now
):
    monkeypatch.setenv("ZT_VERIFIER_ISUER", "https://keycloak.test/realms/r")
    monkeypatch.setenv("ZT_VERIFIER_LEEWAY_SECONDS", "abc")
    body = LambdaAuthorizer(os.environ, clock=lambda: now)(make_event(token=make_token()), None)
    assert body["context"]["reason"] == "internal_error"
    assert body["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    logged = caplog.text
    assert "ZT_VERIFIER_ISUER: unknown setting; did you mean ZT_VERIFIER_ISSUER?" in logged
    assert "ZT_VERIFIER_LEEWAY_SECONDS: 'abc' is not a number of seconds" in logged


def test_the_lambda_authorizer_checks_revocation_against_the_crl_file_of_the_setting(
    make_event, make_token, pki, monkeypatch, production_env, serve_jwks, now
):
    crl_file = production_env / "client-ca.crl.pem"
    crl_file.write_text(client_crls(pki, [pki.client.cert.serial_number]))
    monkeypatch.setenv("ZT_VERIFIER_CLIENT_CRL", str(crl_file))
    clock = [now]
    authorizer = LambdaAuthorizer(os.environ, clock=lambda: clock[0])
    revoked = authorizer(make_event(token=make_token()), None)
    crl_file.unlink()  # the next invocation after the check interval looks again
    clock[0] = now + 1
    unavailable = authorizer(make_event(token=make_token()), None)
    assert revoked["context"]["reason"] == "cert_revoked"
    assert revoked["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert (unavailable["context"]["reason"], unavailable["context"]["status"]) == (
        "crl_unavailable",
        503,
    )


def test_a_cold_container_waits_for_its_first_keys_beyond_the_unknown_kid_wait(
    make_event, make_token, monkeypatch, production_env, signing_key, now
):
    def slow_fetch(url: str, ca_bundle: str | None, timeout: float) -> dict[str, Any]:
        time.sleep(1.5)  # longer than JWKS_UNKNOWN_KID_WAIT_SECONDS (1), within the deadline
        return {"keys": [signing_key.jwk]}

    monkeypatch.setattr(jwks, "fetch_jwks", slow_fetch)
    body = LambdaAuthorizer(os.environ, clock=lambda: now)(make_event(token=make_token()), None)
    assert body["policyDocument"]["Statement"][0]["Effect"] == "Allow"
