"""Backups of the HA profile's OpenBao (docs/scaling.md, "Backups of the raft cluster"); after
the drill (a backup restarts the single profile's Keycloak, slow for a while after).

`zt backup` takes the raft snapshot from the cluster through the edge (a standby forwards
it to the active node); the nodes' own data folders are not in the archive. `zt restore`
refuses the HA profile clearly and writes nothing.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from scripts import backup, config
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


def test_restore_refuses_the_ha_profile_and_writes_nothing(archive: Path) -> None:
    before = sorted(
        p.relative_to(config.STATE) for p in config.STATE.rglob("*") if "logs" not in p.parts
    )
    r = run_zt("restore", str(archive), timeout=120)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "does not restore into the HA profile's OpenBao raft cluster" in out, out
    assert "nothing was written" in out
    after = sorted(
        p.relative_to(config.STATE) for p in config.STATE.rglob("*") if "logs" not in p.parts
    )
    assert [p for p in after if p not in before and "run" not in p.parts] == []
