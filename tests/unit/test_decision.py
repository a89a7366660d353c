"""The whole decision, end to end through ``decide``.

``REFUSALS`` holds at least one scenario per reason code;
``test_every_reason_code_has_a_refusal_scenario`` fails when a new reason is
added to ``verifier.errors`` without one.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from tests.verifier_fixtures import cnf_of
from verifier import jwks
from verifier.caches import DecisionCaches
from verifier.errors import JwksUnavailable, all_reasons
from verifier.identity import Identity
from verifier.jwks import JWKSKeySource
from verifier.transport import serial_hex


@dataclass(frozen=True)
class Ctx:
    """Everything a scenario needs to build its event."""

    pki: Any
    token: Callable[..., str]
    event: Callable[..., dict[str, Any]]
    other_key: Any
    now: float
    craft: Callable[..., str]


@pytest.fixture
def ctx(pki, make_token, make_event, other_signing_key, now, craft_token) -> Ctx:
    return Ctx(pki, make_token, make_event, other_signing_key, now, craft_token)


class _BrokenKeys:
    """A key source with a bug in it."""

    key_count = 0

    def get_key(self, kid: str, now: float) -> Any:
        raise ZeroDivisionError("bug")

    def refresh_if_stale(self, now: float) -> None:
        return None


def _jwks_never_fetched(monkeypatch: pytest.MonkeyPatch) -> JWKSKeySource:
    def refuse(url: str, ca_bundle: str | None, timeout: float) -> Any:
        raise JwksUnavailable("connection refused")

    monkeypatch.setattr(jwks, "fetch_jwks", refuse)
    return JWKSKeySource("https://keycloak.invalid/certs")


# Each scenario: (reason, pytest id, build(ctx) -> event).
Scenario = tuple[str, str, Callable[[Ctx], dict[str, Any]]]
G = "/api/resource"

REFUSALS: list[Scenario] = [
    # 1. transport
    (
        "client_cert_not_verified",
        "verify-failed",
        lambda c: c.event(token=c.token(), verify="FAILED:certificate revoked"),
    ),
    ("client_cert_not_verified", "verify-none", lambda c: c.event(token=c.token(), verify="NONE")),
    ("client_cert_not_verified", "verify-absent", lambda c: c.event(token=c.token(), verify=None)),
    (
        "client_cert_not_verified",
        "verify-lowercase",
        lambda c: c.event(token=c.token(), verify="success"),
    ),
    ("client_cert_missing", "no-pem", lambda c: c.event(token=c.token(), cert_pem="")),
    (
        "client_cert_malformed",
        "garbage-pem",
        lambda c: c.event(
            token=c.token(),
            cert_pem="-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n",
        ),
    ),
    (
        "client_cert_not_client_auth",
        "server-auth-only",
        lambda c: c.event(token=c.token(), cert_pem=c.pki.server_auth_only.pem),
    ),
    (
        "client_cert_expired",
        "expired",
        lambda c: c.event(token=c.token(), cert_pem=c.pki.expired.pem),
    ),
    (
        "client_cert_not_yet_valid",
        "not-yet-valid",
        lambda c: c.event(token=c.token(), cert_pem=c.pki.not_yet_valid.pem),
    ),
    (
        "client_cert_issuer_untrusted",
        "server-ca-with-client-auth",
        lambda c: c.event(token=c.token(), cert_pem=c.pki.from_server_ca.pem),
    ),
    (
        "client_cert_issuer_untrusted",
        "self-signed",
        lambda c: c.event(token=c.token(), cert_pem=c.pki.self_signed.pem),
    ),
    (
        "client_cert_issuer_untrusted",
        "forged-signature",
        lambda c: c.event(token=c.token(), cert_pem=c.pki.forged_signature.pem),
    ),
    (
        "client_cert_issuer_untrusted",
        "wrong-authority-key-id",
        lambda c: c.event(token=c.token(), cert_pem=c.pki.wrong_aki.pem),
    ),
    (
        "client_cert_issuer_untrusted",
        "from-a-retired-ca-no-longer-trusted",
        lambda c: c.event(token=c.token(), cert_pem=c.pki.from_retired_ca.pem),
    ),
    (
        "cert_revoked",
        "on-the-issuing-cas-crl",
        lambda c: c.event(token=c.token(), cert_pem=c.pki.revoked.pem),
    ),
    # 2. token: the header
    ("token_missing", "no-authorization", lambda c: c.event()),
    ("token_missing", "empty-authorization", lambda c: c.event(authorization="")),
    (
        "token_header_multiple",
        "two-values",
        lambda c: c.event(authorization=[f"Bearer {c.token()}", f"Bearer {c.token()}"]),
    ),
    (
        "token_header_multiple",
        "joined-by-proxy",
        lambda c: c.event(authorization=f"Bearer {c.token()},Bearer {c.token()}"),
    ),
    ("token_scheme_not_bearer", "basic", lambda c: c.event(authorization="Basic dXNlcjpwYXNz")),
    ("token_scheme_not_bearer", "bare-token", lambda c: c.event(authorization=c.token())),
    (
        "token_scheme_case_invalid",
        "lowercase-bearer",
        lambda c: c.event(authorization=f"bearer {c.token()}"),
    ),
    (
        "token_scheme_case_invalid",
        "uppercase-bearer",
        lambda c: c.event(authorization=f"BEARER {c.token()}"),
    ),
    ("token_too_large", "9-kib-token", lambda c: c.event(token=c.token(padding="x" * 9000))),
    ("token_malformed", "not-a-jwt", lambda c: c.event(token="not-a-jwt")),
    ("token_malformed", "three-junk-segments", lambda c: c.event(token="aaa.bbb.ccc")),
    ("token_malformed", "double-space", lambda c: c.event(authorization=f"Bearer  {c.token()}")),
    # 2. token: header parameters and key
    (
        "token_alg_not_allowed",
        "hs256",
        lambda c: c.event(token=c.token(algorithm="HS256", key="a-shared-secret-32-bytes-long!!!")),
    ),
    (
        "token_alg_not_allowed",
        "alg-none",
        lambda c: c.event(
            token=jwt.encode(
                {"azp": "python-client"}, None, algorithm="none", headers={"kid": "test-key-1"}
            )
        ),
    ),
    ("token_alg_not_allowed", "rs512", lambda c: c.event(token=c.token(algorithm="RS512"))),
    (
        "token_crit_unsupported",
        "crit-unknown-extension",
        lambda c: c.event(token=c.token(headers={"crit": ["x-policy"], "x-policy": 1})),
    ),
    (
        "token_crit_unsupported",
        "crit-b64-understood-by-pyjwt",
        lambda c: c.event(
            token=c.craft({"alg": "RS256", "kid": "test-key-1", "crit": ["b64"], "b64": True})
        ),
    ),
    ("token_kid_missing", "no-kid", lambda c: c.event(token=c.token(kid=None))),
    ("token_kid_missing", "empty-kid", lambda c: c.event(token=c.token(kid=""))),
    ("token_key_unknown", "unknown-kid", lambda c: c.event(token=c.token(kid="other-kid"))),
    (
        "token_signature_invalid",
        "signed-by-another-key",
        lambda c: c.event(token=c.token(key=c.other_key.private)),
    ),
    ("token_signature_invalid", "tampered-payload", lambda c: c.event(token=_tamper(c.token()))),
    # 2. token: claims
    (
        "token_issuer_invalid",
        "other-realm",
        lambda c: c.event(token=c.token(iss="https://localhost:8443/realms/master")),
    ),
    (
        "token_issuer_invalid",
        "trailing-slash",
        lambda c: c.event(token=c.token(iss="https://localhost:8443/realms/zerotrust/")),
    ),
    ("token_audience_invalid", "account-only", lambda c: c.event(token=c.token(aud=["account"]))),
    ("token_claim_missing", "no-exp", lambda c: c.event(token=c.token(drop=["exp"]))),
    ("token_claim_missing", "no-iat", lambda c: c.event(token=c.token(drop=["iat"]))),
    ("token_claim_missing", "no-azp", lambda c: c.event(token=c.token(drop=["azp"]))),
    ("token_claim_missing", "no-typ", lambda c: c.event(token=c.token(drop=["typ"]))),
    ("token_claim_missing", "no-aud", lambda c: c.event(token=c.token(drop=["aud"]))),
    ("token_claim_invalid", "exp-not-a-number", lambda c: c.event(token=c.token(exp="soon"))),
    ("token_claim_invalid", "azp-not-a-string", lambda c: c.event(token=c.token(azp=42))),
    ("token_claim_invalid", "sub-not-a-string", lambda c: c.event(token=c.token(sub=42))),
    (
        "token_claim_invalid",
        "thumbprint-padded",
        lambda c: c.event(token=c.token(cnf={"x5t#S256": cnf_of(c.pki.client)["x5t#S256"] + "="})),
    ),
    (
        "token_claim_invalid",
        "thumbprint-not-a-string",
        lambda c: c.event(token=c.token(cnf={"x5t#S256": 1})),
    ),
    (
        "token_claim_invalid",
        "thumbprint-hex",
        lambda c: c.event(token=c.token(cnf={"x5t#S256": "ab" * 32})),
    ),
    (
        "token_expired",
        "expired-beyond-leeway",
        lambda c: c.event(token=c.token(exp=int(c.now) - 31)),
    ),
    ("token_not_yet_valid", "nbf-in-future", lambda c: c.event(token=c.token(nbf=int(c.now) + 60))),
    (
        "token_issued_in_future",
        "iat-in-future",
        lambda c: c.event(token=c.token(iat=int(c.now) + 60, exp=int(c.now) + 600)),
    ),
    (
        "token_lifetime_too_long",
        "ten-hour-token",
        lambda c: c.event(token=c.token(exp=int(c.now) + 36000)),
    ),
    ("token_type_invalid", "id-token", lambda c: c.event(token=c.token(typ="ID"))),
    ("token_type_invalid", "refresh-token", lambda c: c.event(token=c.token(typ="Refresh"))),
    # 3. binding
    (
        "binding_cn_mismatch",
        "other-clients-cert",
        lambda c: c.event(token=c.token(), cert_pem=c.pki.other_client.pem),
    ),
    (
        "binding_cn_mismatch",
        "token-for-other-client",
        lambda c: c.event(token=c.token(azp="other-client")),
    ),
    (
        "binding_cn_mismatch",
        "cert-with-two-cns",
        lambda c: c.event(token=c.token(), cert_pem=c.pki.two_cns.pem),
    ),
    (
        "binding_thumbprint_mismatch",
        "cnf-of-another-cert",
        lambda c: c.event(token=c.token(cnf=cnf_of(c.pki.other_client))),
    ),
    (
        "binding_thumbprint_mismatch",
        "cnf-of-the-previous-cert-after-rotation",
        lambda c: c.event(token=c.token(cnf=cnf_of(c.pki.previous_client))),
    ),
    (
        "binding_thumbprint_mismatch",
        "the-previous-cert-with-the-new-token",
        lambda c: c.event(token=c.token(), cert_pem=c.pki.previous_client.pem),
    ),
    ("token_not_bound", "no-cnf", lambda c: c.event(token=c.token(drop=["cnf"]))),
    ("token_not_bound", "empty-cnf", lambda c: c.event(token=c.token(cnf={}))),
    (
        "token_binding_unsupported",
        "dpop-jkt-as-bearer",
        lambda c: c.event(
            token=c.token(cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
        ),
    ),
    (
        "token_binding_unsupported",
        "x5t-and-jkt",
        lambda c: c.event(token=c.token(cnf={**cnf_of(c.pki.client), "jkt": "abc"})),
    ),
    (
        "token_binding_unsupported",
        "cnf-jwk",
        lambda c: c.event(token=c.token(cnf={"jwk": {"kty": "EC"}})),
    ),
    (
        "token_binding_unsupported",
        "cnf-not-an-object",
        lambda c: c.event(token=c.token(cnf="x5t")),
    ),
    ("token_binding_unsupported", "cnf-null", lambda c: c.event(token=c.token(cnf=None))),
    # 4. authorization
    (
        "path_not_canonical",
        "dot-dot",
        lambda c: c.event(token=c.token(), path="/api/../api/admin/x"),
    ),
    (
        "path_not_canonical",
        "encoded-dot-dot",
        lambda c: c.event(token=c.token(), path="/api/%2e%2e/api/admin/x"),
    ),
    ("path_not_canonical", "double-slash", lambda c: c.event(token=c.token(), path="//api/admin")),
    (
        "path_not_canonical",
        "encoded-slash",
        lambda c: c.event(token=c.token(), path="/api%2Fadmin/x"),
    ),
    ("route_not_allowed", "unknown-route", lambda c: c.event(token=c.token(), path="/api/secret")),
    (
        "route_not_allowed",
        "unlisted-method",
        lambda c: c.event(token=c.token(), method="DELETE", path=G),
    ),
    (
        "route_not_allowed",
        "lowercase-method",
        lambda c: c.event(token=c.token(), method="get", path=G),
    ),
    (
        "realm_role_missing",
        "viewer-on-admin-route",
        lambda c: c.event(token=c.token(), path="/api/admin/users"),
    ),
    (
        "realm_role_missing",
        "viewer-posts",
        lambda c: c.event(token=c.token(), method="POST", path=G),
    ),
    (
        "client_role_missing",
        "viewer-without-read",
        lambda c: c.event(token=c.token(resource_access={"zerotrust-api": {"roles": []}})),
    ),
    (
        "client_role_missing",
        "read-of-another-client",
        lambda c: c.event(token=c.token(resource_access={"account": {"roles": ["read"]}})),
    ),
    (
        "tenant_mismatch",
        "other-tenant",
        lambda c: c.event(token=c.token(), path="/api/tenants/globex/items"),
    ),
    (
        "tenant_mismatch",
        "no-org-claim",
        lambda c: c.event(token=c.token(drop=["org"]), path="/api/tenants/acme/items"),
    ),
]


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["realm_access"] = {"roles": ["admin"]}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(
    ("reason", "build"),
    [pytest.param(reason, build, id=f"{reason}:{name}") for reason, name, build in REFUSALS],
)
def test_each_refusal_is_denied_with_its_reason_and_status(ctx, run, reason, build):
    response = run(build(ctx))
    assert (response.decision, response.reason) == ("deny", reason), response.detail
    assert response.status == all_reasons()[reason]
    assert response.asdict()["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_every_reason_code_has_a_refusal_scenario():
    covered = {reason for reason, _, _ in REFUSALS}
    elsewhere = {
        "jwks_unavailable": "test_a_never_fetched_jwks_is_refused_with_jwks_unavailable",
        "jwks_stale": "test_keys_past_the_maximum_staleness_are_refused_with_jwks_stale",
        "internal_error": "test_a_bug_in_a_check_denies_with_internal_error",
        "audit_unavailable": "test_app.py: unwritable audit log",
        "crl_unavailable": "test_revocation.py: every way the CRLs can be unusable",
        "locked_out": "test_lockout.py: a locked-out certificate, before its token is read",
    }
    assert set(all_reasons()) - covered == set(elsewhere)


def test_a_never_fetched_jwks_is_refused_with_jwks_unavailable(ctx, run, monkeypatch):
    keys = _jwks_never_fetched(monkeypatch)
    response = run(ctx.event(token=ctx.token()), keys_=keys)
    assert (response.reason, response.status) == ("jwks_unavailable", 401)


def test_keys_past_the_maximum_staleness_are_refused_with_jwks_stale(
    ctx, run, monkeypatch, signing_key
):
    answers: list[Any] = [{"keys": [signing_key.jwk]}]

    def fetch(url: str, ca_bundle: str | None, timeout: float) -> Any:
        if answers:
            return answers.pop()
        raise JwksUnavailable("connection refused")

    monkeypatch.setattr(jwks, "fetch_jwks", fetch)
    keys = JWKSKeySource("https://keycloak.invalid/certs", max_age=300, max_staleness=900)
    keys.refresh_if_stale(ctx.now - 901, wait=5)  # the last good fetch
    response = run(ctx.event(token=ctx.token()), keys_=keys)
    assert (response.reason, response.status) == ("jwks_stale", 401)
    assert "901s ago" in response.detail


def test_a_header_nginx_withheld_is_refused_as_token_malformed_naming_it(ctx, run):
    event = ctx.event(token=ctx.token())
    event["headers"]["X-Refused-Header"] = "Authorization"
    event["multiValueHeaders"]["X-Refused-Header"] = ["Authorization"]
    response = run(event)
    assert (response.reason, response.status) == ("token_malformed", 401)
    assert response.detail.startswith("Authorization: a control byte")
    assert response.identity.cert_cn == "python-client"  # the certificate was proven


def test_a_bug_in_a_check_denies_with_internal_error(ctx, run):
    response = run(ctx.event(token=ctx.token()), keys_=_BrokenKeys())
    assert (response.decision, response.reason, response.status) == (
        "deny",
        "internal_error",
        401,
    )


def test_a_malformed_event_is_denied_not_raised(run):
    for event in ({}, {"requestContext": "x"}, {"headers": ["a"]}, None):
        assert run(event).decision == "deny"


# --- allowed requests --------------------------------------------------------------


def test_get_resource_is_allowed_for_viewer_with_read(ctx, run):
    response = run(ctx.event(token=ctx.token()))
    assert (response.decision, response.status, response.reason) == ("allow", 200, "ok")
    identity = response.identity
    assert identity.subject == identity.cert_cn == identity.azp == "python-client"
    assert identity.sub == "5f0c9d8e-service-account-python-client"
    assert identity.jti == "c0ffee00-0000-4000-8000-000000000001"
    assert identity.realm_roles == ("default-roles-zerotrust", "viewer")
    assert identity.client_roles == ("read",)
    assert (identity.org, identity.department) == ("acme", "engineering")
    assert identity.cert_serial == serial_hex(ctx.pki.client.cert.serial_number)
    assert identity.cert_subject_dn == "CN=python-client,O=zerotrust-test"
    assert identity.cert_issuer_dn == "CN=zerotrust client issuing CA,O=zerotrust-test"


def test_post_resource_is_allowed_for_operator_with_write(ctx, run):
    token = ctx.token(
        realm_access={"roles": ["operator"]},
        resource_access={"zerotrust-api": {"roles": ["write"]}},
    )
    assert run(ctx.event(token=token, method="POST")).decision == "allow"


def test_admin_route_is_allowed_for_admin(ctx, run):
    token = ctx.token(realm_access={"roles": ["admin"]})
    response = run(ctx.event(token=token, path="/api/admin/users/7"))
    assert response.decision == "allow"


def test_admin_route_is_denied_for_viewer_with_403(ctx, run):
    response = run(ctx.event(token=ctx.token(), path="/api/admin/users"))
    assert (response.status, response.reason) == (403, "realm_role_missing")


def test_tenant_route_is_allowed_for_the_tokens_own_org(ctx, run):
    response = run(ctx.event(token=ctx.token(), path="/api/tenants/acme/items"))
    assert response.decision == "allow"


def test_tenant_route_is_denied_for_another_org(ctx, run):
    response = run(ctx.event(token=ctx.token(), path="/api/tenants/globex/items"))
    assert (response.status, response.reason) == (403, "tenant_mismatch")


def test_token_bound_to_the_presented_cert_is_allowed(ctx, run):
    token = ctx.token(cnf=cnf_of(ctx.pki.client))
    assert run(ctx.event(token=token)).decision == "allow"


def test_token_bound_to_another_cert_of_the_same_workload_is_refused_with_thumbprint_mismatch(
    ctx, run
):
    token = ctx.token(cnf=cnf_of(ctx.pki.previous_client))
    response = run(ctx.event(token=token))
    assert (response.status, response.reason) == (401, "binding_thumbprint_mismatch")


def test_an_unbound_token_is_refused_with_token_not_bound(ctx, run):
    response = run(ctx.event(token=ctx.token(drop=["cnf"])))
    assert (response.status, response.reason) == (401, "token_not_bound")
    assert response.identity.azp == "python-client"  # the token was verified, not bound


def test_a_dpop_bound_token_presented_as_bearer_is_refused_with_binding_unsupported(ctx, run):
    response = run(ctx.event(token=ctx.token(cnf={"jkt": "abc"})))
    assert (response.status, response.reason) == (401, "token_binding_unsupported")


def test_an_unbound_token_is_allowed_when_bound_tokens_are_not_required(ctx, run, settings):
    phasing_in = dataclasses.replace(settings, require_bound_tokens=False)
    assert run(ctx.event(token=ctx.token(drop=["cnf"])), settings_=phasing_in).allowed
    assert run(ctx.event(token=ctx.token(cnf={})), settings_=phasing_in).allowed


def test_an_unknown_cnf_member_is_refused_even_when_bound_tokens_are_not_required(
    ctx, run, settings
):
    phasing_in = dataclasses.replace(settings, require_bound_tokens=False)
    for cnf in ({"jkt": "abc"}, {**cnf_of(ctx.pki.client), "jkt": "abc"}, "x5t"):
        response = run(ctx.event(token=ctx.token(cnf=cnf)), settings_=phasing_in)
        assert (response.status, response.reason) == (401, "token_binding_unsupported"), cnf


def test_a_present_thumbprint_must_match_even_when_bound_tokens_are_not_required(
    ctx, run, settings
):
    phasing_in = dataclasses.replace(settings, require_bound_tokens=False)
    token = ctx.token(cnf=cnf_of(ctx.pki.previous_client))
    response = run(ctx.event(token=token), settings_=phasing_in)
    assert response.reason == "binding_thumbprint_mismatch"


def test_a_cached_token_is_bound_again_to_the_certificate_of_each_request(ctx, run, caches):
    token = ctx.token()
    assert run(ctx.event(token=token)).allowed
    assert len(caches.tokens) == 1
    other = run(ctx.event(token=token, cert_pem=ctx.pki.previous_client.pem))
    assert other.reason == "binding_thumbprint_mismatch"
    assert run(ctx.event(token=token)).allowed


def test_the_query_string_is_ignored_for_route_matching(ctx, run):
    event = ctx.event(token=ctx.token(), path="/api/resource?next=/api/admin/%2e%2e")
    assert run(event).decision == "allow"


def test_expired_token_within_leeway_is_still_accepted(ctx, run, now):
    assert run(ctx.event(token=ctx.token(exp=int(now) - 29))).decision == "allow"


def test_expired_token_is_refused_with_token_expired(ctx, run, now):
    response = run(ctx.event(token=ctx.token(exp=int(now) - 31)))
    assert (response.status, response.reason) == (401, "token_expired")


# --- what a denial still tells the audit -------------------------------------------


def test_a_denied_token_keeps_the_proven_certificate_but_no_claims(ctx, run):
    response = run(ctx.event(token=ctx.token(key=ctx.other_key.private)))
    assert response.identity.cert_cn == "python-client"
    assert response.identity.cert_subject_dn.startswith("CN=python-client")
    assert response.identity.sub == response.identity.azp == ""


def test_a_denied_route_keeps_the_verified_identity(ctx, run):
    response = run(ctx.event(token=ctx.token(), path="/api/secret"))
    assert response.identity.subject == "python-client"
    assert response.identity.jti


# --- the Lambda-shaped response ------------------------------------------------------


def test_asdict_is_an_api_gateway_authorizer_response(ctx, run):
    event = ctx.event(token=ctx.token())
    body = run(event).asdict()
    json.dumps(body)
    assert body["principalId"] == "python-client"
    statement = body["policyDocument"]["Statement"][0]
    assert statement == {
        "Action": "execute-api:Invoke",
        "Effect": "Allow",
        "Resource": event["methodArn"],
    }
    assert body["context"]["decision"] == "allow"
    assert body["context"]["realm_roles"] == "default-roles-zerotrust,viewer"
    assert body["context"]["client_roles"] == "read"
    assert body["context"]["azp"] == body["context"]["cert_cn"] == "python-client"
    assert all(isinstance(v, str | int) for v in body["context"].values())


# --- what each check proved, on a deny ------------------------------------------------


def test_a_binding_failure_keeps_the_certificate_and_the_token_but_binds_no_subject(ctx, run):
    response = run(ctx.event(token=ctx.token(azp="other-client")))
    assert response.reason == "binding_cn_mismatch"
    identity = response.identity
    assert (identity.cert_cn, identity.azp, identity.subject) == (
        "python-client",
        "other-client",
        "",
    )


def test_a_transport_failure_proves_nothing(ctx, run):
    response = run(ctx.event(token=ctx.token(), verify="NONE"))
    assert response.reason == "client_cert_not_verified"
    assert response.identity == Identity()


def test_an_allow_is_valid_until_the_token_expires_when_that_comes_first(ctx, run, now):
    response = run(ctx.event(token=ctx.token(exp=int(now) + 100)))
    assert response.valid_until == int(now) + 100


# --- the caches are the caller's ------------------------------------------------------


def test_a_decision_fills_only_the_caches_it_is_given(ctx, run, settings):
    mine, other = DecisionCaches.from_settings(settings), DecisionCaches.from_settings(settings)
    assert run(ctx.event(token=ctx.token()), caches_=mine).allowed
    assert (len(mine.tokens), len(mine.certs), len(mine.issuers)) == (1, 1, 1)
    assert (len(other.tokens), len(other.certs), len(other.issuers)) == (0, 0, 0)


def test_a_token_cache_size_of_0_builds_no_token_cache(ctx, run, settings):
    off = DecisionCaches.from_settings(dataclasses.replace(settings, token_cache_size=0))
    assert off.tokens is None
    assert run(ctx.event(token=ctx.token()), caches_=off).allowed
