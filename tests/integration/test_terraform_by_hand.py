"""`terraform apply` by hand — one of the three things users do — is safe at any moment.

Every hand-run command here is README's, verbatim, in a fresh bash that sources
`.state/env.sh` and inherits no Terraform or OpenBao variable from the test process:

* after each `zt` command that changes state (up, rotate, renew, revoke, client-CA
  rollover begin and finish) both roots plan **No changes**;
* a workload added to the shared identities file and applied by hand to both roots
  gets its certificate at the next `zt up` and works end to end; removed again, its
  certificate is revoked and its files are gone.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import requests

from scripts import config
from scripts.pki import certs
from tests.integration.conftest import run_zt
from tests.pki_helpers import issue_throwaway
from tests.tokens import gateway_client

README = config.REPO / "README.md"
IDENTITIES = config.REPO / "terraform" / "shared" / "identities.auto.tfvars"
NEW_WORKLOAD = "report-builder"


def readme_commands() -> list[str]:
    block = README.read_text().split("<!-- terraform-by-hand -->")[1]
    lines = block.split("```sh")[1].split("```")[0].strip().splitlines()
    assert lines[0] == ". .state/env.sh"
    return lines[1:]


def by_hand(*commands: str) -> subprocess.CompletedProcess[str]:
    """``. .state/env.sh`` then ``commands`` in a fresh bash, as a user types them."""
    inherited = ("TF_", "VAULT_", "BAO_", "ZT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    script = " && ".join([". .state/env.sh", *commands])
    return subprocess.run(
        ["bash", "-c", script],
        cwd=config.REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_no_changes(after: str) -> None:
    for command in readme_commands():
        plan = by_hand(command)
        assert plan.returncode == 0, f"after {after}: {command}\n{plan.stderr[-3000:]}"
        assert "No changes." in plan.stdout, f"after {after}: {command}\n{plan.stdout[-4000:]}"


def _zt(*args: str) -> None:
    r = run_zt(*args, timeout=600)
    assert r.returncode == 0, f"zt {' '.join(args)}:\n{r.stdout[-3000:]}{r.stderr[-2000:]}"


def test_readme_names_a_plan_of_each_root():
    assert readme_commands() == [
        "terraform -chdir=terraform/pki plan",
        "terraform -chdir=terraform/identity plan",
    ]


@pytest.mark.slow
def test_a_plan_by_hand_shows_no_changes_after_every_zt_command(stack, tmp_path):
    throwaway = issue_throwaway(tmp_path)
    steps = [
        ("up", ("up",)),
        ("rotate client", ("rotate", "client", "python-client")),
        ("rotate server", ("rotate", "server", "nginx")),
        ("renew", ("renew",)),
        ("revoke", ("revoke", throwaway.serial)),
        ("rollover-client-ca begin", ("rollover-client-ca", "begin")),
        ("rollover-client-ca finish", ("rollover-client-ca", "finish")),
    ]
    for name, args in steps:
        _zt(*args)
        assert_no_changes(name)


APPLY_BOTH = (
    "terraform -chdir=terraform/pki apply -auto-approve",
    "terraform -chdir=terraform/identity apply -auto-approve",
)


def _with_new_workload(original: str) -> str:
    entry = (
        f'  "{NEW_WORKLOAD}" = {{\n    realm_roles  = ["viewer"]\n    client_roles = ["read"]\n'
        '    org          = "acme"\n    department   = "finance"\n  }\n}\n'
    )
    assert original.rstrip().endswith("}")
    return original.rstrip()[:-1] + entry


def _call_as(identity: str) -> requests.Response:
    """The workload's call: its certificate, and a token it got with it."""
    return gateway_client(identity).request("GET", "/api/resource")


@pytest.mark.slow
def test_a_workload_added_by_hand_works_end_to_end_and_removed_is_revoked(stack):
    original = IDENTITIES.read_text()
    IDENTITIES.write_text(_with_new_workload(original))
    try:
        applied = by_hand(*APPLY_BOTH)
        assert applied.returncode == 0, applied.stdout[-2000:] + applied.stderr[-3000:]
        _zt("up")  # issues its certificate; the demo call still passes
        cert_file, _ = config.client_cert_paths(NEW_WORKLOAD)
        assert certs.load(cert_file).subject.rfc4514_string() == f"CN={NEW_WORKLOAD}"
        r = _call_as(NEW_WORKLOAD)
        assert r.status_code == 200, r.text
        assert json.loads(r.text)["azp"] == NEW_WORKLOAD
        assert_no_changes("adding a workload by hand")
        serial = certs.serial_hex(certs.load(cert_file))
    finally:
        IDENTITIES.write_text(original)
    removed = by_hand(*APPLY_BOTH)
    assert removed.returncode == 0, removed.stderr[-3000:]
    _zt("up")  # revokes the removed workload's certificate, removes its files
    assert not cert_file.parent.exists()
    assert not (config.WORKLOAD_PROFILES / f"{NEW_WORKLOAD}.json").exists()
    mount = certs.pki_outputs()["mounts"]["client_issuing"]
    answer = requests.get(
        f"{config.VAULT_ADDR}/v1/{mount}/cert/{serial}",
        verify=str(config.VAULT_TLS_CA),
        timeout=10,
    )
    assert answer.json()["data"]["revocation_time"] > 0
    assert_no_changes("removing it by hand")
