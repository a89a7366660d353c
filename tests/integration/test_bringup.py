"""`make up` / `make down` behave: idempotent, restart-safe, fail fast and clearly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts import cli, config, status, terraform, tools
from scripts.services import openbao, procs, supervisor
from tests.integration.conftest import run_zt

REPO = config.REPO


def _zt(*args: str, env: dict[str, str] | None = None, timeout: int = 600):
    return run_zt(*args, env=env, timeout=timeout)


def _ca_serials() -> dict:
    return json.loads(config.PKI_OUTPUTS.read_text())["ca_serials"]


def test_up_is_idempotent_and_changes_nothing(stack):
    before = _ca_serials()
    r = _zt("up")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "cached:" in r.stdout  # providers come from the cache on a re-run
    assert "No changes." in r.stdout or "0 added, 0 changed, 0 destroyed" in r.stdout
    assert _ca_serials() == before


def test_every_step_prints_its_duration(stack):
    r = _zt("up")
    steps = [line for line in r.stdout.splitlines() if line.startswith("==> ")]
    durations = [line for line in r.stdout.splitlines() if line.strip().startswith("done in ")]
    assert len(steps) >= 8
    assert len(durations) == len(steps) - 1  # the last "==>" line is the summary


def test_vault_restart_keeps_the_cas_and_unseals_from_the_state_folder(stack):
    before = _ca_serials()
    served_before = openbao.client().read(
        f"{json.loads(config.PKI_OUTPUTS.read_text())['mounts']['client_issuing']}/cert/ca"
    )["data"]["certificate"]
    r = _zt("down")
    assert r.returncode == 0, r.stdout + r.stderr
    assert procs.running(config.VAULT) is None
    assert not procs.port_in_use(config.VAULT_PORT), "make down left OpenBao listening"
    r = _zt("up")
    assert r.returncode == 0, r.stdout + r.stderr
    assert _ca_serials() == before
    served_after = openbao.client().read(
        f"{json.loads(config.PKI_OUTPUTS.read_text())['mounts']['client_issuing']}/cert/ca"
    )["data"]["certificate"]
    assert served_after == served_before


def test_up_recovers_after_supervisord_itself_was_killed(stack):
    """Its services keep running unsupervised; `zt up` starts a new supervisord, stops
    them by pid file and starts them under it (nothing left over, all healthy)."""
    old = supervisor.pid()
    assert old is not None
    before = {svc.name: procs.running(svc) for svc in config.SERVICES}
    os.kill(old, signal.SIGKILL)
    r = _zt("up")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "was running unsupervised" in r.stdout
    assert supervisor.pid() not in (None, old)
    for svc in config.SERVICES:
        pid = before[svc.name]
        assert procs.running(svc) not in (None, pid), svc.name
        assert not os.path.exists(f"/proc/{pid}/exe"), f"{svc.name} pid {pid} still runs"
    assert set(supervisor.names()) == {procs.program(svc) for svc in config.SERVICES}
    assert status.collect().healthy, status.collect().problems


def test_up_starts_the_verifier_when_no_crl_is_installed_yet(stack):
    """A fresh state folder has no client CRL until the bring-up installs one, and the
    verifier's start waits for a /healthz that needs it: the CRL comes first."""
    assert procs.stop(config.VERIFIER)
    config.CLIENT_CRL.unlink()
    r = _zt("up")
    assert r.returncode == 0, r.stdout[-2000:]
    assert config.CLIENT_CRL.exists()
    lines = r.stdout.splitlines()
    crl_step = next(i for i, line in enumerate(lines) if line.startswith("==> Client CRLs"))
    verifier_step = next(i for i, line in enumerate(lines) if line.startswith("==> verifier"))
    assert crl_step < verifier_step


def test_up_of_a_second_stack_is_refused_naming_the_running_one(stack, tmp_path):
    # A second state folder while the stack runs: its ports are taken, so bring-up
    # must stop at once, say which stack runs and how to stop it, and start nothing.
    # (A port held by anything else: test_require_free_port_names_the_port_of_any_listener.)
    t0 = time.monotonic()
    env = {"ZT_STATE": str(tmp_path / "state")}
    try:
        r = _zt("up", env=env, timeout=120)
        assert r.returncode != 0
        assert f"a stack of the 'single' profile is running from {config.STATE}" in r.stdout
        assert "Stop it first: `make down`" in r.stdout
        assert time.monotonic() - t0 < 60
    finally:
        # The failed bring-up started a supervisord for that state folder: `down` stops it.
        down = _zt("down", env=env, timeout=120)
    assert down.returncode == 0, down.stdout
    leftover = tmp_path / "state" / "run" / "supervisord.pid"
    assert not leftover.exists(), "a supervisord of the failed bring-up is still running"


def test_require_free_port_names_the_port_of_any_listener():
    with socket.socket() as s:
        s.bind((config.HOST, 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(Exception, match=f"{config.HOST}:{port}.*already in use"):
            procs.require_free_port(port, "probe")


def test_failed_provider_download_names_module_and_registry_and_leaves_cache_clean(tmp_path):
    cache = tmp_path / "cache"
    code = (
        "from pathlib import Path\n"
        "from scripts import tools\n"
        "tools.go_install('github.com/zerotrust-gateway/no-such-module', 'v0.0.1',"
        f" Path({str(cache / 'dest')!r}), 'x')\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "ZT_CACHE": str(cache)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode != 0
    assert "github.com/zerotrust-gateway/no-such-module@v0.0.1" in r.stderr
    assert "Go module proxy" in r.stderr
    leftovers = [p.name for p in cache.iterdir()] if cache.exists() else []
    assert not [n for n in leftovers if n.startswith(".build-")]
    assert not (cache / "dest" / "x").exists()


def test_down_stops_everything_it_started_and_nothing_else(stack):
    sentinel = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = {svc.name: procs.running(svc) for svc in config.SERVICES}
        keeper = supervisor.pid()
        assert cli.main(["down"]) == 0
        for svc in config.SERVICES:
            assert procs.running(svc) is None, svc.name
            assert not os.path.exists(f"/proc/{started[svc.name]}/exe"), svc.name
        assert supervisor.pid() is None
        assert not os.path.exists(f"/proc/{keeper}/exe"), "supervisord still runs"
        for port in (config.VAULT_PORT, config.KEYCLOAK_PORT, config.NGINX_PORT):
            assert not procs.port_in_use(port), port
        assert sentinel.poll() is None  # a process we did not start is untouched
    finally:
        sentinel.kill()
        sentinel.wait()
        assert cli.main(["up"]) == 0


@pytest.mark.parametrize("root", ["pki", "identity"])
def test_terraform_root_is_formatted_valid_and_has_no_pending_changes(stack, root):
    tf_bin = str(tools.TERRAFORM)
    fmt = subprocess.run(
        [tf_bin, "fmt", "-check", "-recursive", str(terraform.ROOTS[root])],
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, f"terraform fmt would change: {fmt.stdout}"
    val = subprocess.run(
        [tf_bin, f"-chdir={terraform.ROOTS[root]}", "validate", "-no-color"],
        capture_output=True,
        text=True,
    )
    assert val.returncode == 0, val.stdout + val.stderr
    env = terraform.pki_env() if root == "pki" else terraform.identity_env()
    changes, text = terraform.plan_has_changes(root, env)
    assert not changes, text


@pytest.mark.parametrize(
    ("root", "version"),
    [("pki", config.VAULT_PROVIDER_VERSION), ("identity", config.KEYCLOAK_PROVIDER_VERSION)],
)
def test_lock_file_is_committed_and_pins_the_mirror_build(stack, root, version):
    rel = f"terraform/{root}/.terraform.lock.hcl"
    lock = Path(REPO, rel).read_text()
    assert f'version     = "{version}"' in lock
    assert "h1:" in lock
    tracked = subprocess.run(["git", "ls-files", rel], cwd=REPO, capture_output=True, text=True)
    assert tracked.stdout.strip() == rel
