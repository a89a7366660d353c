"""nginx's decision cache: what it may reuse, and everything it must not.

The cache (nginx/snippets/authz-cache.conf.tmpl, on by default) keeps the
verifier's ALLOW for a GET/HEAD keyed by HMACs of the Authorization header and
the client certificate, the method and the raw URI. Each test sends the same
request twice within one log window (same marker, so the same URI) and reads
nginx's ``auth_cache`` field, the verifier's audit lines and what the API got.
A HIT is a request the verifier never saw: nginx's access line is its record.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests

from scripts import config
from scripts.services import nginx
from tests.attacks.conftest import LogWindow, bearer, call, cert_of
from tests.integration.conftest import run_zt


def _twice(window: LogWindow, method: str, path: str, cert, token: str) -> list[requests.Response]:
    return [call(window, method, path, cert=cert, headers=bearer(token)) for _ in range(2)]


def _api(window: LogWindow, request_id: str) -> list[dict[str, Any]]:
    # Both requests carry the window's marker, so LogWindow.api_lines_for (which
    # counts lines of other marked requests as unexplained) does not fit here.
    return [line for line in window.lines("api") if line.get("request_id") == request_id]


def _both_decided_by_the_verifier(window: LogWindow, reason: str, cache: set[str]) -> None:
    """Both requests of the window were audited by the verifier with ``reason``."""
    for line in window.marked(2):
        assert line["auth_cache"] in cache
        assert [a["reason"] for a in window.audit_for(line["request_id"])] == [reason]


@pytest.fixture(autouse=True)
def _cache_on(stack):
    """These tests are about the cache: it must be on (the default) while they run."""
    assert nginx.authz_cache_enabled(), "decision cache is off; `zt authz-cache on`"


def test_a_repeated_read_reuses_the_allow_and_the_api_still_gets_the_identity(log_since, token_for):
    window = log_since()
    token = token_for("python-client")
    first, second = _twice(window, "GET", "/api/resource", cert_of("python-client"), token)
    assert first.status_code == second.status_code == 200
    miss, hit = window.marked(2)
    assert (miss["auth_cache"], hit["auth_cache"]) == ("MISS", "HIT")
    assert [a["reason"] for a in window.audit_for(miss["request_id"])] == ["ok"]
    assert window.audit_for(hit["request_id"]) == []  # the verifier was not asked
    assert hit["auth_azp"] == "python-client"  # nginx's line records whose allow it reused
    (api,) = _api(window, hit["request_id"])
    assert api["azp"] == api["cert_cn"] == "python-client"
    assert "viewer" in api["realm_roles"]


def test_a_cached_allow_is_not_reused_with_another_workloads_certificate(log_since, token_for):
    window = log_since()
    token = token_for("python-client")
    allowed = call(
        window, "GET", "/api/resource", cert=cert_of("python-client"), headers=bearer(token)
    )
    assert allowed.status_code == 200
    stolen = call(
        window, "GET", "/api/resource", cert=cert_of("batch-worker"), headers=bearer(token)
    )
    assert stolen.status_code == 401
    _, replay = window.marked(2)
    assert replay["auth_cache"] != "HIT"
    assert [a["reason"] for a in window.audit_for(replay["request_id"])] == ["binding_cn_mismatch"]
    assert _api(window, replay["request_id"]) == []


def test_a_cached_allow_is_not_reused_for_a_forged_token(log_since, token_for):
    window = log_since()
    token = token_for("python-client")
    cert = cert_of("python-client")
    assert call(window, "GET", "/api/resource", cert=cert, headers=bearer(token)).ok
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["realm_access"] = {"roles": ["viewer", "admin"]}
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{head}.{forged_payload}.{signature}"
    r = call(window, "GET", "/api/resource", cert=cert, headers=bearer(forged))
    assert r.status_code == 401
    _, replay = window.marked(2)
    assert replay["auth_cache"] != "HIT"
    assert [a["reason"] for a in window.audit_for(replay["request_id"])] == [
        "token_signature_invalid"
    ]


def test_a_deny_is_never_cached_each_one_is_decided_and_audited(log_since, token_for):
    window = log_since()
    token = token_for("python-client")
    answers = _twice(window, "GET", "/api/admin/users", cert_of("python-client"), token)
    assert [r.status_code for r in answers] == [403, 403]
    _both_decided_by_the_verifier(window, "realm_role_missing", {"MISS", "EXPIRED"})


def test_writes_are_never_served_from_the_cache(log_since, token_for):
    window = log_since()
    token = token_for("batch-worker")
    answers = _twice(window, "POST", "/api/resource", cert_of("batch-worker"), token)
    assert [r.status_code for r in answers] == [201, 201]
    _both_decided_by_the_verifier(window, "ok", {"BYPASS"})


def test_the_method_is_part_of_the_key(log_since, token_for):
    window = log_since()
    token = token_for("python-client")
    cert = cert_of("python-client")
    assert call(window, "GET", "/api/resource", cert=cert, headers=bearer(token)).ok
    assert call(window, "HEAD", "/api/resource", cert=cert, headers=bearer(token)).ok
    _, head = window.marked(2)
    assert head["auth_cache"] == "MISS"
    assert [a["method"] for a in window.audit_for(head["request_id"])] == ["HEAD"]


def test_the_cache_files_hold_no_token_and_the_key_material_is_private(log_since, token_for):
    window = log_since()
    token = token_for("python-client")
    _twice(window, "GET", "/api/resource", cert_of("python-client"), token)
    files = [p for p in config.AUTHZ_CACHE_DIR.rglob("*") if p.is_file()]
    assert files, "nothing was cached"
    signature = token.rsplit(".", 1)[1].encode()
    for path in files:
        assert signature not in path.read_bytes()
    for secret in (config.AUTHZ_CACHE_HMAC_KEY, config.AUTHZ_CACHE_CONF):
        assert secret.stat().st_mode & 0o777 == 0o600


def test_turning_the_cache_off_makes_every_request_reach_the_verifier(log_since, token_for):
    off = run_zt("authz-cache", "off")
    try:
        assert off.returncode == 0, off.stdout + off.stderr
        assert "decision cache: off" in off.stdout
        window = log_since()
        token = token_for("python-client")
        answers = _twice(window, "GET", "/api/resource", cert_of("python-client"), token)
        assert [r.status_code for r in answers] == [200, 200]
        _both_decided_by_the_verifier(window, "ok", {""})
    finally:
        on = run_zt("authz-cache", "on")
        assert on.returncode == 0, on.stdout + on.stderr
    window = log_since()
    _twice(window, "GET", "/api/resource", cert_of("python-client"), token_for("python-client"))
    assert [line["auth_cache"] for line in window.marked(2)] == ["MISS", "HIT"]
