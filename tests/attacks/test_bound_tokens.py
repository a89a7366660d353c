"""RFC 8705 end to end: workloads get tokens with their certificate, tokens are bound to it.

Against the real Keycloak and the real gateway:

* Keycloak issues a token only to a client presenting a certificate from the client
  root whose subject DN is exactly ``CN=<client_id>``; the token carries
  ``cnf.x5t#S256``, the SHA-256 thumbprint of that certificate;
* the gateway accepts the token only over a connection made with that very
  certificate: another valid certificate of the same workload (the previous one after
  ``zt rotate``) gets 401 ``binding_thumbprint_mismatch``; a token that is not bound
  (``token_not_bound``) or bound to something the verifier cannot check (DPoP's
  ``cnf.jkt``: ``token_binding_unsupported``) gets 401;
* no client secret exists: not in Terraform's state or outputs, not in the state
  folder, not in any process environment of the stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from scripts import config, terraform
from scripts.services import procs
from tests.attacks.conftest import (
    SERVER_CA,
    KeycloakAdmin,
    bearer,
    call,
    cert_of,
    fetch_token,
    present_token,
    sign_verbatim,
)
from tests.pki_helpers import issue_throwaway
from tests.tokens import bundle_of, request_token, thumbprint
from tests.x509_helpers import build_cert, cert_pem, new_key, write_pair


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _refused_by_keycloak(r: requests.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"
    assert "access_token" not in r.text


# --- Keycloak: a token for a certificate, and only for the right one ---------------------


def test_a_token_requested_with_the_certificate_is_bound_to_that_certificate(identity):
    token = fetch_token("python-client", cert_of("python-client"), identity["token_endpoint"])
    claims = _claims(token)
    cert_file, _ = cert_of("python-client")
    assert claims["azp"] == "python-client"
    assert claims["cnf"] == {"x5t#S256": thumbprint(cert_file)}
    print(f"\nbound token: azp={claims['azp']} cnf={json.dumps(claims['cnf'])}")


def test_the_bundle_the_client_library_uses_binds_the_same_certificate(identity):
    token = fetch_token("python-client", bundle_of("python-client"), identity["token_endpoint"])
    assert _claims(token)["cnf"]["x5t#S256"] == thumbprint(cert_of("python-client")[0])


def test_keycloak_refuses_a_token_request_without_a_certificate(identity):
    _refused_by_keycloak(request_token("python-client", None, identity["token_endpoint"]))


def test_keycloak_refuses_another_workloads_certificate(identity):
    r = request_token("python-client", cert_of("batch-worker"), identity["token_endpoint"])
    _refused_by_keycloak(r)


def test_keycloak_refuses_a_client_secret_even_the_one_it_keeps_internally(
    identity, keycloak_admin
):
    """Keycloak may keep a secret for a confidential client; with client-x509 it is
    never an accepted credential (and the provider never reads it into state)."""
    s = keycloak_admin.session()
    base = f"{config.KEYCLOAK_URL}/admin/realms/{identity['realm']}/clients"
    (client,) = s.get(base, params={"clientId": "python-client"}).json()
    assert client["clientAuthenticatorType"] == "client-x509"
    secret = client.get("secret") or s.get(f"{base}/{client['id']}/client-secret").json().get(
        "value"
    )
    assert secret, "Keycloak keeps no secret for python-client: nothing to try"
    form = {"grant_type": "client_credentials", "client_id": "python-client"}
    for cert in (None, cert_of("batch-worker")):
        basic = requests.post(
            identity["token_endpoint"],
            data=form,
            auth=("python-client", secret),
            cert=cert,
            verify=SERVER_CA,
            timeout=10,
        )
        _refused_by_keycloak(basic)
        post = requests.post(
            identity["token_endpoint"],
            data={**form, "client_secret": secret},
            cert=cert,
            verify=SERVER_CA,
            timeout=10,
        )
        _refused_by_keycloak(post)


def test_keycloak_refuses_a_chain_with_the_identity_appended(identity, tmp_path):
    """batch-worker's valid chain plus a self-signed CN=python-client certificate
    appended: the handshake verifies (the extra certificate is ignored), and the
    client authenticator must match the leaf only, not any certificate sent."""
    fake = cert_pem(build_cert("python-client", new_key(), client_auth=True))
    cert, key_file = cert_of("batch-worker")
    chain = tmp_path / "chain.pem"
    chain.write_text(Path(cert).read_text() + fake)
    r = request_token("python-client", (str(chain), key_file), identity["token_endpoint"])
    _refused_by_keycloak(r)


def test_keycloak_refuses_a_self_signed_certificate_in_the_handshake(identity, tmp_path):
    key = new_key()
    cert, key_file = write_pair(tmp_path, cert_pem(build_cert("python-client", key)), key)
    with pytest.raises(requests.exceptions.SSLError):
        request_token("python-client", (cert, key_file), identity["token_endpoint"])


def test_keycloak_refuses_a_python_client_certificate_from_the_server_ca(identity, tmp_path):
    """Mis-issued by a PKI administrator on the *server* CA: Keycloak trusts the
    client root only, so the handshake fails."""
    key = new_key()
    data = sign_verbatim("server_issuing", key, ext_key_usage=["ClientAuth"], ttl="10m")
    chain = data["certificate"].strip() + "\n" + data["issuing_ca"].strip() + "\n"
    cert, key_file = write_pair(tmp_path, chain, key)
    with pytest.raises(requests.exceptions.SSLError):
        request_token("python-client", (cert, key_file), identity["token_endpoint"])


# --- the gateway: the bound token works with its certificate and no other -------------------


def test_the_bound_token_with_its_certificate_is_allowed(log_since, identity):
    token = fetch_token("python-client", cert_of("python-client"), identity["token_endpoint"])
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=cert_of("python-client"), headers=bearer(token))
    assert r.status_code == 200, r.text
    assert window.trail().reasons == ["ok"]


def test_the_bound_token_with_another_valid_certificate_of_the_workload_is_refused(
    log_since, identity, tmp_path
):
    other = issue_throwaway(tmp_path)  # a valid python-client certificate, same AppRole
    token = fetch_token("python-client", cert_of("python-client"), identity["token_endpoint"])
    trail = _present(log_since, token, other.files)
    assert trail.reasons == ["binding_thumbprint_mismatch"]
    # and the other certificate's own token works with it
    own = fetch_token("python-client", other.files, identity["token_endpoint"])
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=other.files, headers=bearer(own))
    assert r.status_code == 200, r.text


@pytest.mark.slow
def test_after_zt_rotate_the_old_token_with_the_new_certificate_is_refused(
    log_since, identity, tmp_path
):
    """The closing note's demonstration: a token bound to the certificate before the
    rotation, presented with the rotated one."""
    cert_file, key_file = cert_of("python-client")
    old_files = write_pair(tmp_path, Path(cert_file).read_text(), Path(key_file).read_bytes())
    old_token = fetch_token("python-client", old_files, identity["token_endpoint"])
    rotated = subprocess.run(
        [".venv/bin/python", "-m", "scripts.zt", "rotate", "client", "python-client"],
        cwd=config.REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert thumbprint(cert_file) != thumbprint(old_files[0])
    trail = _present(log_since, old_token, cert_of("python-client"))
    assert trail.reasons == ["binding_thumbprint_mismatch"]
    print(
        f"\nold token cnf {_claims(old_token)['cnf']} with the rotated certificate "
        f"(x5t#S256 {thumbprint(cert_file)}): 401 {trail.reasons[0]}"
    )
    # the old certificate is still valid (rotation does not revoke): its token works with it
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=old_files, headers=bearer(old_token))
    assert r.status_code == 200, r.text
    # and the rotated certificate's own token works
    new_token = fetch_token("python-client", cert_of("python-client"), identity["token_endpoint"])
    window = log_since()
    r = call(
        window, "GET", "/api/resource", cert=cert_of("python-client"), headers=bearer(new_token)
    )
    assert r.status_code == 200, r.text


def _present(log_since, token: str, cert: tuple[str, str]):
    """``token`` with ``cert``: the generic 401, nginx verified the certificate, the
    API received nothing. Returns the trail."""
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=cert, headers=bearer(token))
    assert r.status_code == 401, r.text
    assert r.json() == {"error": "unauthorized"}
    trail = window.trail()
    assert trail.nginx["ssl_client_verify"] == "SUCCESS"
    assert trail.api == []
    return trail


# --- tokens Keycloak issues when python-client is configured otherwise (restored after) ----


@contextlib.contextmanager
def _python_client_attributes(
    admin: KeycloakAdmin, realm: str, **attributes: str
) -> Iterator[None]:
    """python-client's Keycloak attributes changed by hand for one test, then put back
    (Terraform's plan shows no drift afterwards)."""
    s = admin.session()
    base = f"{config.KEYCLOAK_URL}/admin/realms/{realm}/clients"
    (rep,) = s.get(base, params={"clientId": "python-client"}).json()
    original = dict(rep["attributes"])
    changed = {**rep, "attributes": {**original, **attributes}}
    r = s.put(f"{base}/{rep['id']}", json=changed)
    assert r.status_code == 204, r.text
    try:
        yield
    finally:
        s = admin.session()
        (now,) = s.get(base, params={"clientId": "python-client"}).json()
        restored = {**now, "attributes": {**now["attributes"], **original}}
        for key in set(attributes) - set(original):
            restored["attributes"][key] = ""
        r = s.put(f"{base}/{rep['id']}", json=restored)
        assert r.status_code == 204, r.text


def _dpop_proof(key: ec.EllipticCurvePrivateKey, url: str) -> str:
    """An RFC 9449 DPoP proof for POST ``url``."""
    public_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return jwt.encode(
        {"jti": secrets.token_urlsafe(16), "htm": "POST", "htu": url, "iat": int(time.time())},
        key,
        algorithm="ES256",
        headers={"typ": "dpop+jwt", "jwk": public_jwk},
    )


def _token_with(endpoint: str, headers: dict[str, str] | None = None) -> str:
    r = requests.post(
        endpoint,
        data={"grant_type": "client_credentials", "client_id": "python-client"},
        headers=headers or {},
        cert=cert_of("python-client"),
        verify=SERVER_CA,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def test_a_token_keycloak_did_not_bind_is_refused_as_not_bound(log_since, identity, keycloak_admin):
    with _python_client_attributes(
        keycloak_admin, identity["realm"], **{"tls.client.certificate.bound.access.tokens": "false"}
    ):
        token = _token_with(identity["token_endpoint"])
    claims = _claims(token)
    assert claims["azp"] == "python-client" and "cnf" not in claims
    trail = present_token(log_since(), token)
    assert trail.reasons == ["token_not_bound"]
    _assert_no_identity_drift()


def test_a_dpop_bound_token_sent_as_bearer_is_refused(log_since, identity, keycloak_admin):
    """Bound to a DPoP key only (``cnf.jkt``): the verifier checks no DPoP proof, so the
    token cannot be confirmed and is refused, whatever its signature. Keycloak types
    such a token ``DPoP``, which the verifier refuses first (``token_type_invalid``);
    a ``Bearer``-typed token with ``cnf.jkt`` is refused as
    ``token_binding_unsupported`` (tests/unit/test_binding.py: the issuer is trusted,
    not its choice of confirmation method)."""
    key = new_key()
    with _python_client_attributes(
        keycloak_admin, identity["realm"], **{"tls.client.certificate.bound.access.tokens": "false"}
    ):
        endpoint = identity["token_endpoint"]
        token = _token_with(endpoint, {"DPoP": _dpop_proof(key, endpoint)})
    claims = _claims(token)
    assert set(claims["cnf"]) == {"jkt"}, claims.get("cnf")
    assert (claims["azp"], claims["typ"]) == ("python-client", "DPoP")
    trail = present_token(log_since(), token)
    assert trail.reasons == ["token_type_invalid"]
    _assert_no_identity_drift()


def test_a_dpop_token_is_refused_even_when_also_bound_to_the_certificate(log_since, identity):
    """A token requested with the certificate *and* a DPoP proof: Keycloak binds it to
    the certificate and types it ``DPoP``. Presented as a Bearer token (no proof, which
    the verifier would not check anyway) it is refused."""
    endpoint = identity["token_endpoint"]
    token = _token_with(endpoint, {"DPoP": _dpop_proof(new_key(), endpoint)})
    claims = _claims(token)
    assert claims["cnf"]["x5t#S256"] == thumbprint(cert_of("python-client")[0])
    assert claims["typ"] == "DPoP"
    trail = present_token(log_since(), token)
    assert trail.reasons == ["token_type_invalid"]


def _assert_no_identity_drift() -> None:
    changes, plan = terraform.plan_has_changes("identity", terraform.identity_env())
    assert not changes, f"python-client's attributes were not restored:\n{plan[-2000:]}"


# --- no client secret anywhere -------------------------------------------------------------


def _keycloak_internal_secrets(admin: KeycloakAdmin, realm: str) -> list[str]:
    """Whatever secret Keycloak keeps internally for the workload and API clients."""
    s = admin.session()
    base = f"{config.KEYCLOAK_URL}/admin/realms/{realm}/clients"
    found = []
    for client in s.get(base).json():
        if client["clientId"] in ("python-client", "batch-worker", "zerotrust-api"):
            value = s.get(f"{base}/{client['id']}/client-secret").json().get("value")
            if value:
                found.append(value)
    return found


def test_no_client_secret_in_terraform_state_outputs_state_folder_or_environments(
    identity, keycloak_admin
):
    state = json.loads(terraform.state_path("identity").read_text())
    clients = [r for r in state["resources"] if r["type"] == "keycloak_openid_client"]
    assert clients, "terraform/identity state has no clients"
    for resource in clients:
        for instance in resource["instances"]:
            attrs = instance["attributes"]
            assert attrs.get("client_secret") in (None, ""), (
                f"{resource['name']}[{instance.get('index_key')}] has a client secret in state"
            )
    assert not any("secret" in name for name in state.get("outputs", {}))
    assert not any("secret" in name for name in identity)
    assert not config.LEGACY_CLIENT_SECRETS.exists()
    for profile in config.WORKLOAD_PROFILES.glob("*.json"):
        assert not any("secret" in k for k in json.loads(profile.read_text())), profile

    # Keycloak keeps a random secret for every confidential client in its own database
    # (.state/keycloak/db); for a client-x509 client it is no credential (the test
    # above). It must not leak anywhere else.
    internal = _keycloak_internal_secrets(keycloak_admin, identity["realm"])
    keycloak_db = config.KEYCLOAK_DIR / "db"
    if internal:
        for path in config.STATE.rglob("*"):
            if keycloak_db in path.parents:
                continue
            if path.is_file() and path.stat().st_size < 50_000_000:
                data = path.read_bytes()
                for secret in internal:
                    assert secret.encode() not in data, f"a Keycloak client secret is in {path}"
        for svc in config.SERVICES:
            pid = procs.running(svc)
            assert pid is not None, f"{svc.name} is not running"
            for p in {pid, *procs.children(pid)}:
                env = Path(f"/proc/{p}/environ").read_bytes()
                for secret in internal:
                    assert secret.encode() not in env, f"a client secret in {svc.name}'s env"
    for svc in config.SERVICES:
        pid = procs.running(svc)
        for p in {pid, *procs.children(pid)}:
            names = [
                e.split(b"=", 1)[0].decode(errors="replace")
                for e in Path(f"/proc/{p}/environ").read_bytes().split(b"\0")
                if e
            ]
            assert not [n for n in names if "CLIENT_SECRET" in n.upper()], (svc.name, names)
    assert "CLIENT_SECRET" not in "".join(os.environ).upper()
