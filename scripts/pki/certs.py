"""Issue leaf certificates from OpenBao with least-privilege AppRoles and write them safely.

Each identity's folder holds three files, all replaced atomically:

* ``bundle.pem`` (0600): private key + certificate + chain in ONE file. Software
  that may read while we rotate (the Python client re-reads it for every new
  TLS connection) uses this file, so it can never pair a new key with an old
  cert: one rename switches both.
* ``key.pem`` (0600) and ``cert.pem`` (chain): the same material split, for
  humans and tools that want two files (curl, openssl). Services that load
  them (nginx, OpenBao, Keycloak) only do so on a reload we trigger after all
  three renames.

Nothing is written unless OpenBao issued a certificate whose public key
matches the private key it returned, so a failed rotation leaves the current
files untouched.
"""

from __future__ import annotations

from pathlib import Path

import hvac
import hvac.exceptions
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from scripts import config
from scripts.files import read_json, write_atomic, write_secret
from scripts.services import baonodes
from scripts.steps import StepFailed


def vault_failure(e: Exception, action: str) -> StepFailed:
    """Turn an hvac/requests error into a message naming the cause and the fix."""
    if isinstance(e, hvac.exceptions.VaultDown):
        return StepFailed(
            f"{action}: OpenBao is sealed ({e}). Unseal it (`make up` unseals from the state "
            "folder); the current certificate files are untouched."
        )
    if isinstance(e, requests.ConnectionError):
        return StepFailed(
            f"{action}: OpenBao is unreachable at {config.VAULT_ADDR}. Start it with `make up`; "
            "the current certificate files are untouched."
        )
    if isinstance(e, hvac.exceptions.Forbidden):
        return StepFailed(f"{action}: OpenBao refused (403 permission denied): {e}")
    return StepFailed(f"{action}: OpenBao answered an error: {e}")


def approle_client(name: str) -> hvac.Client:
    """Log in with the AppRole ``name`` (credentials from the state folder)."""
    path = config.VAULT_APPROLES / f"{name}.json"
    try:
        creds = read_json(path)
    except FileNotFoundError as e:
        raise StepFailed(f"{path} missing; `make up` writes it after terraform/pki apply") from e
    c = hvac.Client(
        url=config.VAULT_ADDR,
        verify=str(config.VAULT_TLS_CA),
        timeout=10,
        **baonodes.hvac_options(),  # HA: a sealed or leaderless node is retried
    )
    try:
        c.auth.approle.login(role_id=creds["role_id"], secret_id=creds["secret_id"])
    except (hvac.exceptions.VaultError, requests.RequestException) as e:
        raise vault_failure(e, f"AppRole login as {name}") from e
    return c


def key_matches_cert(cert_pem: str, key_pem: str) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


def bundle_path(cert_file: Path) -> Path:
    return cert_file.with_name("bundle.pem")


def write_pair(cert_file: Path, key_file: Path, cert_chain_pem: str, key_pem: str) -> None:
    """Check key/cert match, then replace bundle, key and cert, each atomically."""
    if not key_matches_cert(cert_chain_pem, key_pem):
        raise StepFailed(f"issued key does not match issued cert for {cert_file}; nothing written")
    write_secret(bundle_path(cert_file), key_pem.strip() + "\n" + cert_chain_pem)
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


def _issue(approle: str, role: str, mount: str, cn: str, extra: dict | None) -> dict:
    c = approle_client(approle)
    try:
        return c.secrets.pki.generate_certificate(
            name=role, common_name=cn, extra_params=extra, mount_point=mount
        )["data"]
    except (hvac.exceptions.VaultError, requests.RequestException) as e:
        raise vault_failure(e, f"issuing a certificate for {cn} from {mount}/{role}") from e


def issue_server_cert(name: str) -> x509.Certificate:
    """Serving cert for ``name`` (CN=localhost, SAN 127.0.0.1) from the server CA."""
    out = pki_outputs()
    data = _issue(
        "server-certs",
        out["server_role"],
        out["mounts"]["server_issuing"],
        "localhost",
        {"ip_sans": config.HOST},
    )
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
    data = _issue(f"client-{identity}", role, out["mounts"]["client_issuing"], identity, None)
    cert_file, key_file = config.client_cert_paths(identity)
    write_pair(cert_file, key_file, _chain(data), data["private_key"])
    return x509.load_pem_x509_certificate(data["certificate"].encode())


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def serial_hex(cert: x509.Certificate) -> str:
    """The certificate's serial as OpenBao prints it (see ``format_serial``)."""
    return format_serial(cert.serial_number)


def format_serial(serial: int) -> str:
    """Colon-separated lowercase hex pairs, as OpenBao prints and accepts serials."""
    h = format(serial, "x")
    h = h if len(h) % 2 == 0 else "0" + h
    return ":".join(h[i : i + 2] for i in range(0, len(h), 2))


def issued(mount: str, serial: str) -> x509.Certificate | None:
    """The certificate ``serial`` (OpenBao's format) issued by ``mount``, or None.

    ``<mount>/cert/<serial>`` is one of OpenBao's unauthenticated PKI endpoints."""
    try:
        r = requests.get(
            f"{config.VAULT_ADDR}/v1/{mount}/cert/{serial}",
            verify=str(config.VAULT_TLS_CA),
            timeout=10,
        )
    except requests.RequestException as e:
        raise vault_failure(e, f"looking up certificate {serial}") from e
    if r.status_code != 200:
        return None
    pem = r.json().get("data", {}).get("certificate", "")
    return x509.load_pem_x509_certificate(pem.encode()) if pem else None


def revoke(serial: str) -> str:
    """Revoke ``serial`` (OpenBao's format) with the revoker AppRole; returns its mount.

    OpenBao rebuilds that mount's CRL inside the call; installing it for nginx and
    the verifier is the CRL watcher's job (or the caller's, ``rotation.revoke``)."""
    mounts = pki_outputs()["mounts"]
    client = approle_client("revoker")
    for mount in (mounts["client_issuing"], mounts["server_issuing"]):
        try:
            client.write_data(f"{mount}/revoke", data={"serial_number": serial})
        except hvac.exceptions.InvalidRequest:
            continue  # not issued by this mount
        except (hvac.exceptions.VaultError, requests.RequestException) as e:
            raise vault_failure(e, f"revoking {serial}") from e
        return mount
    raise StepFailed(f"no certificate with serial {serial} was issued by our CAs")
