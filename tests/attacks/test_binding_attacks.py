"""Attacks on the binding: one workload's certificate with another workload's token.

Both credentials are genuine, so only check 3 (certificate CN == token ``azp``)
can refuse them. RFC 8705 asks for 401 on a binding failure.
"""

from __future__ import annotations

import pytest

from tests.attacks.conftest import bearer, call, cert_of


@pytest.mark.parametrize(
    ("cert_owner", "token_owner"),
    [("python-client", "batch-worker"), ("batch-worker", "python-client")],
)
def test_a_certificate_with_another_workloads_token_is_refused_binding_cn_mismatch(
    log_since, token_for, cert_owner, token_owner
):
    window = log_since()
    r = call(
        window,
        "GET",
        "/api/resource",
        cert=cert_of(cert_owner),
        headers=bearer(token_for(token_owner)),
    )
    assert r.status_code == 401
    assert r.json() == {"error": "unauthorized"}
    trail = window.trail()
    assert trail.nginx["status"] == 401
    assert trail.reasons == ["binding_cn_mismatch"]
    (audit,) = trail.audit
    assert audit["cert_subject_dn"] == f"CN={cert_owner}"
    assert audit["azp"] == token_owner  # the token itself verified
    assert audit["subject"] == ""  # no principal was established
    assert trail.api == []
