"""Keycloak runs for real in production mode and terraform/identity configures it."""

from __future__ import annotations

import functools
import json
import ssl
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
import requests
from requests.exceptions import SSLError

from scripts import config, terraform
from scripts.services import keycloak, procs
from tests.integration.conftest import run_zt
from tests.tokens import cert_of, fetch_token


@pytest.fixture(scope="module")
def identity(stack) -> dict:
    return json.loads(config.IDENTITY_OUTPUTS.read_text())


def _token(identity: dict, client_id: str = "python-client") -> str:
    """A token of ``client_id``, requested with its certificate (RFC 8705)."""
    return fetch_token(client_id, cert_of(client_id), identity["token_endpoint"])


def _verified_claims(identity: dict, token: str) -> dict:
    ctx = ssl.create_default_context(cafile=str(config.SERVER_CA_BUNDLE))
    key = jwt.PyJWKClient(identity["jwks_uri"], ssl_context=ctx).get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience=identity["api_client_id"],
        issuer=identity["issuer"],
    )


def _admin_session() -> tuple[requests.Session, str]:
    admin = keycloak.admin_credentials()
    r = requests.post(
        f"{config.KEYCLOAK_URL}/realms/master/protocol/openid-connect/token",
        data={"grant_type": "password", "client_id": "admin-cli", **admin},
        verify=str(config.SERVER_CA_BUNDLE),
        timeout=10,
    )
    r.raise_for_status()
    s = requests.Session()
    # Per-request `verify`: requests lets REQUESTS_CA_BUNDLE override Session.verify.
    s.request = functools.partial(s.request, verify=str(config.SERVER_CA_BUNDLE))
    s.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    return s, f"{config.KEYCLOAK_URL}/admin/realms"


def test_keycloak_runs_in_production_mode(stack):
    pid = procs.running(config.KEYCLOAK)
    assert pid is not None
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"start" in cmdline and b"start-dev" not in cmdline
    assert b"--http-enabled=false" in cmdline
    log = config.KEYCLOAK.log_file.read_text()
    assert "development mode" not in log


def test_keycloak_tls_verifies_with_the_server_ca_only(identity):
    r = requests.get(identity["issuer"], verify=str(config.SERVER_CA_BUNDLE), timeout=10)
    assert r.status_code == 200
    with pytest.raises(SSLError):
        requests.get(identity["issuer"], verify=str(config.CLIENT_CA_BUNDLE), timeout=10)


def test_keycloak_refuses_plain_http(stack):
    url = f"http://{config.HOST}:{config.KEYCLOAK_PORT}/realms/master"
    try:
        r = requests.get(url, timeout=5)
    except requests.ConnectionError:
        return
    assert r.status_code >= 400 and "realm" not in r.text.lower()


def test_client_credentials_token_carries_the_identity_the_verifier_needs(identity):
    token = _token(identity)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = _verified_claims(identity, token)
    assert claims["iss"] == f"{config.KEYCLOAK_URL}/realms/zerotrust"
    assert claims["azp"] == "python-client"
    assert "zerotrust-api" in claims["aud"]
    assert claims["typ"] == "Bearer"
    assert claims["exp"] - claims["iat"] == 300
    assert "viewer" in claims["realm_access"]["roles"]
    assert claims["resource_access"]["zerotrust-api"]["roles"] == ["read"]
    assert (claims["org"], claims["department"]) == ("acme", "payments")


def test_second_identity_gets_its_own_roles_and_claims(identity):
    claims = _verified_claims(identity, _token(identity, "batch-worker"))
    assert claims["azp"] == "batch-worker"
    assert "operator" in claims["realm_access"]["roles"]
    assert "viewer" in claims["realm_access"]["roles"]  # operator is composite
    assert sorted(claims["resource_access"]["zerotrust-api"]["roles"]) == ["read", "write"]
    assert claims["org"] == "globex"


@pytest.mark.parametrize("how", ["basic", "post"])
def test_a_client_secret_is_refused_with_401(identity, how):
    """client_secret_basic or client_secret_post: not a credential of a workload client."""
    data = {"grant_type": "client_credentials", "client_id": "python-client"}
    if how == "post":
        data["client_secret"] = "not-the-secret"
    r = requests.post(
        identity["token_endpoint"],
        data=data,
        auth=("python-client", "not-the-secret") if how == "basic" else None,
        verify=str(config.SERVER_CA_BUNDLE),
        timeout=10,
    )
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"


def test_workload_clients_allow_only_client_credentials(identity):
    r = requests.post(
        identity["token_endpoint"],
        data={
            "grant_type": "password",
            "username": "x",
            "password": "y",
            "client_id": "python-client",
        },
        cert=cert_of("python-client"),
        verify=str(config.SERVER_CA_BUNDLE),
        timeout=10,
    )
    assert r.status_code in (400, 401)
    assert r.json()["error"] in ("unauthorized_client", "invalid_grant")


def test_realm_security_settings_match_the_terraform_variables(identity):
    s, admin = _admin_session()
    realm = s.get(f"{admin}/{identity['realm']}", timeout=10).json()
    assert realm["registrationAllowed"] is False
    assert realm["sslRequired"] == "all"
    assert realm["bruteForceProtected"] is True
    assert realm["failureFactor"] == 5
    assert realm["waitIncrementSeconds"] == 300
    assert realm["maxFailureWaitSeconds"] == 300
    assert realm["permanentLockout"] is False
    assert realm["accessTokenLifespan"] == 300
    assert realm["ssoSessionIdleTimeout"] == 1800
    assert realm["ssoSessionMaxLifespan"] == 1800


def test_api_client_has_no_login_flow(identity):
    s, admin = _admin_session()
    (api,) = s.get(
        f"{admin}/{identity['realm']}/clients", params={"clientId": "zerotrust-api"}, timeout=10
    ).json()
    assert not api["standardFlowEnabled"]
    assert not api["implicitFlowEnabled"]
    assert not api["directAccessGrantsEnabled"]
    assert not api["serviceAccountsEnabled"]


def test_the_keycloak_admin_file_is_private_and_no_client_secret_file_exists(identity):
    assert config.KEYCLOAK_ADMIN.stat().st_mode & 0o077 == 0
    assert not config.LEGACY_CLIENT_SECRETS.exists()


def test_changing_a_variable_takes_effect_without_restarting_anything(identity):
    pid = procs.running(config.KEYCLOAK)
    env = terraform.identity_env()
    try:
        terraform.apply("identity", {**env, "TF_VAR_access_token_lifespan_seconds": "600"})
        claims = _verified_claims(identity, _token(identity))
        assert claims["exp"] - claims["iat"] == 600
    finally:
        terraform.apply("identity", env)
    claims = _verified_claims(identity, _token(identity))
    assert claims["exp"] - claims["iat"] == 300
    assert procs.running(config.KEYCLOAK) == pid


def test_keycloak_restart_keeps_the_realm_and_the_signing_key(identity):
    kid_before = jwt.get_unverified_header(_token(identity))["kid"]
    assert procs.stop(config.KEYCLOAK)
    r = run_zt("up")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "No changes." in r.stdout  # realm, clients, roles all persisted
    token = _token(identity)
    assert jwt.get_unverified_header(token)["kid"] == kid_before
    assert _verified_claims(identity, token)["azp"] == "python-client"


def test_client_token_command_prints_decoded_claims(identity):
    r = subprocess.run(
        [sys.executable, "-m", "client", "token"],
        cwd=config.REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["claims"]["azp"] == "python-client"
    assert out["header"]["alg"] == "RS256"
