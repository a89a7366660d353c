"""The HA profile's Keycloak is one cluster of two nodes on PostgreSQL, and its database is
backed up with pg_dump while both nodes serve."""

from __future__ import annotations

import stat
import subprocess
import tarfile
import uuid
from pathlib import Path

import requests

from scripts import backup, config
from scripts.pki import rotation
from scripts.services import keycloak_cluster, postgres, procs, prometheus
from tests.faults.conftest import wait_for
from tests.ha.keycloak_drill import admin_session, cluster_of_two, realm_shape


def test_both_nodes_are_ready_and_their_logs_show_a_two_member_view() -> None:
    assert wait_for(cluster_of_two, 60), {
        n.name: keycloak_cluster.view_lines(n)[-1:] for n in config.KEYCLOAK_NODES
    }


def test_each_node_runs_on_postgres_clustered_over_loopback() -> None:
    nodes = zip(config.KEYCLOAK_NODES, config.KEYCLOAK_NODE_PORTS, strict=True)
    for node, (_, _, cluster) in nodes:
        pid = procs.running(node)
        assert pid is not None
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        assert f"--db-url={postgres.jdbc_url()}" in args
        assert "--cache=ispn" in args and "--cache-stack=jdbc-ping" in args
        assert f"--cache-embedded-network-bind-address={config.HOST}" in args
        assert f"--cache-embedded-network-bind-port={cluster}" in args
        assert not any("password" in a.lower() and "=" in a for a in args), "a secret in argv"
        assert procs.port_in_use(cluster)
    assert not (config.KEYCLOAK_DIR / "db").exists(), "an H2 database in the HA profile"
    assert postgres.psql("SELECT count(*) FROM realm WHERE name = 'zerotrust';", "keycloak") == "1"
    # JGroups' JDBC_PING2 table: both nodes announced themselves in the database
    assert int(postgres.psql("SELECT count(*) FROM jgroups_ping;", "keycloak")) >= 2


def test_an_admin_session_from_one_node_works_on_the_other() -> None:
    for issued_by, used_on in (config.KEYCLOAK_NODES, config.KEYCLOAK_NODES[::-1]):
        s = admin_session(keycloak_cluster.url(issued_by))
        r = s.get(f"{keycloak_cluster.url(used_on)}/admin/realms/zerotrust/clients")
        assert r.status_code == 200, (issued_by.name, used_on.name, r.status_code, r.text[:200])
        assert "python-client" in {c["clientId"] for c in r.json()}


def test_a_realm_change_through_one_node_is_seen_through_the_other_at_once() -> None:
    one, two = (keycloak_cluster.url(n) for n in config.KEYCLOAK_NODES)
    s = admin_session(one)
    name = f"ha-probe-{uuid.uuid4().hex[:8]}"  # a group: nothing Terraform manages
    created = s.post(f"{one}/admin/realms/zerotrust/groups", json={"name": name})
    assert created.status_code == 201, created.text[:200]
    group_id = created.headers["Location"].rsplit("/", 1)[1]
    try:
        seen = s.get(f"{two}/admin/realms/zerotrust/groups/{group_id}")
        assert seen.status_code == 200 and seen.json()["name"] == name
    finally:
        gone = s.delete(f"{two}/admin/realms/zerotrust/groups/{group_id}")
    assert gone.status_code == 204
    assert s.get(f"{one}/admin/realms/zerotrust/groups/{group_id}").status_code == 404


def test_postgres_listens_on_loopback_and_a_second_start_changes_nothing() -> None:
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    listening = {line.split()[3] for line in out.splitlines() if line.split()}
    ours = {a for a in listening if a.endswith(f":{config.POSTGRES_PORT}")}
    assert ours == {f"{config.HOST}:{config.POSTGRES_PORT}"}, ours
    mode = stat.S_IMODE(config.KEYCLOAK_DB_PASSWORD.stat().st_mode)
    assert mode == 0o600
    pid = procs.running(config.POSTGRES)
    assert postgres.start() == "running, unchanged"
    assert procs.running(config.POSTGRES) == pid
    assert keycloak_cluster.start().count("running, unchanged") == len(config.KEYCLOAK_NODES)


def _keycloak_targets_up() -> set[str]:
    r = requests.get(
        f"{config.PROMETHEUS_URL}/api/v1/query", params={"query": 'up{job="keycloak"}'}, timeout=5
    )
    return {s["metric"]["instance"] for s in r.json()["data"]["result"] if s["value"][1] == "1"}


def test_prometheus_scrapes_every_node() -> None:
    text = prometheus.config_text(config.PROMETHEUS_RULES)
    nodes = {f"{config.HOST}:{mgmt}" for _, mgmt, _ in config.KEYCLOAK_NODE_PORTS}
    for target in nodes:
        assert f'"{target}"' in text
    assert f':{config.KEYCLOAK_MGMT_PORT}"' not in text
    assert wait_for(lambda: _keycloak_targets_up() == nodes, 30), _keycloak_targets_up()


def test_backup_dumps_the_database_while_both_nodes_serve(tmp_path: Path) -> None:
    pids = [procs.running(n) for n in config.KEYCLOAK_NODES]
    archive = backup.backup(tmp_path / "ha.tar.gz")
    assert [procs.running(n) for n in config.KEYCLOAK_NODES] == pids, "a node was restarted"
    member = "state/" + config.POSTGRES_PENDING_RESTORE.relative_to(config.STATE).as_posix()
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        data = tar.extractfile(member).read()
    assert data.startswith(b"PGDMP")  # pg_dump's custom format
    assert not any(n.startswith("state/postgres/") for n in names)
    # The dump restores (pg_restore) into a scratch database with the same realm in it.
    dump = tmp_path / "keycloak.pgdump"
    dump.write_bytes(data)
    scratch = f"restore_check_{uuid.uuid4().hex[:8]}"
    postgres.psql(f'CREATE DATABASE "{scratch}" OWNER keycloak;')
    try:
        postgres.restore(dump, scratch)
        query = "SELECT count(*) FROM client c JOIN realm r ON r.id = c.realm_id "
        query += "WHERE r.name = 'zerotrust';"
        assert postgres.psql(query, scratch) == postgres.psql(query, "keycloak")
    finally:
        postgres.psql(f'DROP DATABASE "{scratch}";')
    assert realm_shape(config.KEYCLOAK_URL)["clients"]


def test_a_rotated_keycloak_certificate_is_served_by_every_node_when_rotate_returns() -> None:
    new = rotation.rotate_server("keycloak")
    served = {
        node.name: rotation.served_serial(config.KEYCLOAK_NODE_PORTS[i][0])
        for i, node in enumerate(config.KEYCLOAK_NODES)
    }
    wanted = int(new.new_serial.replace(":", ""), 16)
    assert served == {node.name: wanted for node in config.KEYCLOAK_NODES}, new.report()
