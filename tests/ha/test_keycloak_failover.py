"""Keycloak's failure drills in the HA profile, each under a steady load through nginx.

The load: python-client workloads fetching a fresh token every few requests through the
edge (tests/ha/keycloak_drill.py) while calling the API, and python-client's certificate
rotated during the run (``zt rotate client python-client``: the next tokens are bound to
the new certificate). Each drill prints its figures: API requests sent and failed, token
fetches and failed tries, seconds until the part is back. Timings are printed, never
asserted beyond the recovery bounds of ``config.RECOVERY_BOUND_SECONDS``.
"""

from __future__ import annotations

import os
import signal
import time

from scripts import config
from scripts.pki import rotation
from scripts.services import keycloak_cluster, postgres, procs
from tests.faults.conftest import wait_for
from tests.ha.keycloak_drill import Workload, cluster_of_two, jwks_kids, realm_shape
from tests.load import Load

THREADS = 3
INTERVAL = 0.05
WARM_SECONDS = 3.0
SETTLE_SECONDS = 5.0
IN_FLIGHT_SECONDS = 1.0
REJOIN_SECONDS = 60.0  # after the restarted node is ready, until both list two members
TOKENS_BACK_SECONDS = 90.0  # after PostgreSQL is back, until a token fetch works again


def _load(workload: Workload, drill: str, seconds: float) -> Load:
    return Load(
        workload.sender,
        path=f"/api/resource?drill={drill}",
        seconds=seconds,
        threads=THREADS,
        interval=INTERVAL,
    )


def test_a_killed_keycloak_node_costs_no_request_and_rejoins_by_itself() -> None:
    assert wait_for(cluster_of_two, 60), "the two nodes are not one cluster before the drill"
    node, survivor = config.KEYCLOAK_NODES
    bound = config.RECOVERY_BOUND_SECONDS[node.name]
    victim = procs.running(node)
    assert victim is not None
    kids = jwks_kids()
    survivor_views = len(keycloak_cluster.view_lines(survivor))
    workload = Workload()
    load = _load(workload, "keycloak-node", bound + REJOIN_SECONDS + 60)
    with load:
        time.sleep(WARM_SECONDS)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        time.sleep(2.0)
        rotated = rotation.rotate_client("python-client")  # while one node is down
        rotated_at = time.monotonic() - killed_at
        back = wait_for(
            lambda: procs.running(node) not in (None, victim) and keycloak_cluster.ready(node),
            bound,
            interval=0.5,
        )
        ready_after = time.monotonic() - killed_at
        down_fetches = workload.fetched_between(killed_at, time.monotonic())
        rejoined = wait_for(cluster_of_two, REJOIN_SECONDS, interval=0.5)
        rejoin_after = time.monotonic() - killed_at
        time.sleep(SETTLE_SECONDS)
        load.stop()
    print(
        f"\nkeycloak node drill: SIGKILL of {node.name} (pid {victim}); python-client rotated "
        f"at +{rotated_at:.1f}s ({rotated.new_serial}); {node.name} ready again after "
        f"{ready_after:.1f}s (bound {bound:g}s), both nodes in one view after "
        f"{rejoin_after:.1f}s; tokens fetched through {survivor.name} meanwhile: "
        f"{down_fetches}; {workload.summary(killed_at)}; API load: {load.summary()}; "
        f"failed API requests: {load.failed}"
    )
    assert back, f"{node.name} was not ready again within {bound}s"
    assert rejoined, [keycloak_cluster.view_lines(n)[-1:] for n in config.KEYCLOAK_NODES]
    assert len(keycloak_cluster.view_lines(survivor)) >= survivor_views + 2  # left, rejoined
    assert down_fetches > 0, "no token was fetched while a node was down"
    assert load.total > 20
    assert load.failed == 0, load.errors[:5]
    assert jwks_kids() == kids  # the verifier's JWKS, through the edge, unchanged


def test_postgres_killed_keycloak_recovers_by_itself_and_the_realm_is_intact() -> None:
    assert wait_for(cluster_of_two, 60), "the two nodes are not one cluster before the drill"
    bound = config.RECOVERY_BOUND_SECONDS[config.POSTGRES.name]
    shape = realm_shape(config.KEYCLOAK_URL)
    victim = procs.running(config.POSTGRES)
    assert victim is not None
    workload = Workload()
    load = _load(workload, "postgres", bound + TOKENS_BACK_SECONDS + 60)
    with load:
        time.sleep(WARM_SECONDS)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        back = wait_for(
            lambda: procs.running(config.POSTGRES) not in (None, victim) and postgres.ready(),
            bound,
            interval=0.2,
        )
        pg_after = time.monotonic() - killed_at
        fetched = len(workload.fetched_at)
        tokens_back = wait_for(lambda: len(workload.fetched_at) > fetched, TOKENS_BACK_SECONDS)
        tokens_after = time.monotonic() - killed_at
        rotated = rotation.rotate_client("python-client")  # once tokens are issued again
        time.sleep(SETTLE_SECONDS)
        load.stop()
    failed_tries = [t - killed_at for t, _ in workload.failed_fetches]
    print(
        f"\npostgres drill: SIGKILL of postgres (pid {victim}); accepting again after "
        f"{pg_after:.1f}s (bound {bound:g}s); first token after it {tokens_after:.1f}s after "
        f"the kill; python-client rotated then ({rotated.new_serial}); "
        f"{workload.summary(killed_at)}; API load: {load.summary()}; "
        f"failed API requests: {load.failed}"
    )
    assert back, f"PostgreSQL was not accepting again within {bound}s"
    assert tokens_back, f"no token within {TOKENS_BACK_SECONDS}s of PostgreSQL's return"
    late = [t for t in failed_tries if t > tokens_after + IN_FLIGHT_SECONDS]
    assert not late, f"token fetches failed after Keycloak recovered: {workload.failed_fetches}"
    assert load.total > 20
    assert load.failed == 0, load.errors[:5]
    assert wait_for(cluster_of_two, 60)
    for node in config.KEYCLOAK_NODES:  # the realm, read through each node: unchanged
        assert realm_shape(keycloak_cluster.url(node)) == shape
