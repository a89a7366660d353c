"""Backups of the HA profile's OpenBao (docs/scaling.md, "Backups of the raft cluster"); after
the drill (a backup restarts the single profile's Keycloak, slow for a while after).

`zt backup` takes the raft snapshot from the cluster through the edge (a standby forwards
it to the active node); the nodes' own data folders are not in the archive. `zt restore`
rebuilds the cluster from it: the snapshot through a throwaway first node, the others
joining it at the next `make up-ha`.
"""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path

import pytest
import requests

from scripts import backup, config
from scripts.services import baonodes
from tests.integration.conftest import run_zt

pytestmark = pytest.mark.skipif(
    not config.HA_OPENBAO, reason="OpenBao is not clustered (ZT_HA_PARTS)"
)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("backup") / "zt-ha.tar.gz"
    r = run_zt("backup", "--output", str(dest), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    print(f"\n{r.stdout.strip().splitlines()[-2]}")
    return dest


def test_backup_holds_the_clusters_raft_snapshot_not_the_nodes_data(archive: Path) -> None:
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        snap = tar.extractfile(backup.SNAPSHOT)
        assert snap is not None
        data = snap.read()
    assert data.startswith(b"\x1f\x8b") and len(data) > 1024, "not a raft snapshot"
    nodes = config.VAULT_NODES_DIR.relative_to(config.STATE).as_posix()
    assert not [n for n in names if f"/{nodes}/" in f"/{n}"], "a node's data is in the archive"
    print(f"raft snapshot: {len(data)} bytes, {len(names)} members")


def _served_cas() -> dict[str, str]:
    """Each PKI mount's CA certificate as the cluster serves it (through the edge)."""
    mounts = json.loads(config.PKI_OUTPUTS.read_text())["mounts"]
    return {
        key: requests.get(
            f"{config.VAULT_ADDR}/v1/{mount}/ca/pem", verify=str(config.VAULT_TLS_CA), timeout=10
        ).text
        for key, mount in mounts.items()
    }


@pytest.mark.runs_last  # it starts the whole stack over from the archive
def test_restore_rebuilds_the_raft_cluster_from_the_backup(archive: Path) -> None:
    """`zt clean`, `zt restore`, `make up-ha`: the snapshot goes in through a throwaway first
    node (its name and ports, so the restored raft configuration names it), the other two
    join it afresh; the cluster serves the archived CAs and all three vote."""
    before = _served_cas()
    t0 = time.monotonic()
    for argv, timeout in ((("clean",), 300), (("restore", str(archive)), 300), (("up",), 900)):
        r = run_zt(*argv, timeout=timeout)
        assert r.returncode == 0, f"zt {' '.join(argv)}:\n{r.stdout[-3000:]}{r.stderr[-2000:]}"
    print(f"\nclean + restore + up: {time.monotonic() - t0:.0f}s")
    assert _served_cas() == before
    assert sorted(baonodes.states().values()) == ["active", "standby", "standby"]
    assert baonodes.all_voters_healthy()
