"""The Flask adapter, through ``app.test_client()``: nginx's view of the verifier."""

from __future__ import annotations

import json
import os
import threading
from urllib.parse import quote

import pytest
from cryptography import x509

from api.app import create_app as create_api
from tests.verifier_fixtures import ASSERTION_KEY_HEX, client_crls, required_config
from verifier import assertion, jwks
from verifier.app import TEST_CONFIG_KEYS, create_app
from verifier.errors import JwksUnavailable, PolicyError, SettingsError
from verifier.identity import Identity
from verifier.revocation import StaticCRLSource
from verifier.transport import serial_hex


@pytest.fixture
def audit_log(tmp_path):
    return tmp_path / "audit.jsonl"


@pytest.fixture
def crl_path(tmp_path, client_crl_pem):
    """This app's own copy of the CRL file (tests replace it)."""
    path = tmp_path / "client-ca.crl.pem"
    path.write_text(client_crl_pem)
    return path


@pytest.fixture
def make_app(tmp_path, pki, keys, now, audit_log, crl_path):
    ca_file = tmp_path / "client-ca.pem"
    ca_file.write_text(pki.client_ca.pem)

    def make(**overrides):
        config = {
            "TESTING": True,
            **required_config(ca_file, crl_path),
            "AUDIT_LOG": str(audit_log),
            "KEY_SOURCE": keys,
            "CLOCK": lambda: now,
            **overrides,
        }
        return create_app(config)

    return make


@pytest.fixture
def client(make_app):
    return make_app().test_client()


@pytest.fixture
def nginx_headers(pki):
    """What nginx's auth_request location sends, for a given token and route."""

    def headers(token=None, method="GET", uri="/api/resource", cert=None, **extra):
        sent = {
            "X-Client-Verify": "SUCCESS",
            "X-Client-Cert": quote(cert or pki.client.pem, safe=""),
            "X-Client-Subject-DN": "CN=python-client,O=zerotrust-test",
            "X-Original-Method": method,
            "X-Original-URI": uri,
            "X-Request-ID": "0123456789abcdef",
            "X-Client-Addr": "127.0.0.1",
        }
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(extra)
        return sent

    return headers


def audit_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def identity_of(answer):
    return json.loads(answer.headers["X-Auth-Identity"])


def test_an_allowed_request_answers_204_with_identity_headers(
    client, nginx_headers, make_token, pki
):
    answer = client.get("/_authz", headers=nginx_headers(make_token()))
    assert answer.status_code == 204
    assert answer.data == b""
    assert "Content-Type" not in answer.headers  # nothing to type: no body
    assert answer.headers["X-Auth-Subject"] == "python-client"
    assert answer.headers["X-Auth-Reason"] == "ok"
    assert identity_of(answer) == {
        "subject": "python-client",
        "azp": "python-client",
        "sub": "5f0c9d8e-service-account-python-client",
        "jti": "c0ffee00-0000-4000-8000-000000000001",
        "cert_cn": "python-client",
        "cert_serial": serial_hex(pki.client.cert.serial_number),
        "cert_subject_dn": "CN=python-client,O=zerotrust-test",
        "cert_issuer_dn": "CN=zerotrust client issuing CA,O=zerotrust-test",
        "realm_roles": ["default-roles-zerotrust", "viewer"],
        "client_roles": ["read"],
        "org": "acme",
        "department": "engineering",
    }


def test_the_identity_header_the_api_receives_is_the_audit_records_identity(
    client, nginx_headers, make_token, audit_log
):
    answer = client.get("/_authz", headers=nginx_headers(make_token()))
    identity = Identity.from_header(answer.headers["X-Auth-Identity"])
    (line,) = audit_lines(audit_log)
    assert {name: line[name] for name in identity.asdict()} == identity.asdict()


def test_a_missing_token_answers_401_with_a_generic_body_and_the_reason_header(
    client, nginx_headers
):
    answer = client.get("/_authz", headers=nginx_headers())
    assert answer.status_code == 401
    assert answer.get_json() == {"error": "unauthorized"}
    assert answer.headers["X-Auth-Reason"] == "token_missing"
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert "X-Auth-Subject" not in answer.headers
    assert "X-Auth-Identity" not in answer.headers


def test_a_viewer_on_an_admin_route_answers_403_forbidden(client, nginx_headers, make_token):
    answer = client.get("/_authz", headers=nginx_headers(make_token(), uri="/api/admin/x"))
    assert answer.status_code == 403
    assert answer.get_json() == {"error": "forbidden"}
    assert answer.headers["X-Auth-Reason"] == "realm_role_missing"


def test_the_body_never_reveals_the_reason(client, nginx_headers, make_token):
    answer = client.get("/_authz", headers=nginx_headers(make_token(typ="ID")))
    assert answer.status_code == 401
    assert b"token_type_invalid" not in answer.data


def test_every_decision_writes_an_audit_line_with_the_request_id_and_no_token(
    client, nginx_headers, make_token, audit_log
):
    token = make_token()
    client.get("/_authz", headers=nginx_headers(token))
    client.get("/_authz", headers=nginx_headers(token, uri="/api/admin/x"))
    text = audit_log.read_text()
    assert token not in text and "Bearer" not in text
    assert token.split(".")[2] not in text
    allow, deny = audit_lines(audit_log)
    assert (allow["decision"], allow["request_id"]) == ("allow", "0123456789abcdef")
    assert (deny["decision"], deny["reason"], deny["status"]) == (
        "deny",
        "realm_role_missing",
        403,
    )
    assert allow["path"] == "/api/resource" and deny["path"] == "/api/admin/x"
    assert allow["latency_ms"] >= 0


def test_an_unwritable_audit_log_turns_an_allow_into_a_deny(
    make_app, nginx_headers, make_token, tmp_path
):
    client = make_app(AUDIT_LOG=str(tmp_path)).test_client()  # a directory
    answer = client.get("/_authz", headers=nginx_headers(make_token()))
    assert answer.status_code == 503
    assert answer.headers["X-Auth-Reason"] == "audit_unavailable"
    assert answer.get_json() == {"error": "unavailable"}
    assert "X-Auth-Subject" not in answer.headers
    assert "X-Auth-Identity" not in answer.headers


def test_no_audit_log_configured_denies_every_request(make_app, nginx_headers, make_token):
    client = make_app(AUDIT_LOG=None).test_client()
    answer = client.get("/_authz", headers=nginx_headers(make_token()))
    assert (answer.status_code, answer.headers["X-Auth-Reason"]) == (
        503,
        "audit_unavailable",
    )


@pytest.mark.parametrize("verb", ["post", "put", "patch", "delete", "head", "options"])
def test_the_subrequest_method_does_not_matter_only_x_original_method(
    client, nginx_headers, make_token, verb
):
    answer = getattr(client, verb)("/_authz", headers=nginx_headers(make_token()))
    assert answer.status_code == 204
    denied = getattr(client, verb)("/_authz", headers=nginx_headers(make_token(), method="DELETE"))
    assert denied.status_code == 403


def test_a_cert_escaped_without_plus_or_slash_still_decodes(client, nginx_headers, make_token, pki):
    headers = nginx_headers(make_token())
    headers["X-Client-Cert"] = quote(pki.client.pem, safe="+/=")
    assert client.get("/_authz", headers=headers).status_code == 204


def test_a_server_ca_cert_is_refused_by_the_adapter_too(client, nginx_headers, make_token, pki):
    answer = client.get("/_authz", headers=nginx_headers(make_token(), cert=pki.from_server_ca.pem))
    assert (answer.status_code, answer.headers["X-Auth-Reason"]) == (
        401,
        "client_cert_issuer_untrusted",
    )


def test_repeated_authorization_headers_joined_by_the_server_are_refused(
    client, nginx_headers, make_token
):
    headers = nginx_headers()
    headers["Authorization"] = f"Bearer {make_token()},Bearer {make_token()}"
    answer = client.get("/_authz", headers=headers)
    assert answer.headers["X-Auth-Reason"] == "token_header_multiple"


def test_the_identity_header_is_printable_ascii_and_reads_back_exactly(
    client, nginx_headers, make_token
):
    token = make_token(org="Z\u00fcrich", department="eng\r\nX-Injected: 1\x7f")
    answer = client.get("/_authz", headers=nginx_headers(token, uri="/api/resource"))
    assert answer.status_code == 204
    raw = answer.headers["X-Auth-Identity"]
    assert raw.isascii() and raw.isprintable()
    assert "X-Injected" not in answer.headers
    identity = json.loads(raw)
    assert identity["org"] == "Z\u00fcrich"
    assert identity["department"] == "eng\r\nX-Injected: 1\x7f"


def test_a_role_name_with_a_comma_stays_one_role(client, nginx_headers, make_token):
    token = make_token(realm_access={"roles": ["viewer", "a,b"]})
    answer = client.get("/_authz", headers=nginx_headers(token))
    assert answer.status_code == 204
    assert identity_of(answer)["realm_roles"] == ["a,b", "viewer"]


def test_healthz_reports_ok_the_number_of_jwks_keys_and_the_worker(client, audit_log, now):
    answer = client.get("/healthz")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body.pop("crl_next_update") > now
    assert body == {
        "status": "ok",
        "problems": [],
        "jwks_keys": 1,
        "jwks_age_seconds": 0.0,
        "jwks_max_staleness_seconds": None,  # a static key set never ages
        "jwks_refreshing": False,
        "jwks_last_error": None,
        "audit_log_writable": True,
        "audit_sink": None,
        "pid": os.getpid(),
    }
    assert not audit_log.exists()  # a probe is not a decision: no line, no file


def _jwks_source(monkeypatch, answers, **timings):
    """A real ``JWKSKeySource`` whose one network seam answers from ``answers``
    (a document or an exception each), the last answer repeated."""

    def fetch(url, ca_bundle, timeout):
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(jwks, "fetch_jwks", fetch)
    return jwks.JWKSKeySource("https://kc.test/certs", **timings)


def test_healthz_is_503_naming_the_problem_when_no_keys_are_loaded(make_app, monkeypatch, now):
    keys = _jwks_source(monkeypatch, [JwksUnavailable("connection refused")])
    keys.refresh_if_stale(now, wait=5)  # the boot's fetch, failed
    answer = make_app(KEY_SOURCE=keys).test_client().get("/healthz")
    body = answer.get_json()
    assert answer.status_code == 503
    assert body["status"] == "unhealthy"
    assert body["problems"] == ["no JWKS keys loaded (last error: connection refused)"]
    assert (body["jwks_keys"], body["pid"]) == (0, os.getpid())


def test_healthz_is_503_when_the_keys_are_past_the_maximum_staleness(
    make_app, monkeypatch, signing_key, now
):
    keys = _jwks_source(
        monkeypatch,
        [{"keys": [signing_key.jwk]}, JwksUnavailable("keycloak down")],
        max_age=300,
        max_staleness=900,
    )
    keys.refresh_if_stale(now - 1000, wait=5)  # the last good fetch, 1000 s ago
    keys.refresh_if_stale(now - 500, wait=5)  # failed since
    answer = make_app(KEY_SOURCE=keys).test_client().get("/healthz")
    body = answer.get_json()
    assert answer.status_code == 503
    (problem,) = body["problems"]
    assert problem.startswith("JWKS keys last fetched 1000s ago, past the 900s maximum")
    assert "keycloak down" in problem
    assert (body["jwks_keys"], body["jwks_age_seconds"]) == (1, 1000.0)


def test_healthz_does_not_wait_for_a_refresh_it_starts(make_app, monkeypatch, signing_key, now):
    release = threading.Event()
    keys = _jwks_source(monkeypatch, [{"keys": [signing_key.jwk]}], max_age=300)
    keys.refresh_if_stale(now - 400, wait=5)  # loaded 400 s ago: due, still fresh

    def hang(url, ca_bundle, timeout):
        release.wait(10)
        raise JwksUnavailable("too slow")

    monkeypatch.setattr(jwks, "fetch_jwks", hang)
    try:
        answer = make_app(KEY_SOURCE=keys).test_client().get("/healthz")
        assert answer.status_code == 200
        assert answer.get_json()["jwks_refreshing"] is True
    finally:
        release.set()
    assert keys.wait_for_refresh(10)


def test_healthz_is_503_without_a_usable_crl_and_says_why(make_app, crl_path):
    crl_path.write_text("-----BEGIN X509 CRL-----\ntruncated")
    body = make_app().test_client().get("/healthz")
    assert body.status_code == 503
    (problem,) = body.get_json()["problems"]
    assert problem.startswith("no usable client CRL: the CRL file has an unterminated PEM block")
    assert body.get_json()["crl_next_update"] is None


def test_healthz_is_503_when_the_crl_is_past_its_next_update(make_app, crl_path, pki, now):
    crl_path.write_text(client_crls(pki, last_update=now - 7200, next_update=now - 60))
    answer = make_app().test_client().get("/healthz")
    assert answer.status_code == 503
    (problem,) = answer.get_json()["problems"]
    assert problem == "the client CRL expired 60s ago (nextUpdate passed)"


@pytest.mark.parametrize("where", ["a-directory", "missing-folder"])
def test_healthz_is_503_when_the_audit_log_cannot_be_written(make_app, tmp_path, where):
    path = tmp_path if where == "a-directory" else tmp_path / "gone" / "audit.log"
    answer = make_app(AUDIT_LOG=str(path)).test_client().get("/healthz")
    body = answer.get_json()
    assert answer.status_code == 503
    assert body["audit_log_writable"] is False
    assert len(body["problems"]) == 1 and str(path) in body["problems"][0]


def test_healthz_is_503_without_an_audit_log(make_app):
    answer = make_app(AUDIT_LOG=None).test_client().get("/healthz")
    assert (answer.status_code, answer.get_json()["problems"]) == (
        503,
        ["no audit log configured"],
    )


def test_a_header_nginx_withheld_is_refused_as_token_malformed_and_audited(
    client, nginx_headers, make_token, audit_log
):
    headers = nginx_headers(None, **{"X-Refused-Header": "Authorization"})
    answer = client.get("/_authz", headers=headers)
    assert (answer.status_code, answer.headers["X-Auth-Reason"]) == (401, "token_malformed")
    (line,) = audit_lines(audit_log)
    assert line["reason"] == "token_malformed"
    assert line["detail"].startswith("Authorization: a control byte")


def test_create_app_reads_zt_verifier_environment_variables(monkeypatch, production_env, crl_file):
    monkeypatch.setenv("ZT_VERIFIER_LEEWAY_SECONDS", "5")
    monkeypatch.setenv("ZT_VERIFIER_JWKS_URL", "https://kc.test/certs")
    verifier = create_app().extensions["verifier"]
    assert verifier.assertion_key == bytes.fromhex(ASSERTION_KEY_HEX)
    assert verifier.decider.settings.leeway_seconds == 5
    assert verifier.decider.settings.audit_log == str(production_env / "audit.log")
    assert verifier.decider.keys.url == "https://kc.test/certs"
    assert verifier.decider.revocation.path == str(crl_file)
    assert verifier.decider.revocation.snapshot().by_issuer  # loaded at boot


def test_create_app_refuses_to_start_without_an_assertion_key(monkeypatch, production_env):
    monkeypatch.delenv("ZT_VERIFIER_ASSERTION_KEY_FILE")
    with pytest.raises(SettingsError) as refused:
        create_app()
    assert refused.value.problems == (
        "ZT_VERIFIER_ASSERTION_KEY_FILE: required, not set (the API refuses every request "
        "without the verifier's identity assertion (verifier/assertion.py))",
    )


def test_create_app_refuses_to_start_without_an_audit_log(monkeypatch, production_env):
    monkeypatch.delenv("ZT_VERIFIER_AUDIT_LOG")
    with pytest.raises(SettingsError) as refused:
        create_app()
    (problem,) = refused.value.problems
    assert problem.startswith("ZT_VERIFIER_AUDIT_LOG: required, not set (")


def test_create_app_refuses_a_misspelt_environment_variable(monkeypatch, production_env):
    monkeypatch.setenv("ZT_VERIFIER_LEEWAY_SECOND", "5")
    with pytest.raises(SettingsError) as refused:
        create_app()
    assert refused.value.problems == (
        "ZT_VERIFIER_LEEWAY_SECOND: unknown setting; did you mean ZT_VERIFIER_LEEWAY_SECONDS?",
    )


def test_create_app_reads_environment_values_as_text_not_as_json(monkeypatch, production_env):
    """Flask's ``from_prefixed_env`` would have read this as the list ["RS256"]."""
    monkeypatch.setenv("ZT_VERIFIER_ALGORITHMS", '["RS256"]')
    with pytest.raises(
        SettingsError, match=r"ZT_VERIFIER_ALGORITHMS: '\[.RS256.\]' is not an algorithm"
    ):
        create_app()


def test_create_app_refuses_an_environment_that_names_no_issuer_audience_or_policy(
    monkeypatch, production_env
):
    for name in ("ISSUER", "AUDIENCE", "POLICY_PATH"):
        monkeypatch.delenv(f"ZT_VERIFIER_{name}")
    with pytest.raises(SettingsError) as refused:
        create_app()
    assert [p.split(":")[0] for p in refused.value.problems] == [
        "ZT_VERIFIER_ISSUER",
        "ZT_VERIFIER_AUDIENCE",
        "ZT_VERIFIER_POLICY_PATH",
    ]


def test_create_app_accepts_every_documented_test_hook(make_app, revocation):
    verifier = make_app(REVOCATION=revocation).extensions["verifier"]
    assert verifier.decider.revocation is revocation
    assert sorted(TEST_CONFIG_KEYS) == ["CLOCK", "KEY_SOURCE", "REVOCATION", "TESTING"]


def test_each_app_decides_with_caches_of_its_own(make_app, nginx_headers, make_token):
    first, second = make_app(), make_app()
    answer = first.test_client().get("/_authz", headers=nginx_headers(make_token()))
    assert answer.status_code == 204
    mine, other = first.extensions["verifier"], second.extensions["verifier"]
    for app, size in ((mine, 1), (other, 0)):
        caches = app.decider.caches
        assert (len(caches.tokens), len(caches.certs), len(app.escaped_pems)) == (size,) * 3


def test_create_app_refuses_an_unknown_test_config_key(make_app):
    with pytest.raises(SettingsError) as refused:
        make_app(KEY_SOURCES=None)
    assert refused.value.problems == ("KEY_SOURCES: unknown setting; did you mean KEY_SOURCE?",)


def test_create_app_refuses_a_policy_file_with_a_typo(make_app, tmp_path):
    typo = tmp_path / "policy.json"
    typo.write_text('{"rules": [{"pattern": "/api/x", "methods": ["GET"], "realm_role": ["a"]}]}')
    with pytest.raises(PolicyError, match=r"rules\[0\] \(GET /api/x\): realm_role: unknown key"):
        make_app(POLICY_PATH=str(typo))


@pytest.mark.parametrize("text", ["", "zz" * 32, "ab" * 16])
def test_create_app_refuses_an_unusable_assertion_key(production_env, text):
    (production_env / "assertion.key").write_text(text)
    with pytest.raises(ValueError, match="identity assertion key"):
        create_app()


def test_create_app_refuses_to_start_without_a_client_ca(monkeypatch, production_env):
    monkeypatch.delenv("ZT_VERIFIER_CLIENT_CA_CERT")
    with pytest.raises(SettingsError, match=r"\n  ZT_VERIFIER_CLIENT_CA_CERT: required, not set"):
        create_app()


# --- what nginx's decision cache may keep (X-Accel-Expires) ---------------------


@pytest.mark.parametrize(
    ("token_seconds_left", "cacheable"),
    [
        pytest.param(290, "30", id="up-to-the-configured-limit"),
        # exp - now = 12 s; one second is kept back for nginx's whole-second clock
        pytest.param(12, "11", id="never-past-the-token-exp"),
        pytest.param(1, "0", id="allowed-but-not-cached-in-the-tokens-last-second"),
    ],
)
def test_an_allow_may_be_cached_up_to_the_limit_and_never_past_the_token(
    make_app, nginx_headers, make_token, now, token_seconds_left, cacheable
):
    client = make_app(DECISION_CACHE_SECONDS=30).test_client()
    token = make_token(exp=int(now) + token_seconds_left)
    answer = client.get("/_authz", headers=nginx_headers(token))
    assert answer.status_code == 204
    assert answer.headers["X-Accel-Expires"] == cacheable


def test_a_cached_allow_never_outlives_the_client_certificate(
    make_app, nginx_headers, make_token, pki, crl_path
):
    cert = presented_not_after(pki.client.pem)
    crl_path.write_text(client_crls(pki, last_update=cert - 3600, next_update=cert + 3600))
    client = make_app(DECISION_CACHE_SECONDS=30, CLOCK=lambda: cert - 5.5).test_client()
    token = make_token(iat=int(cert) - 20, exp=int(cert) + 200)
    answer = client.get("/_authz", headers=nginx_headers(token))
    assert answer.status_code == 204
    assert answer.headers["X-Accel-Expires"] == "4"


def presented_not_after(pem: str) -> float:
    return x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc.timestamp()


@pytest.mark.parametrize(
    ("uri", "token_overrides"),
    [("/api/admin/users", {}), ("/api/resource", {"azp": "batch-worker"})],
)
def test_a_deny_is_never_cacheable(make_app, nginx_headers, make_token, uri, token_overrides):
    client = make_app(DECISION_CACHE_SECONDS=30).test_client()
    answer = client.get("/_authz", headers=nginx_headers(make_token(**token_overrides), uri=uri))
    assert answer.status_code in (401, 403)
    assert answer.headers["X-Accel-Expires"] == "0"


def test_without_a_configured_limit_nothing_is_cacheable(client, nginx_headers, make_token):
    answer = client.get("/_authz", headers=nginx_headers(make_token()))
    assert answer.status_code == 204
    assert answer.headers["X-Accel-Expires"] == "0"


def test_an_allow_turned_deny_by_a_failed_audit_write_is_not_cacheable(
    make_app, nginx_headers, make_token, tmp_path
):
    client = make_app(DECISION_CACHE_SECONDS=30, AUDIT_LOG=str(tmp_path)).test_client()
    answer = client.get("/_authz", headers=nginx_headers(make_token()))
    assert answer.status_code == 503
    assert answer.headers["X-Accel-Expires"] == "0"


@pytest.mark.parametrize("seconds", [-1, 301])
def test_a_decision_cache_limit_outside_0_to_300_seconds_is_refused(make_app, seconds):
    with pytest.raises(ValueError, match="DECISION_CACHE_SECONDS"):
        make_app(DECISION_CACHE_SECONDS=seconds)


@pytest.mark.parametrize(
    "value",
    ["python-client", "a b,c;d=e", "50%", "Zürich", "tab\there", "x\x7fy", "", "~!@#$^&*()"],
)
def test_the_header_fast_path_answers_exactly_what_quote_would(value):
    from verifier.app import _HEADER_SAFE, _header_value

    assert _header_value(value) == quote(value, safe=_HEADER_SAFE)


# --- revocation (CLIENT_CRL, re-read when it changes) -----------------------------------


def test_a_revoked_certificate_answers_401_cert_revoked_and_is_never_cacheable(
    make_app, nginx_headers, make_token, pki, audit_log
):
    client = make_app(DECISION_CACHE_SECONDS=30).test_client()
    answer = client.get("/_authz", headers=nginx_headers(make_token(), cert=pki.revoked.pem))
    assert answer.status_code == 401
    assert answer.get_json() == {"error": "unauthorized"}
    assert answer.headers["X-Auth-Reason"] == "cert_revoked"
    assert answer.headers["X-Accel-Expires"] == "0"
    assert "X-Auth-Identity" not in answer.headers
    (line,) = audit_lines(audit_log)
    assert (line["decision"], line["reason"], line["status"]) == ("deny", "cert_revoked", 401)
    assert int(line["cert_serial"], 16) == pki.revoked.cert.serial_number


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda path: path.unlink(), id="missing"),
        pytest.param(lambda path: path.write_text("garbage\n"), id="garbage"),
    ],
)
def test_an_unusable_crl_file_answers_503_crl_unavailable(
    make_app, nginx_headers, make_token, crl_path, damage
):
    damage(crl_path)
    client = make_app(DECISION_CACHE_SECONDS=30).test_client()
    answer = client.get("/_authz", headers=nginx_headers(make_token()))
    assert answer.status_code == 503
    assert answer.get_json() == {"error": "unavailable"}
    assert answer.headers["X-Auth-Reason"] == "crl_unavailable"
    assert answer.headers["X-Accel-Expires"] == "0"


def test_a_revocation_written_to_the_file_is_enforced_within_a_second_without_a_restart(
    make_app, nginx_headers, make_token, pki, crl_path, now
):
    clock = [now]
    client = make_app(CLOCK=lambda: clock[0]).test_client()
    headers = nginx_headers(make_token())
    assert client.get("/_authz", headers=headers).status_code == 204
    revoked = client_crls(pki, [pki.client.cert.serial_number])
    tmp = crl_path.with_name("crl.tmp")
    tmp.write_text(revoked)
    tmp.replace(crl_path)  # atomic, as the ops tooling writes it
    clock[0] = now + 0.5
    assert client.get("/_authz", headers=headers).status_code == 204  # not looked at yet
    clock[0] = now + 1.0
    answer = client.get("/_authz", headers=headers)
    assert (answer.status_code, answer.headers["X-Auth-Reason"]) == (401, "cert_revoked")


def test_a_cached_allow_never_outlives_the_crl_it_was_checked_against(
    make_app, nginx_headers, make_token, pki, crl_path, now
):
    crl_path.write_text(client_crls(pki, next_update=now + 12))
    client = make_app(DECISION_CACHE_SECONDS=30).test_client()
    answer = client.get("/_authz", headers=nginx_headers(make_token()))
    assert answer.status_code == 204
    assert answer.headers["X-Accel-Expires"] == "11"


def test_an_injected_revocation_source_replaces_the_file(
    make_app, nginx_headers, make_token, pki, tmp_path
):
    source = StaticCRLSource.from_pem(client_crls(pki, [pki.client.cert.serial_number]))
    client = make_app(CLIENT_CRL=str(tmp_path / "absent.pem"), REVOCATION=source).test_client()
    answer = client.get("/_authz", headers=nginx_headers(make_token()))
    assert answer.headers["X-Auth-Reason"] == "cert_revoked"


def test_create_app_refuses_to_start_without_a_client_crl_setting(
    make_app, monkeypatch, production_env
):
    with pytest.raises(SettingsError, match=r"\n  CLIENT_CRL: required, not set"):
        make_app(CLIENT_CRL=None)
    monkeypatch.delenv("ZT_VERIFIER_CLIENT_CRL")
    with pytest.raises(SettingsError, match=r"\n  ZT_VERIFIER_CLIENT_CRL: required, not set"):
        create_app()


def test_the_verifiers_allow_carries_an_assertion_the_api_accepts(
    make_app, nginx_headers, make_token, tmp_path, now
):
    """The contract between the two: what nginx copies from the verifier's 204 to the
    API (X-Auth-Identity, X-Auth-Assertion) is served for the same method and URI,
    and refused for any other."""
    key_file = tmp_path / "assertion.key"
    key_file.write_text(ASSERTION_KEY_HEX)
    verifier = make_app(ASSERTION_KEY_FILE=str(key_file)).test_client()
    uri = "/api/resource?page=2&q=%C3%BC"
    allow = verifier.get("/_authz", headers=nginx_headers(make_token(), uri=uri))
    assert allow.status_code == 204
    forwarded = {
        name: allow.headers[name]
        for name in ("X-Auth-Subject", "X-Auth-Identity", assertion.HEADER)
    }
    api_config = {"ASSERTION_KEY": bytes.fromhex(ASSERTION_KEY_HEX), "CLOCK": lambda: now}
    api = create_api(api_config).test_client()
    assert api.get(uri, headers=forwarded).status_code == 200
    assert api.get("/api/resource", headers=forwarded).status_code == 401
    assert api.post(uri, headers=forwarded).status_code == 401
