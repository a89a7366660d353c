"""`terraform test` of each root, as part of `make test` (plans against mocked providers).

The `.tftest.hcl` files hold the invariants of the configuration itself (issuance
rules, the two-CA separation, variable validation); they need no server, only the
providers `make up` put in the local mirror (`terraform init` done).
"""

from __future__ import annotations

import subprocess

import pytest

from scripts import config, tools

ROOTS_WITH_TESTS = sorted(
    path.parent.parent.name for path in (config.REPO / "terraform").glob("*/tests/*.tftest.hcl")
)


def test_there_are_terraform_tests_to_run():
    assert ROOTS_WITH_TESTS, "no terraform/<root>/tests/*.tftest.hcl found"


@pytest.mark.parametrize("root", ROOTS_WITH_TESTS)
def test_terraform_test_passes(stack, root):
    proc = subprocess.run(
        [str(tools.TERRAFORM), f"-chdir={config.REPO / 'terraform' / root}", "test", "-no-color"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " 0 failed" in proc.stdout
