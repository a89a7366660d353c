"""Session fixtures for tests against the real stack (OpenBao, Terraform, ...).

`make test` runs `make up` first; when pytest is run directly we bring the
stack up ourselves (idempotent), and never skip: a real-server test that
cannot reach its server fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import hvac
import pytest

from scripts import cli, config
from scripts.pki import certs
from scripts.services import openbao
from tests.lockout_profile import lockout_off


@pytest.fixture(scope="session")
def stack() -> Iterator[None]:
    h = openbao.health()
    if h is None or h.get("sealed") or not config.PKI_OUTPUTS.exists():
        assert cli.main(["up"]) == 0, "`python -m scripts.zt up` failed; see its output above"
    with lockout_off():  # tests send bad tokens on purpose (tests/lockout_profile.py)
        yield


@pytest.fixture(scope="session")
def pki_outputs(stack: None) -> dict:
    return json.loads(config.PKI_OUTPUTS.read_text())


@pytest.fixture
def operator_client(stack: None) -> hvac.Client:
    """The operator AppRole (terraform/pki operator.tf), the scoped token Terraform
    applies with; there is no root token. Tests use it to inspect, never to issue."""
    return certs.approle_client(config.VAULT_OPERATOR_APPROLE)


@pytest.fixture
def approle(stack: None):
    """Log in as one of the least-privilege AppRoles by name."""
    return certs.approle_client


def run_zt(*args: str, env: dict[str, str] | None = None, timeout: int = 600):
    """Run `python -m scripts.zt ARGS` as a user would; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "scripts.zt", *args],
        cwd=config.REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
