"""A restored Keycloak database: what ``zt restore`` leaves for ``make up-ha`` to load.

``zt backup`` archives a ``pg_dump`` as ``config.POSTGRES_PENDING_RESTORE`` and ``zt
restore`` writes it back into the state folder; the next bring-up creates the database
afresh and loads it before the nodes start. This test runs that second half on the live
stack, with the database really gone: dump, stop both nodes, drop the database, then the
bring-up's own steps (``postgres.start``, ``keycloak_cluster.start``). The realm comes
back as dumped — a change made after the dump is lost, as a restore loses it.
"""

from __future__ import annotations

import time
import uuid

from scripts import config
from scripts.files import write_secret
from scripts.services import keycloak_cluster, postgres, procs
from tests.faults.conftest import wait_for
from tests.ha.keycloak_drill import admin_session, cluster_of_two, realm_shape


def test_the_database_is_created_and_loaded_from_the_dump_before_the_nodes_start() -> None:
    assert wait_for(cluster_of_two, 60)
    shape = realm_shape(config.KEYCLOAK_URL)
    write_secret(config.POSTGRES_PENDING_RESTORE, postgres.dump())
    # A change after the dump: a restore must not have it.
    s = admin_session(config.KEYCLOAK_URL)
    name = f"after-dump-{uuid.uuid4().hex[:8]}"
    created = s.post(f"{config.KEYCLOAK_URL}/admin/realms/zerotrust/groups", json={"name": name})
    assert created.status_code == 201
    t0 = time.monotonic()
    for node in reversed(config.KEYCLOAK_NODES):
        procs.stop(node, timeout=keycloak_cluster.STOP_SECONDS)
    postgres.psql(f'DROP DATABASE "{config.POSTGRES_DATABASE}";')
    did = postgres.start()
    assert "database keycloak created" in did
    started = keycloak_cluster.start()
    print(
        f"\nrestore drill: database dropped and recreated ({did}); nodes: {started}; "
        f"Keycloak serving again {time.monotonic() - t0:.1f}s after the stop"
    )
    assert not config.POSTGRES_PENDING_RESTORE.exists(), "the dump was not consumed"
    assert wait_for(cluster_of_two, 60)
    assert realm_shape(config.KEYCLOAK_URL) == shape
    groups = admin_session(config.KEYCLOAK_URL).get(
        f"{config.KEYCLOAK_URL}/admin/realms/zerotrust/groups", params={"search": name}
    )
    assert groups.status_code == 200 and groups.json() == [], "a change after the dump survived"
