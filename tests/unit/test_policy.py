"""Route policy: patterns, deny by default, every matching rule must pass; and the
strict loader, which refuses every file it could read more than one way."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from verifier.claims import VerifiedToken, client_roles, realm_roles
from verifier.errors import (
    ClientRoleMissing,
    RealmRoleMissing,
    RouteNotAllowed,
    TenantMismatch,
)
from verifier.policy import (
    SHIPPED_POLICY_PATH,
    Policy,
    PolicyError,
    Rule,
    load_policy,
    policy_problems,
)

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
def test_an_ambiguous_rule_built_in_code_is_refused_too(bad):
    with pytest.raises(PolicyError, match=r"\n  rule \(.*\): (pattern|methods|claims)"):
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


# --- the strict loader: every problem refused at load, named by file, rule and key ---

GOOD_RULE = {"pattern": "/api/resource", "methods": ["GET"], "realm_roles": ["viewer"]}


def write_policy(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def refusal(path: Path) -> list[str]:
    """The problems ``load_policy`` raises, checked to be those ``policy_problems`` lists."""
    with pytest.raises(PolicyError) as refused:
        load_policy(path)
    problems = list(refused.value.problems)
    assert problems == policy_problems(path)
    assert str(refused.value).endswith("\n  ".join(["", *problems]))
    return problems


def the_one_problem_of_rule(tmp_path: Path, bad: dict[str, Any]) -> str:
    """Load a file whose rules[1] is ``bad``; its one problem, checked to start with the
    file and the rule (index, then methods and pattern as far as they are readable)."""
    path = write_policy(tmp_path, {"rules": [GOOD_RULE, bad]})
    (problem,) = refusal(path)
    methods = bad.get("methods")
    shown = [m for m in methods if isinstance(m, str)] if isinstance(methods, list) else []
    pattern = bad.get("pattern") if isinstance(bad.get("pattern"), str) else ""
    prefix = f"{path}: rules[1] ({','.join(shown) or '?'} {pattern or '?'}): "
    assert problem.startswith(prefix), problem
    return problem.removeprefix(prefix)


def test_the_shipped_policy_loads_without_a_problem():
    assert policy_problems(SHIPPED_POLICY_PATH) == []
    assert len(load_policy(SHIPPED_POLICY_PATH).rules) == 5


def test_a_misspelt_role_key_is_refused_instead_of_dropping_the_requirement(tmp_path):
    bad = {"pattern": "/api/admin/**", "methods": ["GET", "HEAD"], "realm_role": ["admin"]}
    assert the_one_problem_of_rule(tmp_path, bad) == (
        "realm_role: unknown key; did you mean realm_roles?"
    )


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        pytest.param(
            {"pattern": "/x", "methods": ["GET"], "tenant": "acme"},
            r"tenant: unknown key; expected one of pattern, methods, realm_roles, client_roles, "
            r"claims",
            id="an-unknown-key-with-no-close-name",
        ),
        pytest.param({"methods": ["GET"]}, r"pattern: missing", id="a-missing-pattern"),
        pytest.param(
            {"pattern": 7, "methods": ["GET"]},
            r"pattern: expected a string such as \"/api/resource\", got a number",
            id="a-pattern-that-is-not-a-string",
        ),
        pytest.param({"pattern": "", "methods": ["GET"]}, r"pattern: empty", id="an-empty-pattern"),
        pytest.param(
            {"pattern": "api/x", "methods": ["GET"]},
            r"pattern: does not start with '/'",
            id="a-pattern-without-a-leading-slash",
        ),
        pytest.param(
            {"pattern": "/api/x?debug=1", "methods": ["GET"]},
            r"pattern: has a '\?'; the query string never selects a route",
            id="a-pattern-with-a-query",
        ),
        pytest.param(
            {"pattern": "/api/**/x", "methods": ["GET"]},
            r"pattern: '\*\*' only as the last segment",
            id="a-double-star-before-the-end",
        ),
        pytest.param(
            {"pattern": "/api/*", "methods": ["GET"]},
            r"pattern: segment '\*' would be compared literally; the only wildcard is .*",
            id="a-single-star-that-looks-like-a-wildcard",
        ),
        pytest.param(
            {"pattern": "/api/{Org}", "methods": ["GET"]},
            r"pattern: segment '\{Org\}' would be compared literally; a parameter is .*",
            id="a-parameter-the-matcher-would-read-as-a-literal",
        ),
        pytest.param(
            {"pattern": "/api/v{n}", "methods": ["GET"]},
            r"pattern: segment 'v\{n\}' would be compared literally; .*",
            id="a-parameter-that-is-not-a-whole-segment",
        ),
        pytest.param(
            {"pattern": "/api/{org}/{org}", "methods": ["GET"]},
            r"pattern: parameter \{org\} repeated",
            id="a-repeated-parameter",
        ),
        pytest.param(
            {"pattern": "/api/resource/", "methods": ["GET"]},
            r"pattern: can match no canonical path \(segment ''\)",
            id="a-trailing-slash-no-canonical-path-has",
        ),
        pytest.param(
            {"pattern": "/api/../admin", "methods": ["GET"]},
            r"pattern: can match no canonical path \(segment '\.\.'\)",
            id="a-dot-dot-segment",
        ),
        pytest.param(
            {"pattern": "/api/%61dmin", "methods": ["GET"]},
            r"pattern: can match no canonical path \(forbidden character '%'\)",
            id="a-percent-encoding",
        ),
        pytest.param({"pattern": "/x"}, r"methods: missing", id="missing-methods"),
        pytest.param(
            {"pattern": "/x", "methods": "GET"},
            r"methods: expected a list such as \[\"GET\"\], got the string 'GET'",
            id="methods-as-one-string-that-would-be-read-letter-by-letter",
        ),
        pytest.param(
            {"pattern": "/x", "methods": []},
            r"methods: empty; the rule would match nothing",
            id="empty-methods",
        ),
        pytest.param(
            {"pattern": "/x", "methods": ["get"]},
            r"methods\[0\]: 'get' is not a method a rule can match; did you mean GET\?",
            id="a-lower-case-method",
        ),
        pytest.param(
            {"pattern": "/x", "methods": ["GET", "FETCH"]},
            r"methods\[1\]: 'FETCH' is not a method a rule can match; expected one of GET, .*",
            id="an-unknown-method",
        ),
        pytest.param(
            {"pattern": "/x", "methods": ["GET", 1]},
            r"methods\[1\]: expected a method name, got a number",
            id="a-method-that-is-not-a-string",
        ),
        pytest.param(
            {"pattern": "/x", "methods": ["GET", "POST", "GET"]},
            r"methods\[2\]: GET listed twice",
            id="a-duplicate-method",
        ),
        pytest.param(
            {"pattern": "/x", "methods": ["GET"], "realm_roles": "admin"},
            r"realm_roles: expected a list of role names such as \[\"viewer\"\], got the "
            r"string 'admin'",
            id="realm-roles-as-one-string",
        ),
        pytest.param(
            {"pattern": "/x", "methods": ["GET"], "client_roles": None},
            r"client_roles: expected a list of role names .*, got null",
            id="client-roles-null",
        ),
        pytest.param(
            {"pattern": "/x", "methods": ["GET"], "realm_roles": ["admin", ""]},
            r"realm_roles\[1\]: empty role name",
            id="an-empty-realm-role",
        ),
        pytest.param(
            {"pattern": "/x", "methods": ["GET"], "client_roles": [""]},
            r"client_roles\[0\]: empty role name",
            id="an-empty-client-role",
        ),
        pytest.param(
            {"pattern": "/x", "methods": ["GET"], "realm_roles": ["admin "]},
            r"realm_roles\[0\]: 'admin ' has leading or trailing whitespace",
            id="a-role-with-whitespace-no-token-carries",
        ),
        pytest.param(
            {"pattern": "/x", "methods": ["GET"], "client_roles": ["read", "read"]},
            r"client_roles\[1\]: 'read' listed twice",
            id="a-duplicate-role",
        ),
        pytest.param(
            {"pattern": "/x", "methods": ["GET"], "realm_roles": [["admin"]]},
            r"realm_roles\[0\]: expected a role name, got a list",
            id="a-role-that-is-not-a-string",
        ),
        pytest.param(
            {"pattern": "/x", "methods": ["GET"], "claims": ["org"]},
            r"claims: expected an object such as \{\"org\": \"\{org\}\"\}, got a list",
            id="claims-that-are-not-an-object",
        ),
        pytest.param(
            {"pattern": "/t/{org}", "methods": ["GET"], "claims": {"org": "{tenant}"}},
            r"claims\.org: \{tenant\} is not a parameter of the pattern \(it has \{org\}\)",
            id="a-claim-naming-a-parameter-the-pattern-lacks",
        ),
        pytest.param(
            {"pattern": "/x", "methods": ["GET"], "claims": {"org": "{org}"}},
            r"claims\.org: \{org\} is not a parameter of the pattern \(it has none\)",
            id="a-claim-parameter-in-a-pattern-without-parameters",
        ),
        pytest.param(
            {"pattern": "/t/{org}", "methods": ["GET"], "claims": {"org": "{ org }"}},
            r"claims\.org: '\{ org \}' would be compared literally; a parameter is .*",
            id="a-claim-parameter-the-matcher-would-read-as-a-literal",
        ),
        pytest.param(
            {"pattern": "/x", "methods": ["GET"], "claims": {"org": 7}},
            r"claims\.org: expected a string or a \{name\} of the pattern, got a number",
            id="a-claim-value-that-is-not-a-string",
        ),
        pytest.param(
            {"pattern": "/x", "methods": ["GET"], "claims": {"org": ""}},
            r"claims\.org: empty; give the literal value or a \{name\} of the pattern",
            id="an-empty-claim-value",
        ),
        pytest.param(
            {"pattern": "/x", "methods": ["GET"], "claims": {"": "acme"}},
            r"claims: '' is not a claim name",
            id="an-empty-claim-name",
        ),
    ],
)
def test_each_rule_the_matcher_could_misread_is_refused_naming_file_rule_and_key(
    tmp_path, bad, problem
):
    assert re.fullmatch(problem, the_one_problem_of_rule(tmp_path, bad))


def test_a_key_given_twice_is_refused_because_json_would_keep_only_the_last(tmp_path):
    path = write_policy(
        tmp_path,
        '{"rules": [{"pattern": "/x", "methods": ["GET"],'
        ' "realm_roles": ["admin"], "realm_roles": [],'
        ' "claims": {"org": "acme", "org": "other"}}]}',
    )
    assert refusal(path) == [
        f"{path}: rules[0] (GET /x): realm_roles: given twice; only the last would count",
        f"{path}: rules[0] (GET /x): claims.org: given twice; only the last would count",
    ]


def test_a_rule_that_is_not_an_object_is_refused_naming_its_index(tmp_path):
    path = write_policy(tmp_path, {"rules": [GOOD_RULE, "GET /x"]})
    assert refusal(path) == [
        f"{path}: rules[1]: expected an object with pattern and methods, got the string 'GET /x'"
    ]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        pytest.param({"rule": []}, "rule: unknown key; did you mean rules?", id="misspelt-rules"),
        pytest.param({}, "rules: missing; without rules every request is refused", id="no-rules"),
        pytest.param({"rules": []}, "rules: empty; every request would be refused", id="empty"),
        pytest.param({"rules": {}}, "rules: expected a list of rules, got an object", id="object"),
        pytest.param(
            [GOOD_RULE],
            'expected a JSON object {"rules": [...]}, got a list',
            id="a-bare-list-of-rules",
        ),
        pytest.param(
            {"description": ["x"], "rules": [GOOD_RULE]},
            "description: expected a string, got a list",
            id="a-description-that-is-not-a-string",
        ),
    ],
)
def test_a_document_without_a_usable_rules_list_is_refused_naming_the_file_and_key(
    tmp_path, document, problem
):
    path = write_policy(tmp_path, document)
    assert f"{path}: {problem}" in refusal(path)


def test_a_file_that_is_not_json_is_refused_naming_the_file_and_the_position(tmp_path):
    path = write_policy(tmp_path, '{"rules": [,]}')
    assert refusal(path) == [f"{path}: not valid JSON: Expecting value: line 1 column 12 (char 11)"]


def test_a_file_that_cannot_be_read_is_refused_naming_it(tmp_path):
    (problem,) = refusal(tmp_path / "absent.json")
    assert problem.startswith(f"{tmp_path / 'absent.json'}: cannot read: ")


def test_every_problem_of_the_file_is_listed_not_only_the_first(tmp_path):
    path = write_policy(
        tmp_path,
        {
            "descripton": "typo",
            "rules": [
                {"pattern": "/api/admin/**", "methods": ["GET"], "realm_role": ["admin"]},
                GOOD_RULE,
                {"pattern": "/api/x/", "methods": ["get"], "client_roles": "read"},
            ],
        },
    )
    problems = refusal(path)
    assert problems == [
        f"{path}: descripton: unknown key; did you mean description?",
        f"{path}: rules[0] (GET /api/admin/**): realm_role: unknown key; did you mean realm_roles?",
        f"{path}: rules[2] (get /api/x/): pattern: can match no canonical path (segment '')",
        f"{path}: rules[2] (get /api/x/): methods[0]: 'get' is not a method a rule can match; "
        "did you mean GET?",
        f"{path}: rules[2] (get /api/x/): client_roles: expected a list of role names such as "
        "[\"viewer\"], got the string 'read'",
    ]
    with pytest.raises(PolicyError, match=r"^policy refused \(5 problems\):\n  "):
        load_policy(path)


def test_a_policy_error_is_a_value_error_so_existing_callers_still_catch_it(tmp_path):
    with pytest.raises(ValueError, match="realm_role: unknown key"):
        load_policy(write_policy(tmp_path, {"rules": [{**GOOD_RULE, "realm_role": ["a"]}]}))


def test_a_policy_from_a_dict_is_checked_the_same_way_naming_its_source():
    with pytest.raises(PolicyError) as refused:
        Policy.from_dict({"rules": [{**GOOD_RULE, "methods": "GET"}]}, source="inline")
    assert refused.value.problems == (
        """inline: rules[0] (? /api/resource): methods: expected a list such as ["GET"], """
        """got the string 'GET'""",
    )


def test_a_policy_that_loads_is_used_exactly_as_written(tmp_path):
    document = {
        "description": "tenants",
        "rules": [
            {
                "pattern": "/t/{org}/**",
                "methods": ["GET", "HEAD"],
                "realm_roles": ["viewer"],
                "client_roles": ["read"],
                "claims": {"org": "{org}", "department": "engineering"},
            }
        ],
    }
    (loaded,) = load_policy(write_policy(tmp_path, document)).rules
    assert loaded == Rule(
        pattern="/t/{org}/**",
        methods=frozenset({"GET", "HEAD"}),
        realm_roles=frozenset({"viewer"}),
        client_roles=frozenset({"read"}),
        claims=(("org", "{org}"), ("department", "engineering")),
    )
