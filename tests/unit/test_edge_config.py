"""The HA edge's rendered config: every node behind its address, accepted by `nginx -t`."""

from __future__ import annotations

import subprocess
from pathlib import Path

from scripts import config
from scripts.services import edge


def _ha_routes(monkeypatch) -> None:
    monkeypatch.setattr(config, "HA_OPENBAO", True)
    monkeypatch.setattr(config, "HA_KEYCLOAK", True)


def test_every_node_is_an_upstream_server(monkeypatch) -> None:
    _ha_routes(monkeypatch)
    text = edge.render()
    for api, _ in config.VAULT_NODE_PORTS:
        assert f"server {config.HOST}:{api} " in text
    for https, _, _ in config.KEYCLOAK_NODE_PORTS:
        assert f"server {config.HOST}:{https} " in text
    assert f"listen {config.HOST}:{config.VAULT_PORT};" in text
    assert f"listen {config.HOST}:{config.KEYCLOAK_PORT};" in text
    assert "proxy_next_upstream on;" in text


def test_only_the_clustered_parts_are_proxied(monkeypatch) -> None:
    monkeypatch.setattr(config, "HA_OPENBAO", True)
    monkeypatch.setattr(config, "HA_KEYCLOAK", False)
    assert set(edge.routes()) == {"openbao"}


def test_rendered_edge_passes_nginx_t(tmp_path: Path, monkeypatch) -> None:
    _ha_routes(monkeypatch)
    text = (
        edge.render()
        .replace(str(config.LOGS), str(tmp_path))
        .replace(str(config.RUN), str(tmp_path))
    )
    conf = tmp_path / "edge.conf"
    conf.write_text(text)
    proc = subprocess.run(["nginx", "-t", "-q", "-c", str(conf)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
