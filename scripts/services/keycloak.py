"""Keycloak lifecycle: production mode (`kc.sh start --optimized`) on HTTPS only.

The serving certificate comes from the server CA (issued through the
`server-certs` AppRole), plain HTTP is disabled, health and metrics answer on
the management port (also HTTPS). The embedded dev-file database lives in the
state folder. The bootstrap admin password is generated at first start, kept
in `.state/keycloak/admin.json` (0600) and used only by Terraform.

Workloads authenticate to the token endpoint with their certificate (RFC 8705):
the HTTPS listener *requests* a client certificate (`--https-client-auth=request`:
callers without one, such as the verifier's JWKS fetch and Terraform's admin API
calls, are served as before) and trusts the client **root** CA only
(`--https-trust-store-file`, a PKCS12 store made with the JDK's keytool: with a
PEM trust file, Quarkus cannot reload the serving certificate any more). A
client-CA rollover signs its new issuing CA with that same root, so Keycloak
accepts the new certificates from the first one on, with no reload. Keycloak
checks no CRL here: a revoked certificate can still get a token, bound to that
certificate, which nginx and the verifier then refuse.

One node: local caches (`--cache=local`), so no JGroups cluster transport
listening beyond loopback and no ~20 s wait for peers at every start.

Keycloak is restarted by `make up` only when what it was started with changed
(its build and start options, the client root CA): see `fingerprint`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import requests

from scripts import config, tools
from scripts.files import read_json, write_atomic, write_secret_json
from scripts.pki import certs
from scripts.services import procs
from scripts.steps import StepFailed, say, wait_until

ADMIN_USERNAME = "zt-bootstrap-admin"
RELOAD_PERIOD = "30s"  # how often Keycloak re-reads its certificate files


def admin_credentials() -> dict[str, str]:
    """The bootstrap admin (created at first start); generated once, 0600."""
    if not config.KEYCLOAK_ADMIN.exists():
        write_secret_json(
            config.KEYCLOAK_ADMIN,
            {"username": ADMIN_USERNAME, "password": secrets.token_urlsafe(32)},
        )
    return read_json(config.KEYCLOAK_ADMIN)


def mgmt_urls() -> tuple[str, ...]:
    """Every Keycloak's management URL: the single one, or each HA node's."""
    return config.KEYCLOAK_NODE_MGMT_URLS if config.HA_KEYCLOAK else (config.KEYCLOAK_MGMT_URL,)


def ready(mgmt_url: str | None = None) -> bool:
    """``/health/ready`` is UP at ``mgmt_url``; by default at any Keycloak of the profile
    (HA: a node serves, the edge passes token requests to it)."""
    return any(_ready_at(url) for url in ((mgmt_url,) if mgmt_url else mgmt_urls()))


def _ready_at(mgmt_url: str) -> bool:
    try:
        r = requests.get(
            f"{mgmt_url}/health/ready",
            verify=str(config.SERVER_CA_BUNDLE),
            timeout=2,
        )
        return r.status_code == 200 and r.json().get("status") == "UP"
    except (requests.RequestException, ValueError):
        return False


def argv(
    home: Path | None = None,
    https_port: int = config.KEYCLOAK_PORT,
    storage: list[str] | None = None,
) -> list[str]:
    """``kc.sh start``: the single Keycloak's by default; an HA node passes its home (built
    for PostgreSQL), its port and its ``storage`` options (cache, management, database)."""
    cert, _ = config.server_cert_paths("keycloak")
    # One file for key and chain: Keycloak re-reads it every reload period, and
    # a single atomic rename can never pair a new key with an old certificate.
    bundle = certs.bundle_path(cert)
    db = config.KEYCLOAK_DIR / "db" / "keycloakdb"
    if storage is None:
        storage = [
            "--cache=local",
            f"--http-management-port={config.KEYCLOAK_MGMT_PORT}",
            f"--db-url=jdbc:h2:file:{db};NON_KEYWORDS=VALUE",
        ]
    return [
        str((home or tools.KEYCLOAK_HOME) / "bin" / "kc.sh"),
        "start",
        "--optimized",
        f"--hostname={config.KEYCLOAK_URL}",
        f"--http-host={config.HOST}",
        "--http-enabled=false",
        f"--https-port={https_port}",
        f"--https-certificate-file={bundle}",
        f"--https-certificate-key-file={bundle}",
        f"--https-certificates-reload-period={RELOAD_PERIOD}",
        "--https-protocols=TLSv1.3,TLSv1.2",
        # RFC 8705: a client certificate, when sent, is verified against the
        # client root only (--https-client-auth=request is a build option:
        # tools.KEYCLOAK_BUILD_OPTIONS); the store's password is in the env.
        f"--https-trust-store-file={config.KEYCLOAK_TRUSTSTORE}",
        "--https-trust-store-type=PKCS12",
        *storage,
        "--log=console",
        "--log-console-output=json",  # one JSON object per line, for machines
    ]


def fingerprint() -> str:
    """What a running Keycloak must have been started with: its build and start
    options and the client root CA (not the serving certificate: Keycloak reloads
    that)."""
    h = hashlib.sha256("\0".join([*tools.KEYCLOAK_BUILD_OPTIONS, *argv()]).encode())
    h.update(config.CLIENT_ROOT_CA.read_bytes())
    return h.hexdigest()


def truststore_password() -> str:
    """Generated at first use, 0600. The store holds only a public certificate;
    the password protects its integrity, and Keycloak gets it in its environment."""
    if not config.KEYCLOAK_TRUSTSTORE_PASSWORD.exists():
        write_secret_json(
            config.KEYCLOAK_TRUSTSTORE_PASSWORD, {"password": secrets.token_urlsafe(24)}
        )
    return read_json(config.KEYCLOAK_TRUSTSTORE_PASSWORD)["password"]


def ensure_truststore() -> None:
    """``config.KEYCLOAK_TRUSTSTORE``: the client root CA alone, as PKCS12 (keytool).

    Rebuilt only when the root changed; written to a temp file first, so a failed
    keytool leaves the current store in place."""
    root = config.CLIENT_ROOT_CA.read_bytes()
    marker = config.KEYCLOAK_TRUSTSTORE.with_suffix(".sha256")
    digest = hashlib.sha256(root).hexdigest()
    current = marker.read_text().strip() if marker.exists() else None
    if config.KEYCLOAK_TRUSTSTORE.exists() and current == digest:
        return
    keytool = shutil.which("keytool")
    if keytool is None:
        raise StepFailed("`keytool` (the JDK's) is not on PATH; install Java 17+ and re-run")
    config.KEYCLOAK_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = Path(tempfile.mkdtemp(dir=config.KEYCLOAK_DIR, prefix=".truststore-"))
    try:
        store = tmp / "store.p12"
        proc = subprocess.run(
            [
                keytool,
                "-importcert",
                "-noprompt",
                "-alias",
                "zt-client-root",
                "-file",
                str(config.CLIENT_ROOT_CA),
                "-keystore",
                str(store),
                "-storetype",
                "PKCS12",
                "-storepass:env",
                "ZT_TRUSTSTORE_PASSWORD",
            ],
            env={**os.environ, "ZT_TRUSTSTORE_PASSWORD": truststore_password()},
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise StepFailed(
                f"keytool could not make Keycloak's trust store from {config.CLIENT_ROOT_CA} "
                f"(exit {proc.returncode}): {(proc.stdout + proc.stderr).strip()[-500:]}"
            )
        os.chmod(store, 0o644)
        os.replace(store, config.KEYCLOAK_TRUSTSTORE)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_atomic(marker, digest + "\n")


def _fingerprint_file() -> Path:
    return config.KEYCLOAK.run_dir / "keycloak.fingerprint"


def start() -> str:
    """Start Keycloak if not running, restart it if what it runs changed; wait for
    /health/ready. Returns what was done."""
    if not config.CLIENT_ROOT_CA.exists():
        raise StepFailed(
            f"{config.CLIENT_ROOT_CA} is missing (terraform/pki writes it); run `make up`"
        )
    ensure_truststore()
    wanted = fingerprint()
    if procs.running(config.KEYCLOAK):
        recorded = _fingerprint_file().read_text().strip() if _fingerprint_file().exists() else ""
        if recorded == wanted:
            wait_until("Keycloak /health/ready", ready, 180, str(config.KEYCLOAK.log_file))
            return "running, unchanged"
        say("    Keycloak's options or trust anchor changed: restarting it")
        procs.stop(config.KEYCLOAK, timeout=60)
        _start(wanted)
        return "restarted (options or trust anchor changed)"
    _start(wanted)
    return "started"


def service_env() -> dict[str, str]:
    """Keycloak's environment (secrets: never on its command line, never logged)."""
    admin = admin_credentials()
    return {
        # Read only when no admin exists yet (first start); ignored afterwards.
        "KC_BOOTSTRAP_ADMIN_USERNAME": admin["username"],
        "KC_BOOTSTRAP_ADMIN_PASSWORD": admin["password"],
        "JAVA_OPTS_KC_HEAP": config.KEYCLOAK_HEAP,
        "KC_HTTPS_TRUST_STORE_PASSWORD": truststore_password(),
    }


def _start(wanted: str) -> None:
    procs.require_free_port(config.KEYCLOAK_MGMT_PORT, "keycloak (management)")
    cert, _ = config.server_cert_paths("keycloak")
    if not certs.bundle_path(cert).exists():
        certs.issue_server_cert("keycloak")
    config.KEYCLOAK_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    env = service_env()
    # "child": kc.sh runs java as its child; killing kc.sh must take java with it.
    procs.start(
        config.KEYCLOAK, argv(), env=env, cwd=config.KEYCLOAK_DIR, launch="child", stop_seconds=60
    )
    write_atomic(_fingerprint_file(), wanted + "\n")
    wait_until(
        "Keycloak /health/ready",
        lambda: procs.alive_or_fail(config.KEYCLOAK) and ready(),
        240,
        str(config.KEYCLOAK.log_file),
        interval=1.0,
    )


def services() -> tuple[config.Service, ...]:
    """Keycloak's processes in this profile: the one node, or each clustered node."""
    return config.KEYCLOAK_NODES if config.HA_KEYCLOAK else (config.KEYCLOAK,)


def log_files() -> str:
    """Where Keycloak's logs are, for an error message."""
    return ", ".join(str(node.log_file) for node in services())


def reload_certificate() -> None:
    """Keycloak re-reads its certificate file every RELOAD_PERIOD: nothing to signal,
    no restart. (The caller waits until the new serial is served.)"""
    if all(procs.running(node) is None for node in services()):
        raise StepFailed("Keycloak is not running; `make up` starts it")
