"""OpenBao runs for real: initialised, unsealed, persistent, TLS by the server CA."""

from __future__ import annotations

import requests
from requests.exceptions import SSLError

from scripts import config, vault_server


def test_vault_is_initialised_unsealed_and_active(stack):
    h = vault_server.health()
    assert h is not None
    assert h["initialized"] is True
    assert h["sealed"] is False
    assert h["standby"] is False


def test_vault_is_not_in_dev_mode_and_uses_persistent_raft_storage(root_client):
    state = root_client.adapter.get("/v1/sys/config/state/sanitized")["data"]
    assert state["storage"]["type"] == "raft"
    assert state["storage"]["disable_clustering"] is False
    listeners = state["listeners"]
    assert len(listeners) == 1
    assert listeners[0]["config"]["address"] == f"{config.HOST}:{config.VAULT_PORT}"
    assert listeners[0]["config"].get("tls_disable") in (None, False, "false")
    # Dev mode runs on in-memory storage with a well-known root token; a
    # sealed-at-start raft node with keys in .state is the opposite.
    assert config.VAULT_INIT.stat().st_mode & 0o777 == 0o600


def test_vault_tls_verifies_with_the_server_ca(stack):
    r = requests.get(
        f"{config.VAULT_ADDR}/v1/sys/health", verify=str(config.SERVER_CA_BUNDLE), timeout=5
    )
    assert r.status_code == 200


def test_vault_tls_does_not_verify_with_the_client_ca(stack):
    try:
        requests.get(
            f"{config.VAULT_ADDR}/v1/sys/health", verify=str(config.CLIENT_CA_BUNDLE), timeout=5
        )
    except SSLError:
        return
    raise AssertionError("OpenBao's serving cert verified against the CLIENT CA")


def test_vault_refuses_plain_http(stack):
    try:
        r = requests.get(f"http://{config.HOST}:{config.VAULT_PORT}/v1/sys/health", timeout=5)
    except requests.ConnectionError:
        return
    assert r.status_code == 400  # Go's TLS server answers plain HTTP with 400


def test_secrets_in_the_state_folder_are_private(stack):
    secret_files = [config.VAULT_INIT, *config.VAULT_APPROLES.glob("*.json")]
    secret_files += list(config.PKI_DIR.glob("*/*/key.pem"))
    assert len(secret_files) >= 5
    for f in secret_files:
        assert f.stat().st_mode & 0o077 == 0, f"{f} is readable by group/others"
    assert (config.TF_STATE / "pki.tfstate").stat().st_mode & 0o077 == 0
