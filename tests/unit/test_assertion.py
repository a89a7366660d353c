"""The identity assertion: the verifier's MAC that the API requires on every request."""

from __future__ import annotations

import json

import pytest

from api.app import create_app as create_api
from api.app import settings_from_env
from verifier import assertion

KEY = bytes.fromhex("ab" * 32)
IDENTITY = json.dumps({"subject": "python-client", "realm_roles": ["viewer"]})
NOW = 1_800_000_000.0


def _signed(method: str = "GET", uri: str = "/api/resource", lifetime: float = 30) -> str:
    return assertion.sign(KEY, IDENTITY, method, uri, now=NOW, lifetime=lifetime)


def test_an_assertion_verifies_for_exactly_what_it_was_signed_for():
    assertion.verify(KEY, _signed(), IDENTITY, "GET", "/api/resource", now=NOW)


@pytest.mark.parametrize(
    ("value", "identity", "method", "uri", "key", "reason"),
    [
        pytest.param(None, IDENTITY, "GET", "/api/resource", KEY, "assertion_missing", id="none"),
        pytest.param("", IDENTITY, "GET", "/api/resource", KEY, "assertion_missing", id="empty"),
        pytest.param("v1.x.y", IDENTITY, "GET", "/api/resource", KEY, "assertion_malformed"),
        pytest.param("v2.1.y", IDENTITY, "GET", "/api/resource", KEY, "assertion_malformed"),
        pytest.param("v1.1", IDENTITY, "GET", "/api/resource", KEY, "assertion_malformed"),
        pytest.param(
            "v1.1111111111111.y", IDENTITY, "GET", "/api/resource", KEY, "assertion_malformed"
        ),
        pytest.param(
            _signed(),
            IDENTITY.replace("viewer", "admin"),
            "GET",
            "/api/resource",
            KEY,
            "assertion_mismatch",
            id="identity-tampered",
        ),
        pytest.param(
            _signed(),
            IDENTITY,
            "POST",
            "/api/resource",
            KEY,
            "assertion_mismatch",
            id="replayed-on-another-method",
        ),
        pytest.param(
            _signed(),
            IDENTITY,
            "GET",
            "/api/admin/stats",
            KEY,
            "assertion_mismatch",
            id="replayed-on-another-uri",
        ),
        pytest.param(
            _signed(),
            IDENTITY,
            "GET",
            "/api/resource?x=1",
            KEY,
            "assertion_mismatch",
            id="another-query",
        ),
        pytest.param(
            _signed(),
            IDENTITY,
            "GET",
            "/api/resource",
            b"\x01" * 32,
            "assertion_mismatch",
            id="another-key",
        ),
    ],
)
def test_anything_but_the_signed_request_is_refused_with_a_reason(
    value, identity, method, uri, key, reason
):
    with pytest.raises(assertion.AssertionInvalid) as refused:
        assertion.verify(key, value, identity, method, uri, now=NOW)
    assert refused.value.reason == reason


def test_an_assertion_lives_its_lifetime_plus_the_slack_and_not_a_second_more():
    value = _signed(lifetime=30)
    edge = NOW + 30 + assertion.SLACK_SECONDS
    assertion.verify(KEY, value, IDENTITY, "GET", "/api/resource", now=edge)
    with pytest.raises(assertion.AssertionInvalid, match="assertion_expired"):
        assertion.verify(KEY, value, IDENTITY, "GET", "/api/resource", now=edge + 1)


def test_an_expired_assertion_with_a_forged_later_expiry_does_not_verify():
    exp, mac = _signed(lifetime=0).split(".")[1:]
    forged = f"v1.{int(exp) + 3600}.{mac}"
    with pytest.raises(assertion.AssertionInvalid, match="assertion_mismatch"):
        assertion.verify(KEY, forged, IDENTITY, "GET", "/api/resource", now=NOW)


# --- the API refuses what it cannot authenticate -------------------------------------


@pytest.fixture
def api_log(tmp_path):
    return tmp_path / "api-requests.jsonl"


@pytest.fixture
def api(api_log):
    return create_api({"ASSERTION_KEY": KEY, "API_REQUEST_LOG": str(api_log)}).test_client()


def _logged(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_api_refuses_a_forged_identity_header_without_an_assertion(api, api_log):
    forged = json.dumps({"azp": "batch-worker", "realm_roles": ["admin"]})
    answer = api.get("/api/admin/stats", headers={"X-Auth-Identity": forged})
    assert answer.status_code == 401
    assert answer.get_json() == {"error": "unauthorized"}
    assert _logged(api_log)[-1]["refused"] == "assertion_missing"


def test_the_api_serves_a_request_the_verifier_asserted(api, api_log):
    value = assertion.sign(KEY, IDENTITY, "GET", "/api/resource?page=2", now=9e9, lifetime=0)
    headers = {"X-Auth-Identity": IDENTITY, assertion.HEADER: value}
    answer = api.get("/api/resource?page=2", headers=headers)
    assert answer.status_code == 200, answer.data
    assert "refused" not in _logged(api_log)[-1]


def test_the_api_refuses_an_assertion_replayed_on_another_route(api, api_log):
    value = assertion.sign(KEY, IDENTITY, "GET", "/api/resource", now=9e9, lifetime=0)
    headers = {"X-Auth-Identity": IDENTITY, assertion.HEADER: value}
    assert api.get("/api/admin/stats", headers=headers).status_code == 401
    assert _logged(api_log)[-1]["refused"] == "assertion_mismatch"


def test_the_api_health_check_needs_no_assertion(api):
    assert api.get("/healthz").status_code == 200


def test_the_api_refuses_to_start_without_its_key_and_names_the_variable():
    with pytest.raises(ValueError, match="ZT_API_ASSERTION_KEY_FILE is required"):
        settings_from_env({"ZT_API_REQUEST_LOG": "/tmp/x"})


def test_the_api_refuses_an_unknown_setting_by_name():
    with pytest.raises(ValueError, match="ZT_API_ASERTION_KEY_FILE"):
        settings_from_env({"ZT_API_ASERTION_KEY_FILE": "/tmp/key"})


def test_the_api_reads_its_key_file(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(KEY.hex())
    settings = settings_from_env({"ZT_API_ASSERTION_KEY_FILE": str(key_file)})
    assert settings["ASSERTION_KEY"] == KEY


def test_only_the_benchmark_switch_turns_the_check_off():
    assert settings_from_env({"ZT_API_INSECURE_SKIP_ASSERTION": "1"})["ASSERTION_KEY"] is None
    with pytest.raises(ValueError, match="must be 0 or 1"):
        settings_from_env({"ZT_API_INSECURE_SKIP_ASSERTION": "yes"})
