"""The HA profile's OpenBao nodes (scripts/services/baonodes.py): each node's rendered
config, the clients' retry policy, the token-free cluster health read from metrics."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest
from urllib3.exceptions import MaxRetryError, SSLError
from urllib3.util.retry import RequestHistory

from scripts import config
from scripts.services import baonodes, openbao, prometheus

CERT, KEY = Path("/tmp/cert.pem"), Path("/tmp/key.pem")


def _node_text(node: baonodes.Node) -> str:
    return openbao.config_text(node.data_dir, CERT, KEY, node)


def test_the_single_node_config_has_no_cluster_settings() -> None:
    text = openbao.config_text(config.VAULT_DATA, CERT, KEY)
    assert 'node_id = "zerotrust-1"' in text
    assert f'address         = "{config.HOST}:{config.VAULT_PORT}"' in text
    assert "retry_join {" not in text and "disable_standby_reads =" not in text
    assert f'cluster_addr = "https://{config.HOST}:{config.VAULT_CLUSTER_PORT}"' in text


@pytest.mark.parametrize("node", baonodes.NODES, ids=lambda n: n.name)
def test_each_node_has_its_ports_id_data_and_joins_the_others(node: baonodes.Node) -> None:
    text = _node_text(node)
    assert f'node_id = "{node.name}"' in text
    assert f'path    = "{node.data_dir}"' in text
    assert f'address         = "{config.HOST}:{node.port}"' in text
    assert f'api_addr     = "{node.addr}"' in text
    assert f'cluster_addr = "{node.cluster_addr}"' in text
    joined = re.findall(r'leader_api_addr\s*=\s*"([^"]+)"', text)
    assert sorted(joined) == sorted(n.addr for n in baonodes.NODES if n != node)
    assert text.count(f'leader_ca_cert_file   = "{config.VAULT_TLS_CA}"') == 2
    assert re.search(r"^disable_standby_reads = true$", text, re.M)
    # The audit device is replicated: every node must declare the same path.
    assert f'file_path = "{config.VAULT_AUDIT_LOG}"' in text


def test_each_node_listens_for_cluster_traffic_on_its_api_port_plus_one() -> None:
    """The listener's cluster address defaults to its port + 1; the config relies on it."""
    for node in baonodes.NODES:
        assert node.cluster_port == node.port + 1
    assert config.VAULT_CLUSTER_PORT == config.VAULT_PORT + 1


def test_nodes_keep_their_files_apart_and_out_of_backups() -> None:
    folders = {node.data_dir for node in baonodes.NODES} | {n.config_file for n in baonodes.NODES}
    assert len(folders) == 2 * len(baonodes.NODES)
    for node in baonodes.NODES:
        rel = node.data_dir.relative_to(config.STATE).as_posix()
        assert any(rel.startswith(e + "/") for e in config.BACKUP_EXCLUDED)


def test_only_the_ha_profile_retries(monkeypatch) -> None:
    monkeypatch.setattr(config, "HA_OPENBAO", False)
    assert baonodes.retrying_session() is None
    assert baonodes.terraform_env() == {}
    monkeypatch.setattr(config, "HA_OPENBAO", True)
    session = baonodes.retrying_session()
    assert session is not None and session.verify == str(config.VAULT_TLS_CA)
    retry = session.get_adapter("https://127.0.0.1:8200").max_retries
    assert retry.total == baonodes.RETRY_TOTAL and 503 in retry.status_forcelist
    assert baonodes.terraform_env() == {"VAULT_MAX_RETRIES": str(baonodes.TERRAFORM_MAX_RETRIES)}
    # a standby's redirect names one node's own address: asked again through the edge
    assert baonodes.hvac_options()["allow_redirects"] is False and 307 in retry.status_forcelist


def test_a_closed_tls_session_is_retried_an_untrusted_certificate_is_not() -> None:
    retry = baonodes.NodeRetry(total=3, other=3)
    closed = SSLError(ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed (EOF)"))
    after = retry.increment("GET", "/v1/sys/health", error=closed)
    assert after.total == 2
    untrusted = SSLError(
        ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] self-signed")
    )
    with pytest.raises(MaxRetryError):
        retry.increment("GET", "/v1/sys/health", error=untrusted)


def test_prometheus_scrapes_every_node_in_ha(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(config, "HA_OPENBAO", True)
    text = prometheus.config_text(tmp_path)
    for node in baonodes.NODES:
        assert f'"{config.HOST}:{node.port}"' in text
    monkeypatch.setattr(config, "HA_OPENBAO", False)
    assert f'targets: ["{config.HOST}:{config.VAULT_PORT}"]' in prometheus.config_text(tmp_path)


def test_autopilot_health_is_read_from_metrics() -> None:
    text = (
        "# HELP vault_autopilot_failure_tolerance x\n"
        "vault_autopilot_failure_tolerance 1\n"
        'vault_autopilot_node_healthy{node_id="vault-1"} 1\n'
        'vault_autopilot_node_healthy{node_id="vault-2"} 0\n'
        "vault_autopilot_healthy 0\n"
    )
    assert baonodes.parse_autopilot(text) == (1.0, {"vault-1": 1.0, "vault-2": 0.0})
    assert baonodes.parse_autopilot("") == (None, {})


def test_redirects_back_off_like_other_retries() -> None:
    """urllib3 resets its backoff after a redirect: 307s from a standby mid-election would
    use every retry within milliseconds."""
    retry = baonodes.NodeRetry(total=10, backoff_factor=0.5, backoff_max=4.0)
    waits = []
    for _ in range(5):
        retry = retry.new(
            history=(*retry.history, RequestHistory("POST", "/", None, 307, "https://x/"))
        )
        waits.append(retry.get_backoff_time())
    assert waits == [0.0, 1.0, 2.0, 4.0, 4.0]
