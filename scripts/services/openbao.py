"""OpenBao lifecycle: render config, start, init (first time), unseal, TLS switch.

Chicken-and-egg: OpenBao's listener needs a TLS cert before the server CA
exists, and the server CA lives in OpenBao. So the very first start serves a
short-lived self-signed *bootstrap* cert (generated here, trusted by pinning
it); once `terraform/pki` has created the server CA, `switch_to_server_ca()`
issues OpenBao's serving cert from it through the `server-certs` AppRole,
swaps the files atomically, and SIGHUPs OpenBao to reload them. From then on
every client trusts the server CA bundle only.

No permanent root token: ``init_and_unseal()`` keeps the unseal key in its own
file and the root token in a bootstrap file, ``terraform_token()`` hands
Terraform that root token for the one bootstrap apply, and after it (and a
clean plan as the operator AppRole, see ``terraform.export_pki_outputs``)
``revoke_bootstrap_root()`` revokes it. From then on Terraform and ``zt`` log
in as the operator AppRole (terraform/pki operator.tf). A state folder from
before (``init.json``: key + root token together) migrates the same way.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import signal
import string
from pathlib import Path

import hvac
import hvac.exceptions
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scripts import config, tools
from scripts.files import read_json, write_atomic, write_secret, write_secret_json
from scripts.pki import certs
from scripts.services import procs
from scripts.steps import StepFailed, say, wait_until

BOOTSTRAP_CN = "OpenBao bootstrap (self-signed, replaced by the server CA)"


def cert_paths() -> tuple[Path, Path]:
    return config.server_cert_paths("vault")


def config_text(data_dir: Path, cert: Path, key: Path) -> str:
    """vault/config.hcl.tmpl for a node storing in ``data_dir`` and serving ``cert``.

    The audit log path is always the stack's: OpenBao records the declared device with
    its path in its data and refuses to unseal when the config names another (so a
    restore's throwaway node, scripts/backup.py, names the final path too)."""
    tmpl = string.Template((config.REPO / "vault" / "config.hcl.tmpl").read_text())
    return tmpl.substitute(
        data_dir=data_dir,
        host=config.HOST,
        port=config.VAULT_PORT,
        cluster_port=config.VAULT_CLUSTER_PORT,
        tls_cert=cert,
        tls_key=key,
        audit_device=config.VAULT_AUDIT_DEVICE,
        audit_log=config.VAULT_AUDIT_LOG,
    )


# Settings OpenBao reads only at start (a SIGHUP does not apply them): a config.hcl
# that changes one of these lines needs a restart.
RESTART_ONLY = re.compile(
    r"^\s*(log_format|telemetry|prometheus_retention_time|disable_hostname"
    r"|unauthenticated_metrics_access)\b.*$",
    re.M,
)


def render_config() -> tuple[bool, bool]:
    """Write config.hcl from the template; (its text changed, a restart is needed)."""
    text = config_text(config.VAULT_DATA, *cert_paths())
    old = config.VAULT_CONFIG.read_text() if config.VAULT_CONFIG.exists() else None
    if old == text:
        return False, False
    write_atomic(config.VAULT_CONFIG, text, mode=0o600)
    return True, old is not None and RESTART_ONLY.findall(old) != RESTART_ONLY.findall(text)


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


def listener_lapsed() -> bool:
    """True when the listener's certificate on disk is past its notAfter."""
    cert_file, _ = cert_paths()
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return cert.not_valid_after_utc <= dt.datetime.now(dt.UTC)


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


def argv() -> list[str]:
    return [str(tools.BAO), "server", f"-config={config.VAULT_CONFIG}"]


def unseal_spec() -> dict[str, str]:
    """What the launcher needs to unseal OpenBao after a start (scripts/services/launch.py)."""
    return {
        "addr": config.VAULT_ADDR,
        "ca": str(config.VAULT_TLS_CA),
        "key_file": str(config.VAULT_UNSEAL),
    }


def start() -> None:
    """Start OpenBao if it is not running; wait until its API answers."""
    config.VAULT_DATA.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(config.VAULT_DIR, 0o700)
    cert_file, _ = cert_paths()
    lapsed = cert_file.exists() and listener_lapsed()
    if not cert_file.exists() or lapsed:
        # A lapsed listener certificate (the stack was down past its end) cannot be
        # renewed through OpenBao, which nobody can then verify: serve a bootstrap
        # certificate again, and `switch_to_server_ca` issues a new one.
        say(
            "    listener certificate expired: self-signed bootstrap cert again"
            if lapsed
            else "    first start: self-signed bootstrap cert for OpenBao's listener"
        )
        write_bootstrap_cert()
    changed, restart = render_config()
    if procs.running(config.VAULT) and restart:
        say("    config.hcl changed a setting read only at start (logs, telemetry): restarting")
        procs.stop(config.VAULT)
    if procs.running(config.VAULT):
        say(f"    already running (pid {procs.read_pid(config.VAULT.pid_file)})")
        if changed or lapsed:
            # SIGHUP re-reads what OpenBao can reload live, the declared audit
            # devices included: a state folder from before the audit device
            # gets it without a restart.
            say("    config.hcl changed: SIGHUP to reload it")
            reload_listener()
    else:
        # The launcher unseals it after every start (a restart by supervisord included).
        procs.start(config.VAULT, argv(), launch="child", unseal=unseal_spec())
    wait_until(
        "OpenBao API",
        lambda: procs.alive_or_fail(config.VAULT) and health() is not None,
        60,
        str(config.VAULT.log_file),
    )


def init_and_unseal() -> None:
    """Initialise once, then unseal from the state folder.

    Initialisation writes the unseal key (``unseal.json``) and the root token
    (``bootstrap-root-token.json``) to two files, both 0600; the root token is
    revoked once terraform/pki has created the operator AppRole. A state folder
    from before keeps both in ``init.json``: it is split the same way here."""
    c = client()
    if not c.sys.is_initialized():
        say("    first start: initialising OpenBao (1 key share; see README)")
        result = c.sys.initialize(secret_shares=1, secret_threshold=1)
        write_secret_json(config.VAULT_UNSEAL, {"unseal_keys_b64": result["keys_base64"]})
        write_secret_json(config.VAULT_BOOTSTRAP_ROOT, {"root_token": result["root_token"]})
    if config.VAULT_INIT.exists():
        _split_legacy_init()
    if c.sys.is_sealed():
        c.sys.submit_unseal_keys(unseal_keys())
    wait_until(
        "OpenBao unsealed and active",
        lambda: (h := health()) is not None and not h.get("sealed") and not h.get("standby"),
        30,
        str(config.VAULT.log_file),
    )


def _split_legacy_init() -> None:
    """init.json (unseal key + root token) -> unseal.json + the bootstrap file."""
    say(f"    {config.VAULT_INIT.name}: unseal key and root token to separate files")
    legacy = read_json(config.VAULT_INIT)
    write_secret_json(config.VAULT_UNSEAL, {"unseal_keys_b64": legacy["unseal_keys_b64"]})
    write_secret_json(config.VAULT_BOOTSTRAP_ROOT, {"root_token": legacy["root_token"]})
    config.VAULT_INIT.unlink()


def unseal_keys() -> list[str]:
    try:
        return read_json(config.VAULT_UNSEAL)["unseal_keys_b64"]
    except FileNotFoundError as e:
        raise StepFailed(
            f"OpenBao is sealed and {config.VAULT_UNSEAL} is missing; restore it or "
            "`make clean` to start over"
        ) from e


def _bootstrap_root() -> str | None:
    """The root token from init while OpenBao still accepts it, else None.

    Revoked but still on file (the bring-up stopped between the revocation and
    the move): finish the move now."""
    if not config.VAULT_BOOTSTRAP_ROOT.exists():
        return None
    token = read_json(config.VAULT_BOOTSTRAP_ROOT)["root_token"]
    try:
        client(token).auth.token.lookup_self()
    except hvac.exceptions.Forbidden:
        _keep_as_revoked(token)
        return None
    return token


def bootstrap_pending() -> bool:
    """True until the root token from init has been revoked."""
    return _bootstrap_root() is not None


def operator_token() -> str:
    """A token of the operator AppRole (short-lived, policy terraform-pki only)."""
    return certs.approle_client(config.VAULT_OPERATOR_APPROLE).token


def terraform_token() -> str:
    """The token terraform/pki applies with: the root token for the one bootstrap
    apply (no operator AppRole exists yet), the operator AppRole's after it."""
    return _bootstrap_root() or operator_token()


def revoke_bootstrap_root() -> None:
    """Revoke the root token from init (revoke-self), check OpenBao refuses it,
    and keep it only in the clearly named revoked file (for the tests)."""
    token = _bootstrap_root()
    if token is None:
        return
    root = client(token)
    root.auth.token.revoke_self()
    try:
        root.auth.token.lookup_self()
    except hvac.exceptions.Forbidden:
        _keep_as_revoked(token)
        return
    raise StepFailed("OpenBao still accepts the root token after revoke-self; it stays on file")


def _keep_as_revoked(token: str) -> None:
    revoked_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    write_secret_json(config.VAULT_REVOKED_ROOT, {"root_token": token, "revoked_at": revoked_at})
    config.VAULT_BOOTSTRAP_ROOT.unlink()


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


def audit_status_line() -> str:
    """The declared audit device as OpenBao reports it (operator token: sys/audit)."""
    if (h := health()) is None or h.get("sealed") or not h.get("initialized"):
        return "unknown (OpenBao unreachable or sealed)"
    try:
        devices = client(terraform_token()).sys.list_enabled_audit_devices()["data"]
    except (StepFailed, hvac.exceptions.VaultError, requests.RequestException) as e:
        return f"unknown ({e})"
    device = devices.get(f"{config.VAULT_AUDIT_DEVICE}/")
    if device is None:
        return f"NOT enabled (no {config.VAULT_AUDIT_DEVICE}/ device; `make up` declares it)"
    options = device.get("options", {})
    hashed = "secrets HMAC'd" if options.get("log_raw", "false") == "false" else "RAW secrets"
    path = options.get("file_path")
    return f"{device['type']} device {config.VAULT_AUDIT_DEVICE}/ enabled, {hashed}: {path}"
