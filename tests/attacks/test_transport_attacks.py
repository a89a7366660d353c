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

import time

import pytest
import requests
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from scripts import config
from scripts.pki import certs
from tests.attacks.conftest import (
    assert_refused_by_nginx,
    bearer,
    call,
    cert_of,
    sign_verbatim,
)
from tests.x509_helpers import build_cert, cert_pem, extended_key_usage, new_key, write_pair

SHORT_TTL = "5m"  # certificates minted for an attack outlive it only briefly


def test_a_request_without_a_client_certificate_gets_400_from_nginx(log_since, token_for):
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=None, headers=bearer(token_for("python-client")))
    assert_refused_by_nginx(r, window, "NONE")


def test_a_self_signed_client_certificate_is_refused_by_nginx(log_since, token_for, tmp_path):
    key = new_key()
    cert = build_cert("python-client", key, ca=False, client_auth=True)
    pair = write_pair(tmp_path, cert_pem(cert), key)
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=pair, headers=bearer(token_for("python-client")))
    assert_refused_by_nginx(r, window, "FAILED:")


def test_a_server_ca_certificate_is_refused_as_a_client_certificate(log_since, token_for, tmp_path):
    out = certs.pki_outputs()
    issued = certs.approle_client("server-certs").secrets.pki.generate_certificate(
        name=out["server_role"],
        common_name="localhost",
        extra_params={"ttl": SHORT_TTL},
        mount_point=out["mounts"]["server_issuing"],
    )["data"]
    assert extended_key_usage(issued["certificate"]) == [x509.ExtendedKeyUsageOID.SERVER_AUTH]
    chain = issued["certificate"].strip() + "\n" + issued["issuing_ca"].strip() + "\n"
    pair = write_pair(tmp_path, chain, issued["private_key"])
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=pair, headers=bearer(token_for("python-client")))
    assert_refused_by_nginx(r, window, "FAILED:")


def test_a_mis_issued_server_ca_certificate_with_client_auth_is_still_refused(
    log_since, token_for, tmp_path
):
    # Simulates a mis-issuance: the root token signs, verbatim, a CSR for
    # CN=python-client with the clientAuth EKU on the SERVER issuing CA.
    key = new_key()
    issued = sign_verbatim("server_issuing", key, ext_key_usage=["ClientAuth"], ttl=SHORT_TTL)
    # OpenBao accepts it: the certificate really is a clientAuth cert from the server CA.
    assert extended_key_usage(issued["certificate"]) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    leaf = x509.load_pem_x509_certificate(issued["certificate"].encode())
    assert "Server Issuing CA" in leaf.issuer.rfc4514_string()
    chain = issued["certificate"].strip() + "\n" + issued["issuing_ca"].strip() + "\n"
    pair = write_pair(tmp_path, chain, key)
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=pair, headers=bearer(token_for("python-client")))
    assert_refused_by_nginx(r, window, "FAILED:")


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
