"""The verifier is down: nginx must fail closed (503) and forward nothing to the API.

Own module because it stops a real service. Whatever the asserts say, the stack
is brought back (``scripts.zt up``, idempotent) before the test ends, and a
normal call must then work again.
"""

from __future__ import annotations

from scripts import cli, config
from scripts.services import procs
from tests.attacks.conftest import bearer, call, cert_of


def test_a_stopped_verifier_fails_closed_with_503_and_the_api_receives_nothing(
    log_since, token_for
):
    token = token_for("python-client")
    try:
        assert procs.stop(config.VERIFIER), "the verifier was not running"
        window = log_since()
        r = call(
            window, "GET", "/api/resource", cert=cert_of("python-client"), headers=bearer(token)
        )
        assert r.status_code == 503, r.text
        assert r.json() == {"error": "unavailable"}
        trail = window.trail()
        assert trail.nginx["status"] == 503
        assert trail.nginx["ssl_client_verify"] == "SUCCESS"
        assert trail.nginx["auth_reason"] == ""  # nobody decided
        assert trail.audit == []
        assert trail.api == []
    finally:
        restored = cli.main(["up"])
    assert restored == 0, "`scripts.zt up` could not bring the verifier back"

    window = log_since()
    r = call(window, "GET", "/api/resource", cert=cert_of("python-client"), headers=bearer(token))
    assert r.status_code == 200, r.text
    trail = window.trail()
    assert trail.reasons == ["ok"]
    assert [line["request_id"] for line in trail.api] == [trail.request_id]
