"""Every service killed outright comes back by itself, under load, within its bound.

For each service in turn: a steady load of python-client requests through nginx (one
token fetched beforehand, so the request path needs Keycloak only for its keys, which
the verifier holds), SIGKILL of the service's main process (the pid its launcher
recorded: gunicorn's master, nginx's master, ``bao``, ``kc.sh``, the CRL watcher), then
nothing but waiting — no ``zt up``. It must be healthy again (``zt status``'s own
check: unsealed, ready, /healthz 200, …) as a new process within
``config.RECOVERY_BOUND_SECONDS[name]``; requests may fail only between the kill and
the recovery (plus a second for requests in flight), and only where the service is on
the request path (verifier, API, nginx). Figures are printed, never asserted as speed.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from scripts import config, status
from scripts.services import openbao, procs, supervisor
from tests.attacks.conftest import cert_of
from tests.faults.conftest import wait_for
from tests.load import Load

# Services a request through the gateway passes: killing one may fail requests for
# as long as it is down. The others must not fail a single request.
ON_REQUEST_PATH = {config.VERIFIER.name, config.API.name, config.NGINX.name}
IN_FLIGHT_SECONDS = 1.0
SETTLE_SECONDS = 3.0  # load kept running after the recovery, to show it holds


def _alive(pids: set[int]) -> list[int]:
    """Which of ``pids`` still run (a zombie nobody reaped has no exe: not running)."""
    return [p for p in pids if os.path.exists(f"/proc/{p}/exe")]


def _healthy_again(svc: config.Service, old_pid: int) -> bool:
    now = status.service_status(svc)
    return now.healthy and now.pid is not None and now.pid != old_pid


@pytest.mark.parametrize(
    "svc",
    [
        config.AUDIT_SINK,
        config.CRL_WATCHER,
        config.RENEWER,
        config.API,
        config.VERIFIER,
        config.NGINX,
        config.VAULT,
        config.KEYCLOAK,
        config.PROMETHEUS,
    ],
    ids=lambda s: s.name,
)
def test_a_service_killed_with_sigkill_is_back_by_itself_within_its_bound(stack, token_for, svc):
    bound = config.RECOVERY_BOUND_SECONDS[svc.name]
    token = token_for("python-client")
    assert status.service_status(svc).healthy, f"{svc.name} is not healthy before the test"
    victim = procs.running(svc)
    assert victim is not None
    load = Load.with_token(
        lambda: token,
        cert_of("python-client"),
        path="/api/resource?fault=supervision",
        seconds=bound + SETTLE_SECONDS + 10,
        threads=3,
        interval=0.02,
    )
    with load:
        time.sleep(1.0)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        back = wait_for(lambda: _healthy_again(svc, victim), bound, interval=0.1)
        recovered = time.monotonic() - killed_at
        time.sleep(SETTLE_SECONDS)
        load.stop()
    window = [t - killed_at for t in load.failed_at]
    print(
        f"\n{svc.name}: SIGKILL of pid {victim}; healthy again after {recovered:.1f}s "
        f"(bound {bound:g}s) as pid {procs.running(svc)}; load: {load.summary()}; "
        f"failures {len(window)}"
        + (f" between +{min(window):.2f}s and +{max(window):.2f}s" if window else "")
    )
    assert back, f"{svc.name} was not healthy again within {bound}s: {status.collect().problems}"
    assert supervisor.state(procs.program(svc)) == "RUNNING"
    assert load.total > 20
    if svc.name in ON_REQUEST_PATH:
        late = [t for t in window if t > recovered + IN_FLIGHT_SECONDS]
        assert not late, f"requests failed after the recovery: {late[:5]} {load.errors[:5]}"
    else:
        assert load.failed == 0, load.errors[:5]
    # Stable afterwards: nothing left behind that keeps failing it.
    assert wait_for(lambda: status.service_status(svc).healthy, 10)
    if svc is config.VAULT:
        assert openbao.health()["sealed"] is False


def test_nginx_killed_takes_its_workers_with_it(stack):
    """An nginx master killed outright leaves workers accepting on the old socket unless
    the launcher sweeps its process group; none may survive it."""
    master = procs.running(config.NGINX)
    assert master is not None
    workers = procs.children(master)
    assert workers
    os.kill(master, signal.SIGKILL)
    assert wait_for(lambda: not _alive(workers), 10), _alive(workers)
    assert wait_for(lambda: _healthy_again(config.NGINX, master), 10)


def test_keycloak_killed_takes_its_java_with_it(stack):
    """kc.sh runs java as its child: killing kc.sh must not leave java holding 8443."""
    launcher_child = procs.running(config.KEYCLOAK)
    assert launcher_child is not None
    java = procs.children(launcher_child)
    assert java, "kc.sh has no child"
    os.kill(launcher_child, signal.SIGKILL)
    assert wait_for(lambda: not _alive(java), 15), _alive(java)
    assert wait_for(
        lambda: _healthy_again(config.KEYCLOAK, launcher_child),
        config.RECOVERY_BOUND_SECONDS["keycloak"],
        interval=0.5,
    )
