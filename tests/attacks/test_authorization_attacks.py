"""Authenticated workloads reaching beyond their roles or their tenant.

python-client: realm role viewer, API role read, org acme.
batch-worker:  realm role operator (includes viewer), API roles read + write, org globex.
Nobody has admin. Rules: verifier/policy.json. Realm roles are checked before
client roles, so a missing operator/admin role is ``realm_role_missing``.
"""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any

import pytest

from scripts import config
from tests.attacks.conftest import SERVER_CA, bearer, call, cert_of


def _as(window, token_for, workload: str, method: str, path: str, **kwargs: Any):
    return call(
        window,
        method,
        path,
        cert=cert_of(workload),
        headers=bearer(token_for(workload)),
        **kwargs,
    )


@pytest.mark.parametrize(
    ("workload", "method", "path", "status"),
    [
        ("python-client", "GET", "/api/resource", 200),
        ("python-client", "GET", "/api/tenants/acme/resource", 200),
        ("batch-worker", "POST", "/api/resource", 201),
        ("batch-worker", "GET", "/api/tenants/globex/resource", 200),
    ],
)
def test_a_workload_within_its_roles_reaches_the_api_once(
    log_since, token_for, workload, method, path, status
):
    window = log_since()
    r = _as(window, token_for, workload, method, path, json={"n": 1})
    assert r.status_code == status, r.text
    body = r.json()
    assert body["azp"] == body["cert_cn"] == workload
    trail = window.trail()
    assert trail.reasons == ["ok"]
    assert [line["request_id"] for line in trail.api] == [trail.request_id]
    assert body["request_id"] == trail.request_id


@pytest.mark.parametrize(
    ("workload", "method", "path", "reason"),
    [
        ("python-client", "POST", "/api/resource", "realm_role_missing"),
        ("python-client", "GET", "/api/admin/stats", "realm_role_missing"),
        ("batch-worker", "GET", "/api/admin/stats", "realm_role_missing"),
        ("python-client", "GET", "/api/tenants/globex/resource", "tenant_mismatch"),
        ("batch-worker", "GET", "/api/tenants/acme/resource", "tenant_mismatch"),
        ("python-client", "DELETE", "/api/resource", "route_not_allowed"),
    ],
)
def test_a_workload_beyond_its_roles_or_tenant_is_refused_403(
    log_since, token_for, workload, method, path, reason
):
    window = log_since()
    r = _as(window, token_for, workload, method, path)
    assert r.status_code == 403, r.text
    assert r.json() == {"error": "forbidden"}
    trail = window.trail()
    assert trail.nginx["status"] == 403
    assert trail.reasons == [reason]
    assert trail.audit[0]["subject"] == workload  # authenticated, just not allowed
    assert trail.api == []


@pytest.mark.parametrize(
    "raw_path",
    [
        "/api/tenants/acme/../../admin/stats",
        "/api/tenants/acme/%2e%2e/%2e%2e/admin/stats",
        "/api/resource/..;/admin/stats",
        "/api//admin/stats",
    ],
)
def test_a_path_that_smuggles_another_route_is_refused_path_not_canonical(
    log_since, token_for, raw_path
):
    # requests would normalise dot segments; http.client sends the path as written.
    window = log_since()
    ctx = ssl.create_default_context(cafile=SERVER_CA)
    ctx.load_cert_chain(*cert_of("python-client"))
    conn = http.client.HTTPSConnection("localhost", config.NGINX_PORT, context=ctx, timeout=10)
    try:
        target = window.url(raw_path, base="")
        conn.request("GET", target, headers=bearer(token_for("python-client")))
        r = conn.getresponse()
        status, body = r.status, r.read()
    finally:
        conn.close()
    assert status == 403, body
    assert json.loads(body) == {"error": "forbidden"}
    trail = window.trail()
    assert trail.nginx["status"] == 403
    assert trail.reasons == ["path_not_canonical"]
    assert trail.api == []
