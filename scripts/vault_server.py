"""OpenBao lifecycle: render config, start, init (first time), unseal, TLS switch.

Chicken-and-egg: OpenBao's listener needs a TLS cert before the server CA
exists, and the server CA lives in OpenBao. So the very first start serves a
short-lived self-signed *bootstrap* cert (generated here, trusted by pinning
it); once `terraform/pki` has created the server CA, `switch_to_server_ca()`
issues OpenBao's serving cert from it through the `server-certs` AppRole,
swaps the files atomically, and SIGHUPs OpenBao to reload them. From then on
every client trusts the server CA bundle only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import signal
import string
from pathlib import Path

import hvac
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scripts import config, procs, tools
from scripts.files import read_json, write_atomic, write_secret, write_secret_json
from scripts.steps import StepFailed, say, wait_until

BOOTSTRAP_CN = "OpenBao bootstrap (self-signed, replaced by the server CA)"


def cert_paths() -> tuple[Path, Path]:
    return config.server_cert_paths("vault")


def render_config() -> None:
    cert, key = cert_paths()
    tmpl = string.Template((config.REPO / "vault" / "config.hcl.tmpl").read_text())
    text = tmpl.substitute(
        data_dir=config.VAULT_DATA,
        host=config.HOST,
        port=config.VAULT_PORT,
        cluster_port=config.VAULT_CLUSTER_PORT,
        tls_cert=cert,
        tls_key=key,
    )
    write_atomic(config.VAULT_CONFIG, text, mode=0o600)


def write_bootstrap_cert() -> None:
    """A 1-day self-signed cert for 127.0.0.1/localhost, trusted by pinning."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BOOTSTRAP_CN)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(config.HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file = cert_paths()
    write_secret(
        key_file,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    write_atomic(cert_file, pem)
    write_atomic(config.VAULT_TLS_CA, pem)


def listener_is_bootstrap() -> bool:
    cert_file, _ = cert_paths()
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return cert.subject == cert.issuer


def health() -> dict | None:
    """``sys/health`` over TLS verified against what we trust now; None if unreachable."""
    try:
        r = requests.get(
            f"{config.VAULT_ADDR}/v1/sys/health",
            params={"standbyok": "true", "sealedcode": "200", "uninitcode": "200"},
            verify=str(config.VAULT_TLS_CA),
            timeout=2,
        )
        return r.json()
    except (requests.RequestException, ValueError):
        return None


def client(token: str | None = None) -> hvac.Client:
    return hvac.Client(url=config.VAULT_ADDR, token=token, verify=str(config.VAULT_TLS_CA))


def root_token() -> str:
    """The root token, for bootstrap steps only (terraform/pki apply)."""
    try:
        return read_json(config.VAULT_INIT)["root_token"]
    except FileNotFoundError as e:
        raise StepFailed(
            f"{config.VAULT_INIT} is missing: OpenBao was never initialised by this state "
            "folder. Run `make up`, or `make clean` to start over."
        ) from e


def start() -> None:
    """Start OpenBao if it is not running; wait until its API answers."""
    config.VAULT_DATA.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(config.VAULT_DIR, 0o700)
    cert_file, _ = cert_paths()
    if not cert_file.exists():
        say("    first start: self-signed bootstrap cert for OpenBao's listener")
        write_bootstrap_cert()
    render_config()
    if procs.running(config.VAULT):
        say(f"    already running (pid {procs.read_pid(config.VAULT.pid_file)})")
    else:
        procs.start(config.VAULT, [str(tools.BAO), "server", f"-config={config.VAULT_CONFIG}"])
    wait_until(
        "OpenBao API",
        lambda: procs.alive_or_fail(config.VAULT) and health() is not None,
        60,
        str(config.VAULT.log_file),
    )


def init_and_unseal() -> None:
    """Initialise once (keys to the state folder, 0600), then unseal from there."""
    c = client()
    if not c.sys.is_initialized():
        say("    first start: initialising OpenBao (1 key share; see README)")
        result = c.sys.initialize(secret_shares=1, secret_threshold=1)
        write_secret_json(
            config.VAULT_INIT,
            {"unseal_keys_b64": result["keys_base64"], "root_token": result["root_token"]},
        )
    if c.sys.is_sealed():
        try:
            keys = read_json(config.VAULT_INIT)["unseal_keys_b64"]
        except FileNotFoundError as e:
            raise StepFailed(
                f"OpenBao is sealed and {config.VAULT_INIT} is missing; restore it or "
                "`make clean` to start over"
            ) from e
        c.sys.submit_unseal_keys(keys)
    wait_until(
        "OpenBao unsealed and active",
        lambda: (h := health()) is not None and not h.get("sealed") and not h.get("standby"),
        30,
        str(config.VAULT.log_file),
    )


def reload_listener() -> None:
    """SIGHUP makes OpenBao re-read its listener cert/key without dropping state."""
    pid = procs.running(config.VAULT)
    if pid is None:
        raise StepFailed("OpenBao is not running; `make up` starts it")
    os.kill(pid, signal.SIGHUP)


def serving_cert_matches_ca() -> bool:
    """True when a TLS handshake to OpenBao verifies against the server CA bundle."""
    try:
        requests.get(
            f"{config.VAULT_ADDR}/v1/sys/health",
            verify=str(config.SERVER_CA_BUNDLE),
            timeout=2,
        )
    except requests.RequestException:
        return False
    return True


def switch_to_server_ca() -> None:
    """Replace the bootstrap listener cert with one from the server CA (once)."""
    from scripts import certs  # late import: needs the server CA bundle on disk

    if not listener_is_bootstrap():
        say("    OpenBao already serves a server-CA certificate")
        return
    certs.issue_server_cert("vault")
    write_atomic(config.VAULT_TLS_CA, config.SERVER_CA_BUNDLE.read_bytes())
    reload_listener()
    wait_until(
        "OpenBao serving the server-CA certificate",
        serving_cert_matches_ca,
        20,
        str(config.VAULT.log_file),
    )


def seal_status_line() -> str:
    h = health()
    if h is None:
        return "unreachable"
    if not h.get("initialized"):
        return "not initialised"
    if h.get("sealed"):
        return "sealed"
    return f"unsealed, active, version {h.get('version')}"
