"""The protected API's view of the caller: only what nginx forwarded from the verifier."""

from __future__ import annotations

import json

import pytest

from api.app import create_app
from verifier.identity import Identity

IDENTITY = {
    "subject": "python-client",
    "azp": "python-client",
    "sub": "5f0c9d8e-service-account-python-client",
    "jti": "c0ffee00-0000-4000-8000-000000000001",
    "cert_cn": "python-client",
    "cert_serial": "3300493588A4945DA0F5DF75F4CC71EC5CF66E62",
    "cert_subject_dn": "CN=python-client,O=zerotrust-test",
    "cert_issuer_dn": "CN=zerotrust client issuing CA,O=zerotrust-test",
    "realm_roles": ["default-roles-zerotrust", "viewer"],
    "client_roles": ["read"],
    "org": "Z\u00fcrich",
    "department": "a,b",
}


@pytest.fixture
def request_log(tmp_path):
    return tmp_path / "api-requests.jsonl"


@pytest.fixture
def client(request_log):
    return create_app({"TESTING": True, "API_REQUEST_LOG": str(request_log)}).test_client()


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _get(client, **headers):
    return client.get("/api/resource", headers={"X-Request-ID": "rid-1", **headers})


def test_the_caller_is_read_from_the_verifiers_identity_header(client, request_log):
    answer = _get(client, **{"X-Auth-Identity": json.dumps(IDENTITY), "traceparent": TRACEPARENT})
    assert answer.status_code == 200
    # the verifier's names, as it sent them, and the client's trace context as nginx passed it
    caller = {**IDENTITY, "request_id": "rid-1", "traceparent": TRACEPARENT}
    assert answer.get_json() == {"resource": "demo", **caller}
    (line,) = [json.loads(raw) for raw in request_log.read_text().splitlines()]
    assert line == {"time": line["time"], "method": "GET", "path": "/api/resource", **caller}


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param({}, id="no-identity-header"),
        pytest.param({"X-Auth-Identity": ""}, id="empty"),
        pytest.param({"X-Auth-Identity": "{not json"}, id="not-json"),
        pytest.param({"X-Auth-Identity": '["azp"]'}, id="not-an-object"),
    ],
)
def test_without_a_readable_identity_the_caller_is_nobody_not_a_500(client, sent):
    answer = _get(client, **sent)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body == {
        "resource": "demo",
        **Identity().asdict(),
        "request_id": "rid-1",
        "traceparent": "",
    }
    assert body["azp"] == body["cert_cn"] == body["subject"] == ""
    assert body["realm_roles"] == [] and body["client_roles"] == []
