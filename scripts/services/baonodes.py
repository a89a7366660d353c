"""The HA profile's OpenBao: three raft nodes on loopback (docs/scaling.md).

Each node (``config.VAULT_NODES``) has its own API and cluster port, data folder and
rendered config (``vault/config.hcl.tmpl`` with its ``node_id`` and ``retry_join`` blocks
naming the other nodes); the three share the listener certificate (every node is
``localhost``/127.0.0.1 here) and the unseal key. Clients reach them through the edge
(``config.VAULT_ADDR``, scripts/services/edge.py), which hands each connection to any
node that accepts it.

What this module knows is per node and needs no token: addresses, health, seal status,
unsealing, who leads (``sys/leader``). The lifecycle that renders configs and runs the
bring-up is ``scripts/services/openbao.py``, which calls in here.

**Why every node forwards everything** (``disable_standby_reads = true``): OpenBao 2.5+
lets raft standbys answer reads themselves, which is only eventually consistent
(openbao.org, "Eventual consistency"). Behind an edge that picks a node per connection,
an AppRole login (a write, done by the active node) followed by a read on another
connection could hit a standby that has not applied the new token yet and answer 403.
With standby reads off, a standby forwards every request to the active node, so every
client sees read-after-write.

**Why clients retry 503 and lost connections** (``retrying_session``): a node restarted
by supervisord listens before the launcher has unsealed it, and a sealed node answers 503
to everything; while a new leader is being elected a standby has nobody to forward to
(500/502), or redirects (307) to a leader that may be the node just lost.
Neither did the request's work, so a bounded retry (``RETRY_SECONDS`` in all) through the
edge, which picks another node, turns a node's loss into a delay instead of a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from scripts import config

# The cluster's top-level settings (placed in every node's config).
CLUSTER_SETTINGS = (
    "# Standbys forward every request to the active node (read-after-write for clients\n"
    "# behind the edge; scripts/services/baonodes.py).\n"
    "disable_standby_reads = true\n\n"
)
# A client's retries through the edge when a node is sealed, restarting or without a
# leader: backoff 0, 1, 2, then 4 s (about 40 s in all: an election is 5-20 s here), then
# the error stands.
RETRY_TOTAL = 12
RETRY_BACKOFF = 0.5
RETRY_BACKOFF_MAX = 4.0
# 307: a standby that cannot forward redirects to the active node's own api_addr, which
# may be the node just lost (or, across hosts, not reachable by clients): ask the edge
# again instead of following it.
RETRY_STATUSES = (307, 500, 502, 503)
TERRAFORM_MAX_RETRIES = 15  # the provider's default is 2
# How long a new leader may take after the active node is lost (raft election on 2
# shared cores); the drill (tests/ha/test_openbao_failover.py) measures it.
LEADER_BOUND_SECONDS = 30.0


@dataclass(frozen=True)
class Node:
    """One raft node: its supervised service and where it listens."""

    svc: config.Service
    cluster_port: int

    @property
    def name(self) -> str:
        return self.svc.name

    @property
    def port(self) -> int:
        assert self.svc.port is not None
        return self.svc.port

    @property
    def addr(self) -> str:
        return f"https://{config.HOST}:{self.port}"

    @property
    def cluster_addr(self) -> str:
        return f"https://{config.HOST}:{self.cluster_port}"

    @property
    def data_dir(self) -> Path:
        return config.VAULT_NODES_DIR / self.name / "data"

    @property
    def config_file(self) -> Path:
        return config.VAULT_NODES_DIR / self.name / "config.hcl"


NODES = tuple(
    Node(svc, cluster)
    for svc, (_, cluster) in zip(config.VAULT_NODES, config.VAULT_NODE_PORTS, strict=True)
)
FIRST = NODES[0]  # initialised through its own port; the others join it


def by_name(name: str) -> Node:
    for node in NODES:
        if node.name == name:
            return node
    raise KeyError(name)


def retry_join(node: Node) -> str:
    """The ``retry_join`` blocks of ``node``'s raft stanza: every other node, verified
    against what clients trust for the listener (the bootstrap cert, then the server CA)."""
    return "".join(
        "  retry_join {\n"
        f'    leader_api_addr       = "{other.addr}"\n'
        f'    leader_ca_cert_file   = "{config.VAULT_TLS_CA}"\n'
        '    leader_tls_servername = "localhost"\n'
        "  }\n"
        for other in NODES
        if other != node
    )


def services() -> tuple[config.Service, ...]:
    """What runs OpenBao in this profile: the nodes, or the single ``vault``."""
    return config.VAULT_NODES if config.HA_OPENBAO else (config.VAULT,)


def addresses() -> tuple[str, ...]:
    """Every OpenBao API address to reach directly (each node, or the single one)."""
    return tuple(n.addr for n in NODES) if config.HA_OPENBAO else (config.VAULT_ADDR,)


def terraform_env() -> dict[str, str]:
    """The Vault provider's retries (its API client retries connection errors and 5xx,
    1-1.5 s apart): raised in the HA profile to outlast an election, like our clients."""
    return {"VAULT_MAX_RETRIES": str(TERRAFORM_MAX_RETRIES)} if config.HA_OPENBAO else {}


def hvac_options() -> dict[str, Any]:
    """What every hvac client of ours passes: the retrying session, and in the HA profile
    no redirect followed (a 307 is retried through the edge instead)."""
    return {"session": retrying_session(), "allow_redirects": not config.HA_OPENBAO}


class NodeRetry(Retry):
    """urllib3's Retry, except that a certificate the client does not trust fails at
    once (a configuration fault no other node will fix, not a node's loss), and that a
    redirect backs off like any other retry (urllib3 restarts its backoff after one, so
    a standby redirecting through an election would use up every retry at once)."""

    def get_backoff_time(self) -> float:
        tries = len(self.history)
        if tries <= 1:
            return 0.0
        return float(min(self.backoff_max, self.backoff_factor * 2 ** (tries - 1)))

    def increment(self, *args: Any, error: Exception | None = None, **kwargs: Any) -> Retry:
        if error is not None and "CERTIFICATE_VERIFY_FAILED" in str(error):
            return Retry(0).increment(*args, error=error, **kwargs)
        return super().increment(*args, error=error, **kwargs)


def retrying_session() -> requests.Session | None:
    """A session that retries sealed/leaderless answers and lost connections (HA only;
    the single profile has one node and keeps failing fast)."""
    if not config.HA_OPENBAO:
        return None
    retry = NodeRetry(
        total=RETRY_TOTAL,
        connect=RETRY_TOTAL,
        read=RETRY_TOTAL,
        status=RETRY_TOTAL,
        other=RETRY_TOTAL,  # a TLS session a dying node closed mid-handshake
        allowed_methods=None,  # any method: a sealed or leaderless node did nothing
        status_forcelist=RETRY_STATUSES,
        backoff_factor=RETRY_BACKOFF,
        backoff_max=RETRY_BACKOFF_MAX,
        raise_on_status=False,
    )
    session = requests.Session()
    # A new connection per request: the edge picks the node per connection, so a retry on
    # a kept-alive one would ask the same sealed or standby node again and again (a raft
    # snapshot, which standbys do not forward, failed every retry on the one it reached).
    session.headers["Connection"] = "close"
    # hvac prefers a session's own verify over its argument: what clients trust here.
    session.verify = str(config.VAULT_TLS_CA)
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def _get(node: Node, path: str, **params: str) -> dict | None:
    try:
        r = requests.get(
            f"{node.addr}/v1/{path}", params=params, verify=str(config.VAULT_TLS_CA), timeout=2
        )
        return r.json()
    except (requests.RequestException, ValueError):
        return None


def health(node: Node) -> dict | None:
    """``sys/health`` of one node (any state answers 200); None if unreachable."""
    return _get(node, "sys/health", standbyok="true", sealedcode="200", uninitcode="200")


def seal_status(node: Node) -> dict | None:
    return _get(node, "sys/seal-status")


def unseal(node: Node, keys: list[str]) -> dict | None:
    """Submit the unseal key(s) to one node; its seal status after, None if unreachable."""
    status = None
    for key in keys:
        try:
            r = requests.put(
                f"{node.addr}/v1/sys/unseal",
                json={"key": key},
                verify=str(config.VAULT_TLS_CA),
                timeout=10,
            )
            status = r.json()
        except (requests.RequestException, ValueError):
            return None
    return status


def leader() -> Node | None:
    """The active node, as the first node that answers ``sys/leader`` names it."""
    for node in NODES:
        answer = _get(node, "sys/leader")
        if answer is None or not answer.get("leader_address"):
            continue
        for candidate in NODES:
            if answer["leader_address"].rstrip("/") == candidate.addr:
                return candidate
    return None


def states() -> dict[str, str]:
    """Each node's state in a word: active, standby, sealed, uninitialised, unreachable."""
    return states_of(NODES)


def states_of(nodes: tuple[Node, ...]) -> dict[str, str]:
    out = {}
    for node in nodes:
        h = health(node)
        if h is None:
            out[node.name] = "unreachable"
        elif not h.get("initialized"):
            out[node.name] = "uninitialised"
        elif h.get("sealed"):
            out[node.name] = "sealed"
        else:
            out[node.name] = "standby" if h.get("standby") else "active"
    return out


def voters(token: str) -> dict[str, dict]:
    """The raft configuration (``sys/storage/raft/configuration``, any node forwards):
    node id -> {voter, leader, address}. Needs a token allowed to read it."""
    r = requests.get(
        f"{config.VAULT_ADDR}/v1/sys/storage/raft/configuration",
        headers={"X-Vault-Token": token},
        verify=str(config.VAULT_TLS_CA),
        timeout=10,
    )
    r.raise_for_status()
    servers = r.json()["data"]["config"]["servers"]
    return {s["node_id"]: s for s in servers}


def node_health(node: Node) -> tuple[bool, str]:
    """``zt status``'s line for one node: healthy when unsealed (active or standby)."""
    state = states_of((node,))[node.name]
    return state in ("active", "standby"), state


def autopilot(node: Node) -> tuple[float | None, dict[str, float]]:
    """What the active node's autopilot reports, from its token-free Prometheus metrics:
    (failure tolerance, node id -> healthy 1/0). Empty on a standby or if unreachable."""
    try:
        r = requests.get(
            f"{node.addr}/v1/sys/metrics",
            params={"format": "prometheus"},
            verify=str(config.VAULT_TLS_CA),
            timeout=5,
        )
        r.raise_for_status()
    except requests.RequestException:
        return None, {}
    return parse_autopilot(r.text)


def parse_autopilot(text: str) -> tuple[float | None, dict[str, float]]:
    """(failure tolerance, node id -> healthy) from OpenBao's Prometheus text."""
    tolerance, healthy = None, {}
    for line in text.splitlines():
        if line.startswith("vault_autopilot_failure_tolerance "):
            tolerance = float(line.split()[-1])
        elif line.startswith('vault_autopilot_node_healthy{node_id="'):
            node_id = line.split('"')[1]
            healthy[node_id] = float(line.split()[-1])
    return tolerance, healthy


def all_voters_healthy() -> bool:
    """True when every node is unsealed, one leads, and its autopilot counts all three as
    healthy voters (failure tolerance 1: three voters; it is 0 with two, or with a
    non-voter). Token-free, so the drill and a restarted stack can check it."""
    state = states()
    lead = leader()
    if lead is None or state.get(lead.name) != "active":
        return False
    if any(s not in ("active", "standby") for s in state.values()):
        return False
    tolerance, healthy = autopilot(lead)
    return tolerance == (len(NODES) - 1) // 2 and all(healthy.get(n.name) == 1 for n in NODES)
