"""Terraform for the stack: its two roots, their environments and outputs.

python-terraform (the package the user named) builds every command line: the
flags (`-input=false -no-color`, `-auto-approve`, `-backend-config`, `-detailed-exitcode`,
`-json`) and `-var-file`s. We run that command ourselves (``_Runner.cmd``, the one
method every subcommand goes through) with its environment and umask given per call,
so nothing changes this process's ``os.environ`` or umask. python-terraform 0.10
predates Terraform 1.x; its one incompatibility (a positional plan directory,
removed in 0.15) is avoided by always setting ``working_dir``.

The environment of each root is built here and nowhere else: the bring-up, ``zt``
commands that apply, and ``.state/env.sh`` for Terraform by hand all read
``pki_env()`` and ``identity_env()``, so a hand-run plan sees exactly what was applied.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from python_terraform import IsFlagged, Terraform

from scripts import config, tools
from scripts.files import write_atomic, write_secret_json
from scripts.pki import certs, lifetimes
from scripts.services import baonodes, keycloak, openbao
from scripts.steps import StepFailed, say

ROOTS = {
    "pki": config.REPO / "terraform" / "pki",
    "identity": config.REPO / "terraform" / "identity",
}
# What a Terraform run must not inherit from the shell that started `zt`: its own
# variables come from pki_env()/identity_env() only.
NOT_INHERITED = ("TF_VAR_", "VAULT_", "BAO_")


def state_path(root: str) -> Path:
    return config.TF_STATE / f"{root}.tfstate"


class _Runner(Terraform):
    """python-terraform's command builder, run with ``env`` and umask 077 (state files
    and temporary var files hold secrets)."""

    def __init__(self, root: str, env: Mapping[str, str]) -> None:
        super().__init__(working_dir=str(ROOTS[root]), terraform_bin_path=str(tools.TERRAFORM))
        self._env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(NOT_INHERITED)},
            **env,
        }

    def cmd(self, cmd: str, *args: Any, **kwargs: Any) -> tuple[int, str, str]:
        for option in ("capture_output", "raise_on_error", "synchronous"):
            kwargs.pop(option, None)
        argv = self.generate_cmd_string(cmd, *args, **kwargs)
        try:
            proc = subprocess.run(
                argv,
                cwd=self.working_dir,
                env=self._env,
                capture_output=True,
                text=True,
                umask=0o077,
            )
        finally:
            self.temp_var_files.clean_up()
        return proc.returncode, proc.stdout, proc.stderr


def _check(rc: int | None, out: str | None, err: str | None, what: str) -> None:
    if rc not in (0, None):
        detail = (err or out or "").strip()
        raise StepFailed(f"terraform {what} failed (exit {rc}).\n{detail[-3000:]}")


def init(root: str, env: Mapping[str, str]) -> None:
    config.TF_STATE.mkdir(parents=True, exist_ok=True, mode=0o700)
    rc, out, err = _Runner(root, env).init(
        backend_config={"path": str(state_path(root))},
        reconfigure=IsFlagged,
    )
    _check(rc, out, err, f"-chdir={ROOTS[root]} init")


# Lines of `terraform apply` worth showing: what changed and the summary
# (the full plan, with every CA certificate in the outputs, is noise here).
_SHOWN = (
    "Creating...",
    "Creation complete",
    "Modifying...",
    "Modifications complete",
    "Destroying...",
    "Destruction complete",
    "Apply complete!",
    "No changes.",
    "Warning:",
)


def apply(root: str, env: Mapping[str, str]) -> None:
    """`terraform apply -auto-approve`; prints resource actions and the summary."""
    rc, out, err = _Runner(root, env).apply(skip_plan=True)
    _check(rc, out, err, f"-chdir={ROOTS[root]} apply")
    for line in (out or "").splitlines():
        if any(marker in line for marker in _SHOWN):
            print(f"    {line.strip()}", flush=True)


def plan_has_changes(root: str, env: Mapping[str, str]) -> tuple[bool, str]:
    """`terraform plan -detailed-exitcode`: (changes pending?, plan text)."""
    rc, out, err = _Runner(root, env).plan(detailed_exitcode=IsFlagged)
    if rc not in (0, 2):
        _check(rc, out, err, f"-chdir={ROOTS[root]} plan")
    return rc == 2, out or ""


def outputs(root: str, env: Mapping[str, str]) -> dict[str, Any]:
    """All outputs (sensitive ones included) as plain values."""
    rc, out, err = _Runner(root, env).output_cmd(json=IsFlagged)
    _check(rc, out, err, f"-chdir={ROOTS[root]} output")
    return {k: v["value"] for k, v in json.loads(out).items()}


# --- each root's environment and outputs -------------------------------------------


def client_ca_generations() -> str:
    """JSON list for TF_VAR_client_issuing_generations (see `rollover-client-ca`)."""
    if config.CLIENT_CA_GENERATIONS.exists():
        return config.CLIENT_CA_GENERATIONS.read_text()
    return '["1"]'


def pki_env(token: str | None = None, profile: lifetimes.Lifetimes | None = None) -> dict[str, str]:
    """Environment for terraform/pki: ``token``, else the operator AppRole's token (the
    root token from init only until the bootstrap apply is done), OpenBao's CA, and the
    lifetimes ``profile`` (default: what the state folder keeps, ``zt lifetimes``)."""
    return {
        **lifetimes.tf_vars(profile if profile is not None else lifetimes.load()),
        "TF_VAR_client_issuing_generations": client_ca_generations(),
        "TF_VAR_operator_approle": config.VAULT_OPERATOR_APPROLE,
        "VAULT_TOKEN": token or openbao.terraform_token(),
        "TF_VAR_vault_address": config.VAULT_ADDR,
        "TF_VAR_vault_ca_cert_file": str(config.VAULT_TLS_CA),
        "TF_IN_AUTOMATION": "1",
        **baonodes.terraform_env(),  # HA: the provider retries a sealed or leaderless node
    }


def export_pki_outputs() -> None:
    """Write CA bundles, non-secret outputs and AppRole credentials to the state folder.

    After the bootstrap apply, hand over: a plan as the operator AppRole (just written)
    must show no changes, then the root token from init is revoked. Until that plan
    passes, the root token stays, so a broken operator policy never locks us out."""
    out = outputs("pki", {"TF_IN_AUTOMATION": "1"})  # reads the state: no token needed
    write_atomic(config.SERVER_CA_BUNDLE, out["server_ca_bundle_pem"])
    write_atomic(config.CLIENT_CA_BUNDLE, out["client_ca_bundle_pem"])
    write_atomic(config.CLIENT_ISSUING_CA, out["client_issuing_ca_pem"])
    write_atomic(config.CLIENT_ROOT_CA, out["client_root_ca_pem"])
    keys = ("mounts", "server_role", "client_roles", "ca_serials", "operator_approles")
    public = {k: out[k] for k in keys}
    write_secret_json(config.PKI_OUTPUTS, public)  # not secret, but nobody else needs it
    for name, creds in out["approle_credentials"].items():
        write_secret_json(config.VAULT_APPROLES / f"{name}.json", creds)
    if openbao.bootstrap_pending():
        changes, plan = plan_has_changes("pki", pki_env(openbao.operator_token()))
        if changes:
            raise StepFailed(
                "terraform/pki plans changes as the operator AppRole right after the bootstrap "
                f"apply; the root token is kept ({config.VAULT_BOOTSTRAP_ROOT}).\n{plan[-3000:]}"
            )
        openbao.revoke_bootstrap_root()
        say(
            f"    root token revoked; terraform/pki applies as the "
            f"{config.VAULT_OPERATOR_APPROLE} AppRole from now on"
        )


def identity_env() -> dict[str, str]:
    """Environment for terraform/identity: bootstrap admin + the server CA to trust."""
    admin = keycloak.admin_credentials()
    return {
        "TF_VAR_keycloak_url": config.KEYCLOAK_URL,
        "TF_VAR_keycloak_admin_username": admin["username"],
        "TF_VAR_keycloak_admin_password": admin["password"],
        "TF_VAR_server_ca_bundle_file": str(config.SERVER_CA_BUNDLE),
        "TF_VAR_disabled_workloads": json.dumps(disabled_workloads()),
        "TF_IN_AUTOMATION": "1",
    }


def disabled_workloads() -> list[str]:
    """terraform/identity's disabled_workloads, as the state folder keeps it."""
    if config.DISABLED_WORKLOADS.exists():
        return sorted(json.loads(config.DISABLED_WORKLOADS.read_text()))
    return []


def set_workload_enabled(identity: str, enabled: bool) -> None:
    """Enable or disable ``identity``'s Keycloak client through terraform/identity."""
    known = certs.pki_outputs()["client_roles"]
    if identity not in known:
        raise StepFailed(f"unknown workload identity {identity!r}; known: {', '.join(known)}")
    disabled = set(disabled_workloads())
    disabled = disabled - {identity} if enabled else disabled | {identity}
    write_atomic(config.DISABLED_WORKLOADS, json.dumps(sorted(disabled)) + "\n")
    apply("identity", identity_env())


def export_identity_outputs() -> None:
    """terraform/identity's outputs (none secret) to the state folder; the client
    secrets an older stack kept there are deleted (workloads authenticate with
    their certificate: no secret exists)."""
    write_secret_json(config.IDENTITY_OUTPUTS, outputs("identity", identity_env()))
    if config.LEGACY_CLIENT_SECRETS.exists():
        shutil.rmtree(config.LEGACY_CLIENT_SECRETS)
        say(f"    {config.LEGACY_CLIENT_SECRETS}: client secrets of an older stack deleted")
    backup = state_path("identity").with_suffix(".tfstate.backup")
    if backup.exists() and _holds_client_secret(json.loads(backup.read_text())):
        backup.unlink()
        say(f"    {backup.name}: held client secrets (before the move to certificates); deleted")


def _holds_client_secret(state: dict[str, Any]) -> bool:
    """True if a Terraform state has a ``keycloak_openid_client`` with a client secret."""
    return any(
        instance.get("attributes", {}).get("client_secret")
        for resource in state.get("resources", [])
        if resource.get("type") == "keycloak_openid_client"
        for instance in resource.get("instances", [])
    )


def hand_env() -> dict[str, str]:
    """What Terraform gets from the bring-up, for running it by hand: the same variables
    (both roots), so a hand-run plan sees exactly what `make up` applied. Holds the
    scoped OpenBao token and the Keycloak admin password: printed only for `eval`."""
    env = {**pki_env(), **identity_env()}
    env.pop("TF_IN_AUTOMATION", None)
    return env


def write_env_file() -> None:
    """``.state/env.sh``: tools and addresses, plus one ``eval`` that asks ``zt env
    --credentials`` for everything that changes or is secret, each time it is sourced
    (so it is never stale after a rollover, and holds no secret itself)."""
    text = (
        f"# Source me: `. {config.STATE.name}/env.sh` — tools, addresses and credentials to run\n"
        "# terraform and bao by hand as `make up` runs them, e.g.\n"
        "#   terraform -chdir=terraform/pki plan\n"
        "#   terraform -chdir=terraform/identity plan\n"
        "# Secrets (a short-lived scoped OpenBao token, the Keycloak admin password) and\n"
        "# values that change (CA generations, disabled workloads) are read from the state\n"
        "# folder each time this file is sourced; none is written here.\n"
        f'export ZT_PROFILE="{config.PROFILE}"  # which stack `zt` and the lines below mean\n'
        f'export PATH="{config.BIN}:$PATH"\n'
        f'export TF_CLI_CONFIG_FILE="{tools.TERRAFORM_RC}"\n'
        f'export VAULT_ADDR="{config.VAULT_ADDR}"\n'
        f'export BAO_ADDR="{config.VAULT_ADDR}"\n'
        f'export VAULT_CACERT="{config.VAULT_TLS_CA}"\n'
        f'export BAO_CACERT="{config.VAULT_TLS_CA}"\n'
        f'eval "$(cd {shlex.quote(str(config.REPO))} && .venv/bin/python -m scripts.zt env '
        '--credentials)"\n'
    )
    write_atomic(config.ENV_FILE, text)
