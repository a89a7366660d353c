"""`terraform test` of every Terraform folder that has tests, as part of `make test`
(plans against mocked providers).

The `.tftest.hcl` files hold the invariants of the configuration itself (issuance
rules, the two-CA separation, realm and client settings, variable validation);
they need no server, only the providers `make up` put in the local mirror.

A folder is tested when it holds `tests/*.tftest.hcl`: the roots
(`terraform/<root>`, initialised by `make up` with their backend) and modules
(`terraform/pki/modules/ca`), which `terraform test` runs as a root of their own
once `terraform init -backend=false` installed their providers from the mirror
(against the module's committed lock file, never rewriting it).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from scripts import config, tools

TERRAFORM_DIR = config.REPO / "terraform"

FOLDERS_WITH_TESTS = sorted(
    {
        path.parent.parent.relative_to(TERRAFORM_DIR).as_posix()
        for path in TERRAFORM_DIR.glob("**/tests/*.tftest.hcl")
        if ".terraform" not in path.parts
    }
)


def _terraform(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tools.TERRAFORM), f"-chdir={folder}", *args, "-no-color"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_there_are_terraform_tests_to_run():
    assert FOLDERS_WITH_TESTS, "no terraform/**/tests/*.tftest.hcl found"


def test_every_test_folder_is_a_terraform_configuration():
    for name in FOLDERS_WITH_TESTS:
        has_config = any((TERRAFORM_DIR / name).glob("*.tf"))
        assert has_config, f"terraform/{name}/tests has no configuration next to it"


@pytest.mark.parametrize("name", FOLDERS_WITH_TESTS)
def test_terraform_test_passes(stack, name):
    folder = TERRAFORM_DIR / name
    is_root = folder.parent == TERRAFORM_DIR
    if not is_root:
        init = _terraform(folder, "init", "-backend=false", "-input=false", "-lockfile=readonly")
        assert init.returncode == 0, init.stdout[-3000:] + init.stderr[-2000:]
    proc = _terraform(folder, "test")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = re.search(r"Success! (\d+) passed, 0 failed", proc.stdout)
    assert summary and int(summary[1]) > 0, proc.stdout[-3000:]
