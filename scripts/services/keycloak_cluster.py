"""The HA profile's Keycloak: two nodes on PostgreSQL, one cluster (docs/scaling.md).

Each node (``config.KEYCLOAK_NODES``, ports ``config.KEYCLOAK_NODE_PORTS``) is the single
profile's Keycloak (scripts/services/keycloak.py: same certificate bundle, client-root
trust store, bootstrap admin, ``--hostname`` = the edge's ``config.KEYCLOAK_URL``, so
tokens from either node name the same issuer) with three differences:

* its home is built for PostgreSQL (``tools.KEYCLOAK_PG_HOME``) and it logs in to
  ``scripts/services/postgres.py``'s database as ``config.POSTGRES_ROLE`` (the password in
  its environment, never on its command line);
* ``--cache=ispn --cache-stack=jdbc-ping``: the nodes find each other through a table in
  that same database (JGroups ``JDBC_PING2``: no multicast, nothing to configure per
  host) and talk over JGroups TCP on their own cluster port, bound to loopback
  (``--cache-embedded-network-bind-*``); Keycloak encrypts that traffic with mutual TLS
  by default, with certificates it generates and rotates itself;
* its own HTTPS and management ports; the edge (scripts/services/edge.py) puts both
  nodes behind ``config.KEYCLOAK_PORT``.

keycloak-1 starts first and is waited for (on a fresh database it creates the schema),
then keycloak-2, which joins its cluster.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from scripts import config, tools
from scripts.files import write_atomic
from scripts.pki import certs
from scripts.services import keycloak, postgres, procs
from scripts.steps import StepFailed, say, wait_until

READY_SECONDS = 300.0  # a JVM start (and the schema on a fresh database) on 2 shared cores
STOP_SECONDS = 60.0
# Infinispan's "new cluster view" line (ISPN000094), e.g. "... [node-a|1] (2) [node-a, node-b]"
VIEW_CODE = "ISPN000094"


def ports(node: config.Service) -> tuple[int, int, int]:
    """(HTTPS, management, cluster transport) of ``node``."""
    return config.KEYCLOAK_NODE_PORTS[config.KEYCLOAK_NODES.index(node)]


def mgmt_url(node: config.Service) -> str:
    return config.KEYCLOAK_NODE_MGMT_URLS[config.KEYCLOAK_NODES.index(node)]


def url(node: config.Service) -> str:
    """The node's own HTTPS address (its certificate names ``localhost``)."""
    return f"https://localhost:{ports(node)[0]}"


def argv(node: config.Service) -> list[str]:
    https, mgmt, cluster = ports(node)
    storage = [
        "--cache=ispn",
        "--cache-stack=jdbc-ping",
        f"--cache-embedded-network-bind-address={config.HOST}",
        f"--cache-embedded-network-bind-port={cluster}",
        f"--http-management-port={mgmt}",
        f"--db-url={postgres.jdbc_url()}",
        f"--db-username={config.POSTGRES_ROLE}",
    ]
    return keycloak.argv(home=tools.KEYCLOAK_PG_HOME, https_port=https, storage=storage)


def fingerprint(node: config.Service) -> str:
    """What a running node must have been started with (as ``keycloak.fingerprint``)."""
    h = hashlib.sha256("\0".join([*tools.KEYCLOAK_PG_BUILD_OPTIONS, *argv(node)]).encode())
    h.update(config.CLIENT_ROOT_CA.read_bytes())
    return h.hexdigest()


def _fingerprint_file(node: config.Service) -> Path:
    return node.run_dir / f"{node.name}.fingerprint"


def service_env() -> dict[str, str]:
    """A node's environment: the single Keycloak's, plus the database password."""
    return {**keycloak.service_env(), "KC_DB_PASSWORD": postgres.keycloak_password()}


def ready(node: config.Service) -> bool:
    return keycloak.ready(mgmt_url(node))


def health(node: config.Service) -> tuple[bool, str]:
    """For ``zt status``: ready, and how many members its last cluster view had."""
    members = last_view_size(node)
    view = f", cluster view of {members}" if members is not None else ""
    if ready(node):
        return True, f"ready{view}"
    return False, f"/health/ready not UP at {mgmt_url(node)}"


def start() -> str:
    """Start (or restart, if what it runs changed) each node in turn, waiting for each to be
    ready before the next. Returns what was done."""
    if not config.CLIENT_ROOT_CA.exists():
        raise StepFailed(f"{config.CLIENT_ROOT_CA} is missing (terraform/pki writes it)")
    keycloak.ensure_truststore()
    cert, _ = config.server_cert_paths("keycloak")
    if not certs.bundle_path(cert).exists():
        certs.issue_server_cert("keycloak")
    config.KEYCLOAK_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    pending = postgres.load_pending_restore() if _all_stopped() else None
    if pending:
        say(f"    {pending}")
    done = [f"{node.name}: {_start_node(node)}" for node in config.KEYCLOAK_NODES]
    return "; ".join(done)


def _all_stopped() -> bool:
    return all(procs.running(node) is None for node in config.KEYCLOAK_NODES)


def _start_node(node: config.Service) -> str:
    wanted = fingerprint(node)
    did = "started"
    if procs.running(node) is not None:
        recorded = _fingerprint_file(node)
        if recorded.exists() and recorded.read_text().strip() == wanted:
            wait_until(
                f"{node.name} /health/ready", lambda: ready(node), READY_SECONDS, str(node.log_file)
            )
            return "running, unchanged"
        say(f"    {node.name}: its options or trust anchor changed: restarting it")
        procs.stop(node, timeout=STOP_SECONDS)
        did = "restarted (options or trust anchor changed)"
    _, mgmt, cluster = ports(node)
    procs.require_free_port(mgmt, f"{node.name} (management)")
    procs.require_free_port(cluster, f"{node.name} (cluster transport)")
    procs.start(
        node,
        argv(node),
        env=service_env(),
        cwd=config.KEYCLOAK_DIR,
        launch="child",  # kc.sh runs java as its child: the launcher takes both down
        stop_seconds=STOP_SECONDS,
    )
    write_atomic(_fingerprint_file(node), wanted + "\n")
    wait_until(
        f"{node.name} /health/ready",
        lambda: procs.alive_or_fail(node) and ready(node),
        READY_SECONDS,
        str(node.log_file),
        interval=1.0,
    )
    return did


def view_lines(node: config.Service) -> list[str]:
    """The messages of ``node``'s log that announce a new cluster view (newest last)."""
    try:
        lines = node.log_file.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        if VIEW_CODE not in line:
            continue
        try:
            found.append(str(json.loads(line).get("message", line)))
        except ValueError:
            found.append(line)
    return found


def last_view_size(node: config.Service) -> int | None:
    """How many members ``node``'s latest cluster view listed (its log), None if none yet.
    The view reads ``[coordinator|id] (n) [members]``."""
    views = view_lines(node)
    if not views:
        return None
    text = views[-1]
    try:
        return int(text.split("] (", 1)[1].split(")", 1)[0])
    except (IndexError, ValueError):
        return None
