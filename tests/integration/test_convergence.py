"""`make up` converges the running services on the checkout, and fails loudly when it cannot.

* nothing changed: nothing restarts or reloads (same pids, same workers);
* a tightened policy applies on the next `make up`, by a blue/green replacement of
  the verifier (scripts/services/apps.py), while a load runs with zero failed requests —
  its latency and nginx's auth-hop p99 are printed;
* a policy that does not load is refused with the problem named; the verifier keeps
  serving the policy it had.
"""

from __future__ import annotations

import contextlib
import json
import statistics
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from client.token import TokenSource
from scripts import config
from scripts.services import procs
from tests.integration.conftest import run_zt
from tests.load import Load
from tests.tokens import token_source

SERVICES = (config.VERIFIER, config.API, config.NGINX, config.CRL_WATCHER)


def _tokens(identity: str) -> TokenSource:
    return token_source(identity)


def _cert(identity: str) -> tuple[str, str]:
    cert, key = config.client_cert_paths(identity)
    return str(cert), str(key)


def _status(identity: str, tokens: TokenSource, path: str = "/api/resource") -> int:
    return requests.get(
        f"{config.GATEWAY_URL}{path}",
        cert=_cert(identity),
        headers={"Authorization": f"Bearer {tokens.get()}"},
        verify=str(config.SERVER_CA_BUNDLE),
        timeout=10,
    ).status_code


def _processes() -> dict[str, tuple[int, frozenset[int]]]:
    """Each service's master pid and its workers (not nginx's cache loader: it
    exits by itself about a minute after nginx starts or reloads, whatever we do)."""
    out = {}
    for svc in SERVICES:
        pid = procs.running(svc)
        assert pid is not None, f"{svc.name} is not running"
        workers = {c for c in procs.children(pid) if not _is_cache_loader(c)}
        out[svc.name] = (pid, frozenset(workers))
    return out


def _is_cache_loader(pid: int) -> bool:
    try:
        return b"cache loader" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # gone already: it was the loader (workers do not exit by themselves)


def _auth_times_since(offset: int) -> list[float]:
    with open(config.NGINX_ACCESS_LOG, "rb") as fh:
        fh.seek(offset)
        lines = [json.loads(x) for x in fh.read().splitlines() if x.strip()]
    return [float(x["auth_time"]) for x in lines if x["auth_time"].replace(".", "").isdigit()]


@contextlib.contextmanager
def _policy(edit: Callable[[dict[str, Any]], Any]) -> Iterator[None]:
    """verifier/policy.json edited for the body of a ``with``; restored and applied after."""
    original = config.VERIFIER_POLICY.read_text()
    policy = json.loads(original)
    edit(policy)
    config.VERIFIER_POLICY.write_text(json.dumps(policy, indent=2) + "\n")
    try:
        yield
    finally:
        config.VERIFIER_POLICY.write_text(original)
        restored = run_zt("up", timeout=600)
        assert restored.returncode == 0, restored.stdout[-2000:]


def test_up_with_nothing_changed_restarts_and_reloads_nothing(stack):
    assert run_zt("up", timeout=600).returncode == 0
    before = _processes()
    again = run_zt("up", timeout=600)
    assert again.returncode == 0, again.stdout[-2000:]
    for name in ("verifier", "api", "nginx"):
        assert f"    {name}: unchanged" in again.stdout, again.stdout
    assert _processes() == before


TENANT_READ = "/api/tenants/acme/resource"  # python-client is a viewer of acme


def _require_operator_to_read_tenants(policy: dict[str, Any]) -> None:
    rule = policy["rules"][3]
    assert rule["pattern"] == "/api/tenants/{org}/**" and "GET" in rule["methods"]
    rule["realm_roles"] = ["operator"]


@pytest.mark.slow
def test_a_tightened_policy_applies_on_up_under_load_with_no_failed_request(stack):
    python_client, batch_worker = _tokens("python-client"), _tokens("batch-worker")
    assert _status("python-client", python_client, TENANT_READ) == 200
    offset = config.NGINX_ACCESS_LOG.stat().st_size
    with _policy(_require_operator_to_read_tenants):
        # batch-worker keeps reading /api/resource while the verifier is replaced.
        # Every request is decided by the verifier (no decision-cache hit).
        with Load.with_token(
            batch_worker.get, _cert("batch-worker"), seconds=12, unique=True
        ) as load:
            up = run_zt("up", timeout=600)
        assert up.returncode == 0, up.stdout[-2000:]
        assert "verifier: reloaded (blue/green)" in up.stdout
        # one master serves, through the stable path; the old one's socket is gone
        assert list(config.RUN.glob("verifier-*.sock")) == [config.VERIFIER_SOCKET.resolve()]
        assert _status("python-client", python_client, TENANT_READ) == 403  # no longer
        auth = _auth_times_since(offset)
        auth_p99 = 1000 * statistics.quantiles(auth, n=100)[98] if len(auth) > 1 else 0.0
        print(
            f"\npolicy change applied by `zt up` under load: {load.summary()}; "
            f"nginx auth hop p99 {auth_p99:.1f} ms over {len(auth)} requests"
        )
        assert load.total > 100
        assert load.failed == 0, load.errors[:5]
    assert _status("python-client", python_client, TENANT_READ) == 200  # restored


def test_a_policy_with_a_typo_is_refused_by_name_and_the_old_one_keeps_serving(stack):
    tokens = _tokens("python-client")
    installed = config.INSTALLED_POLICY.read_bytes()
    verifier_before = procs.running(config.VERIFIER)

    def typo(policy: dict[str, Any]) -> None:
        rule = policy["rules"][2]  # /api/admin/**: realm role admin
        rule["realm_role"] = rule.pop("realm_roles")

    with _policy(typo):
        up = run_zt("up", timeout=600)
        assert up.returncode != 0
        assert "realm_role" in up.stdout and str(config.VERIFIER_POLICY) in up.stdout
        assert "Traceback" not in up.stdout + up.stderr
        assert config.INSTALLED_POLICY.read_bytes() == installed
        assert procs.running(config.VERIFIER) == verifier_before
        assert _status("python-client", tokens) == 200
        assert _status("python-client", tokens, "/api/admin/stats") == 403  # not opened


def test_validate_passes_on_the_running_stack(stack):
    r = run_zt("validate", timeout=300)
    assert r.returncode == 0, r.stdout
    for check in ("policy", "verifier settings", "API settings", "nginx", "terraform"):
        assert f"{check}: ok" in r.stdout


def test_validate_lists_every_problem_and_applies_nothing(stack):
    template = config.REPO / "nginx" / "nginx.conf.tmpl"
    original = template.read_text()
    installed = config.INSTALLED_POLICY.read_bytes()

    def typos(policy: dict[str, Any]) -> None:
        policy["rules"][0]["methods"] = ["get"]
        policy["rules"][2]["realm_role"] = policy["rules"][2].pop("realm_roles")

    with _policy(typos):
        template.write_text(original.replace("ssl_verify_depth 2;", "ssl_verify_depth two;"))
        try:
            r = run_zt("validate", timeout=300)
        finally:
            template.write_text(original)
    assert r.returncode == 1
    assert "policy: 2 problem(s)" in r.stdout
    assert "realm_role: unknown key; did you mean realm_roles?" in r.stdout
    assert "'get' is not a method" in r.stdout
    assert "nginx: 1 problem(s)" in r.stdout and "ssl_verify_depth" in r.stdout
    assert config.INSTALLED_POLICY.read_bytes() == installed
