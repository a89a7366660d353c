"""Issue leaf certificates from OpenBao with least-privilege AppRoles and write them safely.

A cert/key pair is written so that no reader ever sees a mismatched pair:
the key is checked against the cert *before* anything is renamed into place,
the key file is replaced first (0600) and the cert (with chain) second, each
atomically. Readers that load the pair at a reload (nginx, the client) only
reload after both renames.
"""

from __future__ import annotations

from pathlib import Path

import hvac
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from scripts import config
from scripts.files import read_json, write_atomic, write_secret
from scripts.steps import StepFailed


def approle_client(name: str) -> hvac.Client:
    """Log in with the AppRole ``name`` (credentials from the state folder)."""
    path = config.VAULT_APPROLES / f"{name}.json"
    try:
        creds = read_json(path)
    except FileNotFoundError as e:
        raise StepFailed(f"{path} missing; `make up` writes it after terraform/pki apply") from e
    c = hvac.Client(url=config.VAULT_ADDR, verify=str(config.VAULT_TLS_CA))
    c.auth.approle.login(role_id=creds["role_id"], secret_id=creds["secret_id"])
    return c


def key_matches_cert(cert_pem: str, key_pem: str) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


def write_pair(cert_file: Path, key_file: Path, cert_chain_pem: str, key_pem: str) -> None:
    if not key_matches_cert(cert_chain_pem, key_pem):
        raise StepFailed(f"issued key does not match issued cert for {cert_file}; nothing written")
    write_secret(key_file, key_pem)
    write_atomic(cert_file, cert_chain_pem)


def _chain(data: dict) -> str:
    parts = [data["certificate"], data["issuing_ca"]]
    return "\n".join(p.strip() for p in parts) + "\n"


def pki_outputs() -> dict:
    """Mount paths and role names as terraform/pki output them."""
    try:
        return read_json(config.PKI_OUTPUTS)
    except FileNotFoundError as e:
        raise StepFailed(f"{config.PKI_OUTPUTS} missing; run `make up` first") from e


def issue_server_cert(name: str) -> x509.Certificate:
    """Serving cert for ``name`` (CN=localhost, SAN 127.0.0.1) from the server CA."""
    out = pki_outputs()
    c = approle_client("server-certs")
    data = c.secrets.pki.generate_certificate(
        name=out["server_role"],
        common_name="localhost",
        extra_params={"ip_sans": config.HOST},
        mount_point=out["mounts"]["server_issuing"],
    )["data"]
    cert_file, key_file = config.server_cert_paths(name)
    write_pair(cert_file, key_file, _chain(data), data["private_key"])
    return x509.load_pem_x509_certificate(data["certificate"].encode())


def issue_client_cert(identity: str) -> x509.Certificate:
    """Workload cert for ``identity`` from its own role, with its own AppRole."""
    out = pki_outputs()
    role = out["client_roles"].get(identity)
    if role is None:
        known = ", ".join(sorted(out["client_roles"]))
        raise StepFailed(f"unknown workload identity {identity!r}; known: {known}")
    c = approle_client(f"client-{identity}")
    data = c.secrets.pki.generate_certificate(
        name=role, common_name=identity, mount_point=out["mounts"]["client_issuing"]
    )["data"]
    cert_file, key_file = config.client_cert_paths(identity)
    write_pair(cert_file, key_file, _chain(data), data["private_key"])
    return x509.load_pem_x509_certificate(data["certificate"].encode())
