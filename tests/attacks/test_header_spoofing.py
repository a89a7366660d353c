"""A genuine workload sends identity headers of its own, hoping one gets through.

nginx sets every header the verifier reads from its own variables, and the API
receives an allowlist (``proxy_pass_request_headers off``) whose identity comes
only from the verifier's answer. So the spoofed values must appear nowhere: not
in the API's echo, not in its request log, not in the audit line, and a POST
that python-client may not make stays forbidden.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from tests.attacks.conftest import bearer, call, cert_of

OTHER_CERT_PEM = Path(cert_of("batch-worker")[0]).read_text()
SPOOFED = {
    "X-Auth-Subject": "admin",
    "X-Auth-Azp": "batch-worker",
    "X-Auth-Sub": "spoofed-sub",
    "X-Auth-Cert-CN": "batch-worker",
    "X-Auth-Roles": "admin,operator",
    "X-Auth-Client-Roles": "read,write",
    "X-Auth-Org": "globex",
    "X-Auth-Department": "spoofed-department",
    "X-Auth-Reason": "ok",
    "X-Auth-Identity": json.dumps(
        {"azp": "batch-worker", "realm_roles": ["admin"], "org": "globex", "sub": "spoofed"}
    ),
    "X-Client-Verify": "SUCCESS",
    "X-Client-Cert": quote(OTHER_CERT_PEM),
    "X-Client-Subject-DN": "CN=batch-worker",
    "X-SSL-Client-Cert": quote(OTHER_CERT_PEM),
    "X-Forwarded-For": "10.0.0.1",
    "X-Real-IP": "10.0.0.1",
    "X-Client-Addr": "10.0.0.1",
    "X-Original-URI": "/api/resource",
    "X-Original-Method": "GET",
    "X-Request-ID": "attacker",
}
# Values that name nobody python-client is, so they may not appear anywhere.
FOREIGN_VALUES = ("admin", "batch-worker", "spoofed", "globex", "10.0.0.1", "attacker", "write")


def _headers(token: str) -> dict[str, str]:
    return {**SPOOFED, **bearer(token)}


def test_spoofed_identity_headers_never_reach_the_api(log_since, token_for):
    window = log_since()
    r = call(
        window,
        "GET",
        "/api/resource",
        cert=cert_of("python-client"),
        headers=_headers(token_for("python-client")),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    trail = window.trail()
    assert trail.reasons == ["ok"]
    # The API's echo is the verifier's view of python-client, nothing else.
    assert body["azp"] == body["cert_cn"] == "python-client"
    assert "viewer" in body["realm_roles"]
    assert body["client_roles"] == ["read"]
    assert body["org"] == "acme"
    assert body["department"] == "payments"
    assert body["request_id"] == trail.request_id != "attacker"
    (api_line,) = trail.api
    api_text = json.dumps(api_line)
    echo_text = json.dumps(body)
    for value in FOREIGN_VALUES:
        assert value not in api_text, f"{value!r} reached the API's request log"
        assert value not in echo_text, f"{value!r} reached the API"
    # The verifier decided on nginx's facts: its own client address and request id.
    (audit,) = trail.audit
    assert audit["client_addr"] == "127.0.0.1"
    assert audit["cert_subject_dn"] == "CN=python-client"
    assert audit["path"].startswith("/api/resource?")


def test_spoofed_admin_headers_do_not_lift_a_forbidden_write(log_since, token_for):
    # Among the spoofed headers: X-Original-Method: GET. Had it replaced nginx's,
    # the verifier would have judged a GET and allowed it.
    window = log_since()
    r = call(
        window,
        "POST",
        "/api/resource",
        cert=cert_of("python-client"),
        headers=_headers(token_for("python-client")),
        json={"spoofed": True},
    )
    assert r.status_code == 403, r.text
    assert r.json() == {"error": "forbidden"}
    trail = window.trail()
    assert trail.reasons == ["realm_role_missing"]
    assert trail.api == []
