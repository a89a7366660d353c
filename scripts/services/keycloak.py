"""Keycloak lifecycle: production mode (`kc.sh start --optimized`) on HTTPS only.

The serving certificate comes from the server CA (issued through the
`server-certs` AppRole), plain HTTP is disabled, health and metrics answer on
the management port (also HTTPS). The embedded dev-file database lives in the
state folder. The bootstrap admin password is generated at first start, kept
in `.state/keycloak/admin.json` (0600) and used only by Terraform.
"""

from __future__ import annotations

import secrets

import requests

from scripts import config, tools
from scripts.files import read_json, write_secret_json
from scripts.pki import certs
from scripts.services import procs
from scripts.steps import StepFailed, wait_until

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


def ready() -> bool:
    try:
        r = requests.get(
            f"{config.KEYCLOAK_MGMT_URL}/health/ready",
            verify=str(config.SERVER_CA_BUNDLE),
            timeout=2,
        )
        return r.status_code == 200 and r.json().get("status") == "UP"
    except (requests.RequestException, ValueError):
        return False


def argv() -> list[str]:
    cert, _ = config.server_cert_paths("keycloak")
    # One file for key and chain: Keycloak re-reads it every reload period, and
    # a single atomic rename can never pair a new key with an old certificate.
    bundle = certs.bundle_path(cert)
    db = config.KEYCLOAK_DIR / "db" / "keycloakdb"
    return [
        str(tools.KEYCLOAK_HOME / "bin" / "kc.sh"),
        "start",
        "--optimized",
        f"--hostname={config.KEYCLOAK_URL}",
        f"--http-host={config.HOST}",
        "--http-enabled=false",
        f"--https-port={config.KEYCLOAK_PORT}",
        f"--https-certificate-file={bundle}",
        f"--https-certificate-key-file={bundle}",
        f"--https-certificates-reload-period={RELOAD_PERIOD}",
        "--https-protocols=TLSv1.3,TLSv1.2",
        f"--http-management-port={config.KEYCLOAK_MGMT_PORT}",
        f"--db-url=jdbc:h2:file:{db};NON_KEYWORDS=VALUE",
        "--log=console",
    ]


def start() -> None:
    """Start Keycloak if not running and wait for /health/ready."""
    if procs.running(config.KEYCLOAK):
        wait_until("Keycloak /health/ready", ready, 180, str(config.KEYCLOAK.log_file))
        return
    procs.require_free_port(config.KEYCLOAK_MGMT_PORT, "keycloak (management)")
    cert, _ = config.server_cert_paths("keycloak")
    if not certs.bundle_path(cert).exists():
        certs.issue_server_cert("keycloak")
    config.KEYCLOAK_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    admin = admin_credentials()
    env = {
        # Read only when no admin exists yet (first start); ignored afterwards.
        "KC_BOOTSTRAP_ADMIN_USERNAME": admin["username"],
        "KC_BOOTSTRAP_ADMIN_PASSWORD": admin["password"],
        "JAVA_OPTS_KC_HEAP": config.KEYCLOAK_HEAP,
    }
    procs.start(config.KEYCLOAK, argv(), env=env, cwd=config.KEYCLOAK_DIR)
    wait_until(
        "Keycloak /health/ready",
        lambda: procs.alive_or_fail(config.KEYCLOAK) and ready(),
        240,
        str(config.KEYCLOAK.log_file),
        interval=1.0,
    )


def reload_certificate() -> None:
    """Keycloak re-reads its certificate file every RELOAD_PERIOD: nothing to signal,
    no restart. (The caller waits until the new serial is served.)"""
    if procs.running(config.KEYCLOAK) is None:
        raise StepFailed("Keycloak is not running; `make up` starts it")
