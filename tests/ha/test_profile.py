"""The HA profile's shape: its own state folder, its parts behind the edge."""

from __future__ import annotations

from scripts import config
from scripts.services import procs


def test_profile_has_its_own_state_folder() -> None:
    assert config.STATE.name == ".state-ha"


def test_edge_serves_both_addresses() -> None:
    assert procs.running(config.EDGE) is not None
    assert procs.port_in_use(config.VAULT_PORT)
    assert procs.port_in_use(config.KEYCLOAK_PORT)
