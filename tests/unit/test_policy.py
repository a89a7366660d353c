"""Route policy: patterns, deny by default, every matching rule must pass."""

from __future__ import annotations

from typing import Any

import pytest

from verifier.claims import VerifiedToken, client_roles, realm_roles
from verifier.errors import (
    ClientRoleMissing,
    RealmRoleMissing,
    RouteNotAllowed,
    TenantMismatch,
)
from verifier.policy import Policy, Rule

CLIENT = "zerotrust-api"


def verified(raw: dict[str, Any]) -> VerifiedToken:
    """What ``verify_token`` would return for a token carrying ``raw``."""
    return VerifiedToken.from_claims({"exp": 2, "iat": 1, "azp": "python-client", **raw}, CLIENT)


def claims(realm: list[str], client: list[str] | None = None, **extra: Any) -> VerifiedToken:
    return verified(
        {
            "realm_access": {"roles": realm},
            "resource_access": {CLIENT: {"roles": client or []}},
            **extra,
        }
    )


def rule(pattern: str, **kwargs: Any) -> Rule:
    kwargs.setdefault("methods", frozenset({"GET"}))
    return Rule(pattern=pattern, **kwargs)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/admin", {}),
        ("/api/admin/users", {}),
        ("/api/admin/users/7/keys", {}),
    ],
)
def test_a_trailing_double_star_matches_the_prefix_and_everything_under_it(path, params):
    assert rule("/api/admin/**").match("GET", path) == params


def test_a_double_star_does_not_match_a_sibling_prefix():
    assert rule("/api/admin/**").match("GET", "/api/administrator") is None


def test_a_parameter_matches_exactly_one_segment_and_binds_it():
    tenant = rule("/api/tenants/{org}/items")
    assert tenant.match("GET", "/api/tenants/acme/items") == {"org": "acme"}
    assert tenant.match("GET", "/api/tenants/acme/x/items") is None
    assert tenant.match("GET", "/api/tenants/acme") is None


def test_a_rule_only_covers_its_methods():
    assert rule("/api/resource").match("POST", "/api/resource") is None


@pytest.mark.parametrize(
    "bad",
    [
        {"pattern": "/api/**/x"},
        {"pattern": "/api/{org}/{org}"},
        {"pattern": "api/resource"},
        {"pattern": "/api/x", "methods": frozenset()},
        {"pattern": "/api/x", "claims": (("org", "{tenant}"),)},
    ],
)
def test_an_ambiguous_rule_is_refused_when_the_policy_loads(bad):
    with pytest.raises(ValueError, match="rule"):
        rule(**bad)


def test_no_matching_rule_is_route_not_allowed():
    with pytest.raises(RouteNotAllowed):
        Policy(()).authorize("GET", "/api/resource", claims(["admin"]))


def test_every_matching_rule_must_pass_so_a_broad_rule_cannot_waive_a_narrow_one():
    policy = Policy(
        (
            rule("/api/**", realm_roles=frozenset({"viewer"})),
            rule("/api/admin/**", realm_roles=frozenset({"admin"})),
        )
    )
    policy.authorize("GET", "/api/resource", claims(["viewer"]))
    with pytest.raises(RealmRoleMissing):
        policy.authorize("GET", "/api/admin/x", claims(["viewer"]))
    with pytest.raises(RealmRoleMissing):
        policy.authorize("GET", "/api/admin/x", claims(["admin"]))
    policy.authorize("GET", "/api/admin/x", claims(["admin", "viewer"]))


def test_client_roles_of_another_client_do_not_count():
    token = {"resource_access": {"account": {"roles": ["read"]}}}
    assert client_roles(token, CLIENT) == frozenset()
    with pytest.raises(ClientRoleMissing):
        rule("/x", client_roles=frozenset({"read"})).check({}, verified(token))


@pytest.mark.parametrize(
    "token",
    [
        {},
        {"realm_access": None},
        {"realm_access": {"roles": "admin"}},
        {"realm_access": {"roles": [{"name": "admin"}]}},
        {"realm_access": ["admin"]},
    ],
)
def test_malformed_role_claims_grant_no_roles(token):
    assert realm_roles(token) == frozenset()


def test_a_tenant_claim_must_equal_the_path_parameter_exactly():
    tenant = rule("/api/tenants/{org}/**", claims=(("org", "{org}"),))
    tenant.check({"org": "acme"}, verified({"org": "acme"}))
    for value in ("ACME", ["acme"], None, "acme "):
        with pytest.raises(TenantMismatch):
            tenant.check({"org": "acme"}, verified({"org": value}))


def test_the_shipped_policy_denies_every_method_it_does_not_list(policy):
    admin = claims(["admin", "viewer", "operator"], ["read", "write"], org="acme")
    for path in ("/api/resource", "/api/admin/x", "/api/tenants/acme/x"):
        with pytest.raises(RouteNotAllowed):
            policy.authorize("OPTIONS", path, admin)
    with pytest.raises(RouteNotAllowed):
        policy.authorize("GET", "/", admin)


def test_the_shipped_policy_requires_write_for_tenant_writes(policy):
    operator_without_write = claims(["operator"], ["read"], org="acme")
    with pytest.raises(ClientRoleMissing):
        policy.authorize("POST", "/api/tenants/acme/x", operator_without_write)
