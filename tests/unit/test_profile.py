"""ZT_PROFILE picks what runs where (scripts/config.py): strict, and its own state folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from scripts import config

PROBE = (
    "import json; from scripts import config; "
    "print(json.dumps({'profile': config.PROFILE, 'state': str(config.STATE), "
    "'services': [s.name for s in config.SERVICES]}))"
)


def _probe(profile: str | None, parts: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("ZT_PROFILE", "ZT_STATE", "ZT_HA_PARTS")
    }
    if profile is not None:
        env["ZT_PROFILE"] = profile
    if parts is not None:
        env["ZT_HA_PARTS"] = parts
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=config.REPO, env=env, capture_output=True, text=True
    )


def test_default_profile_is_single_in_dot_state() -> None:
    out = json.loads(_probe(None).stdout)
    assert out["profile"] == "single"
    assert out["state"] == str(config.REPO / ".state")
    assert out["services"][:2] == ["vault", "keycloak"]


def test_ha_profile_has_its_own_state_and_nodes() -> None:
    out = json.loads(_probe("ha").stdout)
    assert out["profile"] == "ha"
    assert out["state"] == str(config.REPO / ".state-ha")
    names = out["services"]
    assert names[0] == "postgres"
    assert [n for n in names if n.startswith("vault")] == ["vault-1", "vault-2", "vault-3"]
    assert [n for n in names if n.startswith("keycloak")] == ["keycloak-1", "keycloak-2"]
    # the edge runs before Keycloak's nodes, after OpenBao's
    assert names.index("vault-3") < names.index("edge") < names.index("keycloak-1")


def test_unknown_profile_is_refused_with_the_choices() -> None:
    proc = _probe("hA")
    assert proc.returncode == 1
    assert "ZT_PROFILE='hA' is not a profile; use one of: single, ha" in proc.stderr


def test_every_node_port_is_distinct() -> None:
    ports = [p for pair in config.VAULT_NODE_PORTS for p in pair]
    ports += [p for triple in config.KEYCLOAK_NODE_PORTS for p in triple]
    ports += [
        config.POSTGRES_PORT,
        config.VAULT_PORT,
        config.KEYCLOAK_PORT,
        config.KEYCLOAK_MGMT_PORT,
        config.NGINX_PORT,
        config.NGINX_HEALTH_PORT,
        config.PROMETHEUS_PORT,
        config.VAULT_CLUSTER_PORT,
    ]
    assert len(ports) == len(set(ports))


def test_ha_parts_one_at_a_time() -> None:
    names = json.loads(_probe("ha", "openbao").stdout)["services"]
    assert "postgres" not in names and "keycloak" in names and "vault-1" in names
    names = json.loads(_probe("ha", "keycloak").stdout)["services"]
    assert "postgres" in names and "vault" in names and "keycloak-2" in names


def test_unknown_ha_part_is_refused() -> None:
    proc = _probe("ha", "openbao,postgres")
    assert proc.returncode == 1
    assert "a comma-separated subset of keycloak, openbao" in proc.stderr
