"""Install the load generator, vegeta, into the tool cache (pinned, atomic, cached).

Why vegeta: it presents a client certificate (``-cert/-key/-root-certs``) and
headers, can run closed-loop at a fixed concurrency (``-rate=0 -workers=N
-max-workers=N``), can turn keep-alive off (``-keepalive=false``: a new TCP
connection and a full TLS handshake with the client certificate per request,
since it keeps no TLS session cache unless ``-session-tickets``), and stops
when its targets run out (``-lazy``), which bounds a run by count as well as by
time. The Go module proxy here serves it; bombardier answers 403 and
hey cannot present a client certificate.

Installed by ``scripts.tools.go_install`` like the Terraform providers: a temp
folder of the cache, then one rename into place, so an interrupted build
leaves nothing half-written; the Go module cache keeps downloads for a re-run.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench import config as bench_config
from scripts import tools
from scripts.steps import say


def install_vegeta() -> Path:
    """The pinned vegeta binary, built with ``go install`` on first use."""
    binary = bench_config.VEGETA
    tools.go_install(
        bench_config.VEGETA_MODULE, bench_config.VEGETA_VERSION, binary.parent, binary.name
    )
    say(f"    vegeta {bench_config.VEGETA_VERSION} -> {binary}")
    _link(binary)
    return binary


def install_oauth2_proxy() -> Path:
    """The pinned oauth2-proxy binary (the peer scenario), built with ``go install``
    on first use like vegeta."""
    binary = bench_config.OAUTH2_PROXY
    tools.go_install(
        bench_config.OAUTH2_PROXY_MODULE,
        bench_config.OAUTH2_PROXY_VERSION,
        binary.parent,
        binary.name,
    )
    say(f"    oauth2-proxy {bench_config.OAUTH2_PROXY_VERSION} -> {binary}")
    return binary


def _link(binary: Path) -> None:
    """Point ``BIN/vegeta`` at the pinned binary (atomically), for use by hand."""
    link = bench_config.VEGETA_LINK
    if link.is_symlink() and os.readlink(link) == binary.name:
        return
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(binary.name)
    os.replace(tmp, link)
