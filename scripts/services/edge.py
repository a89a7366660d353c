"""The HA profile's edge: one loopback address per clustered part (docs/scaling.md).

Clients, Terraform and the verifier keep the single profile's addresses
(``config.VAULT_ADDR``, ``config.KEYCLOAK_URL``); behind each, an nginx ``stream`` proxy
(nginx/edge.conf.tmpl) passes the TCP connection to a node that accepts it. TLS is not
terminated here: every node serves its own server-CA certificate for ``localhost``, and a
workload's client certificate reaches Keycloak unchanged. A node that is down refuses the
connection and nginx tries the next one (``proxy_next_upstream``), so losing a node costs a
client nothing but a retried connect.

Whether a node that accepts connections can also serve (an OpenBao standby forwards to the
active node; a sealed one cannot) is the cluster's business, not the edge's: nginx's open
source edition has no active health checks.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Mapping

from scripts import config
from scripts.files import write_atomic
from scripts.services import nginx, procs
from scripts.steps import wait_until

TEMPLATE = config.REPO / "nginx" / "edge.conf.tmpl"
FINGERPRINT = config.RUN / "edge.fingerprint"
# Seconds a node that refused a connection is left out before it is tried again.
FAIL_TIMEOUT_SECONDS = 2


def routes() -> dict[str, tuple[int, tuple[int, ...]]]:
    """Each proxied part: its name -> (the address clients use, its nodes' ports); only
    the parts the profile clusters (``config.HA_PARTS``)."""
    parts: dict[str, tuple[int, tuple[int, ...]]] = {}
    if config.HA_OPENBAO:
        parts["openbao"] = (config.VAULT_PORT, tuple(api for api, _ in config.VAULT_NODE_PORTS))
    if config.HA_KEYCLOAK:
        parts["keycloak"] = (
            config.KEYCLOAK_PORT,
            tuple(https for https, _, _ in config.KEYCLOAK_NODE_PORTS),
        )
    return parts


def upstream_block(name: str, listen: int, nodes: tuple[int, ...]) -> str:
    """One ``upstream`` + ``server`` pair of the stream block."""
    servers = "".join(
        f"        server {config.HOST}:{port} max_fails=1 fail_timeout={FAIL_TIMEOUT_SECONDS}s;\n"
        for port in nodes
    )
    return (
        f"    upstream {name} {{\n{servers}    }}\n"
        f"    server {{\n"
        f"        listen {config.HOST}:{listen};\n"
        f"        proxy_pass {name};\n"
        f"        proxy_connect_timeout 2s;\n"
        f"        proxy_next_upstream on;\n"
        f"        proxy_next_upstream_tries {len(nodes) or 1};\n"
        f"    }}\n"
    )


def render(parts: Mapping[str, tuple[int, tuple[int, ...]]] | None = None) -> str:
    parts = routes() if parts is None else parts
    blocks = "\n".join(
        upstream_block(name, listen, nodes) for name, (listen, nodes) in parts.items()
    )
    return string.Template(TEMPLATE.read_text()).substitute(
        stream_module=config.NGINX_STREAM_MODULE,
        run_dir=config.RUN,
        log_dir=config.LOGS,
        upstreams=blocks.rstrip("\n"),
    )


def _fingerprint() -> str:
    return hashlib.sha256(config.EDGE_CONF.read_bytes()).hexdigest()


def start() -> str:
    """Start the edge, or reload it when its rendered config changed; what it did."""
    config.EDGE_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    nginx.install_nginx_conf(render(), config.EDGE_CONF)
    pid = procs.running(config.EDGE)
    if pid is not None:
        recorded = FINGERPRINT.read_text().strip() if FINGERPRINT.exists() else ""
        if recorded == _fingerprint():
            return "running, unchanged"
        nginx.graceful_reload(pid, "edge", config.LOGS / "edge-error.log")
        write_atomic(FINGERPRINT, _fingerprint() + "\n")
        return "reloaded"
    for listen, _ in routes().values():
        procs.require_free_port(listen, "edge")
    procs.start(config.EDGE, ["nginx", "-c", str(config.EDGE_CONF)], launch="child")
    write_atomic(FINGERPRINT, _fingerprint() + "\n")
    wait_until(
        "edge listening",
        lambda: (
            procs.alive_or_fail(config.EDGE)
            and all(procs.port_in_use(listen) for listen, _ in routes().values())
        ),
        30,
        str(config.LOGS / "edge-error.log"),
    )
    return "started"
