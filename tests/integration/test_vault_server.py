"""OpenBao runs for real: initialised, unsealed, persistent, TLS by the server CA,
operated without a standing root token, and audited."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import hvac.exceptions
import pytest
import requests
from requests.exceptions import SSLError

from scripts import config, terraform, tools
from scripts.files import read_json
from scripts.services import openbao


def _call(token: str, method: str, path: str, body: dict[str, Any] | None = None) -> int:
    """HTTP status of ``method /v1/<path>`` with ``token``: OpenBao's raw answer."""
    return requests.request(
        method,
        f"{config.VAULT_ADDR}/v1/{path}",
        headers={"X-Vault-Token": token},
        json=body,
        verify=str(config.VAULT_TLS_CA),
        timeout=10,
    ).status_code


def _audit_lines_since(offset: int) -> list[dict[str, Any]]:
    with config.VAULT_AUDIT_LOG.open("rb") as f:
        f.seek(offset)
        return [json.loads(line) for line in f.read().splitlines() if line.strip()]


def _responses(lines: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [x for x in lines if x["type"] == "response" and x["request"]["id"] == request_id]


def test_vault_is_initialised_unsealed_and_active(stack):
    h = openbao.health()
    assert h is not None
    assert h["initialized"] is True
    assert h["sealed"] is False
    assert h["standby"] is False


def test_vault_is_not_in_dev_mode_and_uses_persistent_raft_storage(stack):
    # sys/seal-status is unauthenticated; dev mode would report in-memory storage
    # and a well-known root token. This is a sealed-at-start shamir raft node.
    status = openbao.client().sys.read_seal_status()
    assert status["storage_type"] == "raft"
    assert status["type"] == "shamir"
    assert (status["n"], status["t"]) == (1, 1)
    assert config.VAULT_UNSEAL.stat().st_mode & 0o777 == 0o600


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
    secret_files = [config.VAULT_UNSEAL, config.VAULT_REVOKED_ROOT, config.VAULT_AUDIT_LOG]
    secret_files += [*config.VAULT_APPROLES.glob("*.json")]
    secret_files += list(config.PKI_DIR.glob("*/*/key.pem"))
    assert len(secret_files) >= 8
    for f in secret_files:
        assert f.stat().st_mode & 0o077 == 0, f"{f} is readable by group/others"
    assert (config.TF_STATE / "pki.tfstate").stat().st_mode & 0o077 == 0


# --- no permanent root token -----------------------------------------------------------


def test_the_unseal_key_is_stored_without_any_token_beside_it(stack):
    assert set(read_json(config.VAULT_UNSEAL)) == {"unseal_keys_b64"}
    assert not config.VAULT_INIT.exists()  # the old key + root token file is gone
    assert not config.VAULT_BOOTSTRAP_ROOT.exists()  # the bootstrap is over
    assert not openbao.bootstrap_pending()


def test_the_root_token_from_the_bootstrap_is_refused_after_it(stack):
    root = read_json(config.VAULT_REVOKED_ROOT)["root_token"]
    assert _call(root, "GET", "auth/token/lookup-self") == 403
    assert _call(root, "GET", "sys/mounts") == 403
    assert _call(root, "GET", "sys/policies/acl") == 403


def test_terraform_and_zt_use_the_operator_approle_not_a_root_token(stack, pki_outputs):
    assert pki_outputs["operator_approles"]["terraform"] == config.VAULT_OPERATOR_APPROLE
    token = terraform.pki_env()["VAULT_TOKEN"]
    me = openbao.client(token).auth.token.lookup_self()["data"]
    assert sorted(me["policies"]) == sorted(["default", config.VAULT_OPERATOR_APPROLE])
    assert me["path"] == "auth/approle/login"
    assert me["meta"]["role_name"] == config.VAULT_OPERATOR_APPROLE
    assert 0 < me["ttl"] <= 900  # short-lived, like every AppRole token here


def test_terraform_pki_plans_no_changes_with_the_operator_token(stack):
    changes, text = terraform.plan_has_changes("pki", terraform.pki_env(openbao.operator_token()))
    assert not changes, text[-3000:]


# What terraform/pki does not manage, the operator token may not do: each is a 403
# from OpenBao's ACL. (Each would be recoverable if it ever passed: `make up` unseals,
# SIGHUP re-creates the declared audit device, the rest only adds things.)
OUT_OF_SCOPE: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "seal-openbao": ("PUT", "sys/seal", None),
    "read-raw-storage": ("GET", "sys/raw/core/keyring", None),
    "take-a-raft-snapshot": ("GET", "sys/storage/raft/snapshot", None),
    "read-the-server-configuration": ("GET", "sys/config/state/sanitized", None),
    "rotate-the-encryption-key": ("POST", "sys/rotate", {}),
    "mount-another-secrets-engine": ("POST", "sys/mounts/zt-intruder", {"type": "kv"}),
    "mount-another-pki-engine": ("POST", "sys/mounts/pki_intruder", {"type": "pki"}),
    "enable-another-auth-method": ("POST", "sys/auth/zt-intruder", {"type": "userpass"}),
    "disable-the-audit-device": ("DELETE", f"sys/audit/{config.VAULT_AUDIT_DEVICE}", None),
    "enable-another-audit-device": (
        "POST",
        "sys/audit/zt-intruder",
        {"type": "file", "options": {"file_path": str(config.LOGS / "zt-intruder.log")}},
    ),
    "hash-a-value-with-the-audit-salt": (
        "POST",
        f"sys/audit-hash/{config.VAULT_AUDIT_DEVICE}",
        {"input": "x"},
    ),
    "read-the-root-token-generation": ("GET", "sys/generate-root-token/attempt", None),
    "start-a-root-token-generation": ("POST", "sys/generate-root-token/attempt", {}),
    "write-a-policy-terraform-does-not-manage": (
        "POST",
        "sys/policies/acl/zt-intruder",
        {"policy": 'path "*" { capabilities = ["sudo"] }'},
    ),
    "read-the-default-policy": ("GET", "sys/policies/acl/default", None),
    "create-an-approle-role-terraform-does-not-manage": (
        "POST",
        "auth/approle/role/zt-intruder",
        {"token_policies": config.VAULT_OPERATOR_APPROLE},
    ),
    "create-an-orphan-token": ("POST", "auth/token/create-orphan", {}),
    "list-all-mounts": ("GET", "sys/mounts", None),
    "revoke-every-lease-under-a-prefix": ("POST", "sys/leases/revoke-prefix/auth/approle", {}),
}


@pytest.mark.parametrize("action", OUT_OF_SCOPE)
def test_the_operator_token_may_not(stack, action):
    token = openbao.operator_token()
    method, path, body = OUT_OF_SCOPE[action]
    assert _call(token, method, path, body) == 403


def test_the_operator_token_cannot_make_a_root_token_by_any_child_token(stack):
    token = openbao.operator_token()
    with pytest.raises(hvac.exceptions.InvalidRequest, match="child policies must be subset"):
        openbao.client(token).auth.token.create(policies=["root"])


# --- the audit device ----------------------------------------------------------------


def test_the_audit_device_is_the_declared_file_and_hashes_secrets(operator_client):
    devices = operator_client.sys.list_enabled_audit_devices()["data"]
    assert list(devices) == [f"{config.VAULT_AUDIT_DEVICE}/"]
    device = devices[f"{config.VAULT_AUDIT_DEVICE}/"]
    assert device["type"] == "file"
    assert device["options"]["file_path"] == str(config.VAULT_AUDIT_LOG)
    assert device["options"]["log_raw"] == "false"  # OpenBao's default, kept
    assert config.VAULT_AUDIT_LOG.stat().st_mode & 0o777 == 0o600


def test_zt_status_names_the_audit_device_and_its_file(stack):
    line = openbao.audit_status_line()
    assert f"device {config.VAULT_AUDIT_DEVICE}/ enabled" in line
    assert str(config.VAULT_AUDIT_LOG) in line and "HMAC" in line


def test_an_issuance_and_a_revocation_each_leave_an_audit_line(approle, pki_outputs):
    mount = pki_outputs["mounts"]["client_issuing"]
    role = pki_outputs["client_roles"]["python-client"]
    offset = config.VAULT_AUDIT_LOG.stat().st_size
    issued = approle("client-python-client").secrets.pki.generate_certificate(
        name=role, common_name="python-client", mount_point=mount
    )
    revoked = approle("revoker").write_data(
        f"{mount}/revoke", data={"serial_number": issued["data"]["serial_number"]}
    )
    lines = _audit_lines_since(offset)

    (issue,) = _responses(lines, issued["request_id"])
    assert issue["request"]["path"] == f"{mount}/issue/{role}"
    assert "client-python-client" in issue["auth"]["policies"]
    (revoke,) = _responses(lines, revoked["request_id"])
    assert revoke["request"]["path"] == f"{mount}/revoke"
    assert "revoker" in revoke["auth"]["policies"]

    # Secrets are HMAC'd: the private key OpenBao returned is not in the log.
    assert issue["response"]["data"]["private_key"].startswith("hmac-sha256:")
    key_body = issued["data"]["private_key"].splitlines()[1]
    assert key_body not in config.VAULT_AUDIT_LOG.read_text()[offset:]


# --- break-glass (README, "Break-glass") ----------------------------------------------


def _bao(*args: str, token: str, stdin: str | None = None) -> str:
    env = {
        **os.environ,
        "BAO_ADDR": config.VAULT_ADDR,
        "BAO_CACERT": str(config.VAULT_TLS_CA),
        "BAO_TOKEN": token,
    }
    r = subprocess.run(
        [str(tools.BAO), *args], env=env, input=stdin, capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0, f"bao {' '.join(args[:2])}: {r.stderr}"
    return r.stdout


def test_break_glass_gives_a_root_token_back_that_is_refused_once_revoked(approle, pki_outputs):
    # The README's commands: the break-glass AppRole + the unseal key, OTP-encoded.
    glass = approle(pki_outputs["operator_approles"]["break_glass"]).token
    start = json.loads(_bao("operator", "generate-root", "-init", "-format=json", token=glass))
    root = ""
    try:
        done = json.loads(
            _bao(
                "operator",
                "generate-root",
                f"-nonce={start['nonce']}",
                "-format=json",
                "-",
                token=glass,
                stdin=openbao.unseal_keys()[0],
            )
        )
        assert done["complete"] is True
        root = _bao(
            "operator",
            "generate-root",
            f"-decode={done['encoded_token']}",
            f"-otp={start['otp']}",
            token=glass,
        ).strip()
        offset = config.VAULT_AUDIT_LOG.stat().st_size
        me = openbao.client(root).auth.token.lookup_self()
        assert me["data"]["policies"] == ["root"]
        # Its use is on record, under the root policy.
        (used,) = _responses(_audit_lines_since(offset), me["request_id"])
        assert used["auth"]["policies"] == ["root"]
        # Not even root can add an audit device through the API (declared in the config).
        body = {"type": "file", "options": {"file_path": str(config.LOGS / "zt-intruder.log")}}
        assert _call(root, "POST", "sys/audit/zt-intruder", body) == 400
        _bao("token", "revoke", "-self", token=root)
        assert _call(root, "GET", "auth/token/lookup-self") == 403
    finally:  # never leave an attempt open or a root token alive
        _call(glass, "DELETE", "sys/generate-root-token/attempt")
        if root:
            _call(root, "POST", "auth/token/revoke-self")


def test_the_break_glass_token_alone_can_do_nothing_else(approle, pki_outputs):
    glass = approle(pki_outputs["operator_approles"]["break_glass"]).token
    mount = pki_outputs["mounts"]["client_issuing"]
    assert _call(glass, "GET", "sys/mounts") == 403
    assert _call(glass, "GET", f"{mount}/roles/python-client") == 403
    assert _call(glass, "PUT", "sys/seal") == 403
    assert _call(glass, "GET", "sys/policies/acl/break-glass") == 403
