"""Attacks on the transport: no certificate, the wrong CA, plain HTTP, a distrusting client.

nginx refuses these itself, before the verifier is asked. Observed behaviour
(nginx 1.22 with ``ssl_verify_client on``): the TLS handshake COMPLETES without
a usable client certificate, then nginx answers HTTP 400 with our JSON body
(internal 496 "no cert" / 495 "cert failed"). Its access log says why in
``ssl_client_verify`` (``NONE`` or ``FAILED:<openssl reason>``); there is no
audit line because the verifier never saw the request.

Every attack here also sends python-client's real, valid token, so the
certificate (or the channel) is the only thing wrong with it.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scripts import certs, config, vault_server
from tests.attacks.conftest import LogWindow, bearer, call, cert_of

CERT_REQUIRED = {"error": "client certificate required"}
SHORT_TTL = "5m"  # certificates minted for an attack outlive it only briefly


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_pair(tmp_path: Path, cert_pem: str, key_pem: str | bytes) -> tuple[str, str]:
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_text(cert_pem)
    key_file.write_bytes(key_pem.encode() if isinstance(key_pem, str) else key_pem)
    key_file.chmod(0o600)
    return str(cert_file), str(key_file)


def _eku(cert_pem: str) -> list[x509.ObjectIdentifier]:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def _assert_refused_by_nginx(r: requests.Response, window: LogWindow, verify: str) -> None:
    """400 + our body; nginx logged ``verify``; no verifier decision; the API got nothing."""
    assert r.status_code == 400
    assert r.json() == CERT_REQUIRED
    trail = window.trail()
    assert trail.nginx["status"] == 400
    if verify.endswith(":"):
        assert trail.nginx["ssl_client_verify"].startswith(verify), trail.nginx
    else:
        assert trail.nginx["ssl_client_verify"] == verify, trail.nginx
    assert trail.nginx["auth_reason"] == ""
    assert trail.audit == []
    assert trail.api == []


def test_a_request_without_a_client_certificate_gets_400_from_nginx(log_since, token_for):
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=None, headers=bearer(token_for("python-client")))
    _assert_refused_by_nginx(r, window, "NONE")


def test_a_self_signed_client_certificate_is_refused_by_nginx(log_since, token_for, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "python-client")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pair = _write_pair(
        tmp_path, cert.public_bytes(serialization.Encoding.PEM).decode(), _private_pem(key)
    )
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=pair, headers=bearer(token_for("python-client")))
    _assert_refused_by_nginx(r, window, "FAILED:")


def test_a_server_ca_certificate_is_refused_as_a_client_certificate(log_since, token_for, tmp_path):
    out = certs.pki_outputs()
    issued = certs.approle_client("server-certs").secrets.pki.generate_certificate(
        name=out["server_role"],
        common_name="localhost",
        extra_params={"ttl": SHORT_TTL},
        mount_point=out["mounts"]["server_issuing"],
    )["data"]
    assert _eku(issued["certificate"]) == [x509.ExtendedKeyUsageOID.SERVER_AUTH]
    chain = issued["certificate"].strip() + "\n" + issued["issuing_ca"].strip() + "\n"
    pair = _write_pair(tmp_path, chain, issued["private_key"])
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=pair, headers=bearer(token_for("python-client")))
    _assert_refused_by_nginx(r, window, "FAILED:")


def test_a_mis_issued_server_ca_certificate_with_client_auth_is_still_refused(
    log_since, token_for, tmp_path
):
    # Simulates a mis-issuance: the root token signs, verbatim, a CSR for
    # CN=python-client with the clientAuth EKU on the SERVER issuing CA.
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "python-client")]))
        .sign(key, hashes.SHA256())
    )
    mount = certs.pki_outputs()["mounts"]["server_issuing"]
    root = vault_server.client(vault_server.root_token())
    issued: dict[str, Any] = root.write_data(
        f"{mount}/sign-verbatim",
        data={
            "csr": csr.public_bytes(serialization.Encoding.PEM).decode(),
            "ext_key_usage": ["ClientAuth"],
            "ttl": SHORT_TTL,
        },
    )["data"]
    # OpenBao accepts it: the certificate really is a clientAuth cert from the server CA.
    assert _eku(issued["certificate"]) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    leaf = x509.load_pem_x509_certificate(issued["certificate"].encode())
    assert "Server Issuing CA" in leaf.issuer.rfc4514_string()
    chain = issued["certificate"].strip() + "\n" + issued["issuing_ca"].strip() + "\n"
    pair = _write_pair(tmp_path, chain, _private_pem(key))
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=pair, headers=bearer(token_for("python-client")))
    _assert_refused_by_nginx(r, window, "FAILED:")


def test_plain_http_to_the_tls_port_gets_400_https_required(log_since, token_for):
    window = log_since()
    url = window.url("/api/resource", base=f"http://localhost:{config.NGINX_PORT}")
    r = requests.get(url, headers=bearer(token_for("python-client")), timeout=10)
    assert r.status_code == 400
    assert r.json() == {"error": "https required"}
    trail = window.trail()
    assert trail.nginx["status"] == 400
    assert trail.nginx["ssl_client_verify"] == ""  # no TLS at all
    assert trail.audit == []
    assert trail.api == []


@pytest.mark.parametrize(
    "trust",
    [pytest.param(str(config.CLIENT_CA_BUNDLE), id="client-ca"), pytest.param(True, id="system")],
)
def test_a_client_that_does_not_trust_the_server_ca_aborts_the_handshake(
    log_since, token_for, trust
):
    window = log_since()
    token = token_for("python-client")
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        call(
            window,
            "GET",
            "/api/resource",
            cert=cert_of("python-client"),
            headers=bearer(token),
            verify=trust,
        )
    time.sleep(0.5)  # a completed request would be logged by now
    assert window.marked_nginx_lines() == []
    assert window.api_lines_for(request_id="") == []
