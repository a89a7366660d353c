"""Real access tokens for tests, the way workloads get them: with a certificate (RFC 8705).

There is no client secret anywhere. A token is bound to the certificate it was
requested with (``cnf.x5t#S256``), so a test that sends a token with some
certificate gets it with that same certificate: ``fetch_token(client_id, cert)``.
``cert`` is what ``requests`` takes: a (certificate, key) pair or one file holding
both (an identity's ``bundle.pem``).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from client.api import GatewayClient
from client.credential import Identity
from client.token import TokenSource
from scripts import config
from scripts.files import read_json
from scripts.pki import certs

SERVER_CA = str(config.SERVER_CA_BUNDLE)
Cert = str | tuple[str, str]


def token_endpoint() -> str:
    return read_json(config.IDENTITY_OUTPUTS)["token_endpoint"]


def cert_of(workload: str) -> tuple[str, str]:
    """The (cert, key) files of a workload identity, as ``requests`` wants them."""
    cert, key = config.client_cert_paths(workload)
    return str(cert), str(key)


def bundle_of(workload: str) -> str:
    """The workload's ``bundle.pem`` (key + chain, replaced by one rename on rotation)."""
    cert, _ = config.client_cert_paths(workload)
    return str(certs.bundle_path(cert))


def request_token(
    client_id: str, cert: Cert | None, endpoint: str | None = None
) -> requests.Response:
    """One client_credentials request to Keycloak presenting ``cert`` (None: no certificate)."""
    return requests.post(
        endpoint or token_endpoint(),
        data={"grant_type": "client_credentials", "client_id": client_id},
        cert=cert,
        verify=SERVER_CA,
        timeout=10,
    )


def fetch_token(client_id: str, cert: Cert | None = None, endpoint: str | None = None) -> str:
    """A fresh access token of ``client_id``, bound to ``cert`` (default: the
    workload's own current certificate)."""
    r = request_token(client_id, cert if cert is not None else cert_of(client_id), endpoint)
    assert r.status_code == 200, f"Keycloak refused {client_id}: {r.status_code} {r.text[:200]}"
    return r.json()["access_token"]


def token_source(workload: str, cert_file: str | Path | None = None, key_file=None) -> TokenSource:
    """The client library's cached, rotation-aware token source for ``workload``
    (default: its ``bundle.pem``)."""
    identity = Identity(
        str(cert_file) if cert_file else bundle_of(workload),
        str(key_file) if key_file else None,
        SERVER_CA,
    )
    return TokenSource(token_endpoint(), workload, identity)


def gateway_client(workload: str) -> GatewayClient:
    """The client library as a workload runs it: its bundle, tokens bound to it."""
    return GatewayClient(config.GATEWAY_URL, token_source(workload))


def thumbprint(cert_file: str | Path) -> str:
    """RFC 8705 ``x5t#S256`` of the first certificate in ``cert_file``."""
    leaf = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    der = leaf.public_bytes(serialization.Encoding.DER)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
