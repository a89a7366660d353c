"""The benchmark's own nginx instances, started and stopped by pid file.

The shared stack's nginx (:8444) is never reloaded or stopped: other engineers
test against it. A run starts two instances of its own on loopback, each from
a template rendered into ``.state/bench/<name>/`` and checked with ``nginx -t``
before it starts (as ``scripts/services/nginx.py`` does):

* ``compare`` (``bench/nginx.conf.tmpl``): the ceiling and baseline servers;
* ``full`` (``nginx/nginx.conf.tmpl``, the production template, rendered
  verbatim on another port) with the decision cache OFF: the full chain.
  Its own instance, not :8444, so a concurrent test's reload cannot cut a
  run's connections and a run does not flood the shared access log;
* ``full-cached``: the same template with the decision cache ON (its own
  cache folder and key snippet under ``.state/bench/full-cached``);
* ``full-granian``: the same template, decision cache off, whose verifier upstream
  is the bench's granian verifier (``bench.levers``, scenario 8);
* ``full-cached-tmpfs``: ``full-cached`` with the cache's files in ``/dev/shm``
  (scenario 10: a miss writes a file from nginx's event loop; in memory, no disk).

The ``compare`` instance also serves the peer (scenario 6): the baseline with
oauth2-proxy (``bench.peer``) in the ``auth_request`` slot.

The full-chain instances proxy to the shared verifier and API sockets
(read-only use). The baseline has no verifier, so no identity assertion, which
the shared API refuses: it proxies to an API of its own (``BENCH_API``: the same
app, gunicorn flags and request log, started with the bench-only
``ZT_API_INSECURE_SKIP_ASSERTION=1``) on ``.state/bench/api/api.sock``. Each
instance's pid and kernel start time are recorded, so a later run can stop an
instance a crashed run left behind, and nothing else (never pkill/killall).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from bench import config as bench_config
from bench import levers, peer
from scripts import config
from scripts.services import accounts, apps, nginx, procs, unixhttp
from scripts.steps import say, wait_until

PRODUCTION_TEMPLATE = nginx.NGINX_TEMPLATE
# Lines of the production template the comparison template must repeat, so the
# scenarios differ only in their `location /` (see bench/nginx.conf.tmpl).
_PARITY_PREFIXES = (
    "ssl_",
    "worker_",
    "keepalive",
    "client_",
    "large_client_",
    "log_format",
    "access_log",
    "error_log",
    "server_tokens",
    "uninitialized_variable_warn",
)


@dataclass(frozen=True)
class Instance:
    """One nginx master of ours: its template, folder and loopback ports."""

    name: str
    template: Path
    ports: tuple[int, ...]
    authz_cache: bool = False
    verifier_socket: Path | None = None  # None: the stack's verifier
    tmpfs_cache: bool = False  # the decision cache's files on tmpfs, not in its folder

    @property
    def folder(self) -> Path:
        return bench_config.BENCH_DIR / self.name

    @property
    def conf(self) -> Path:
        return self.folder / "nginx.conf"

    @property
    def logs(self) -> Path:
        return self.folder / "logs"

    @property
    def service(self) -> config.Service:
        """Tracked like the stack's own processes (pid + start time), in our folder."""
        return config.Service("nginx", None, run_dir=self.folder, log_dir=self.logs)


COMPARE = Instance(
    "compare",
    bench_config.COMPARE_TEMPLATE,
    (
        bench_config.CEILING_PORT,
        bench_config.BASELINE_PORT,
        bench_config.RESUMABLE_PORT,
        bench_config.PEER_PORT,
    ),
)
FULL = Instance("full", PRODUCTION_TEMPLATE, (bench_config.FULL_CHAIN_PORT,))
FULL_CACHED = Instance(
    "full-cached", PRODUCTION_TEMPLATE, (bench_config.FULL_CHAIN_CACHED_PORT,), authz_cache=True
)
FULL_GRANIAN = Instance(
    "full-granian",
    PRODUCTION_TEMPLATE,
    (bench_config.FULL_CHAIN_GRANIAN_PORT,),
    verifier_socket=levers.GRANIAN_SOCKET,
)
FULL_CACHED_TMPFS = Instance(
    "full-cached-tmpfs",
    PRODUCTION_TEMPLATE,
    (bench_config.FULL_CHAIN_CACHED_TMPFS_PORT,),
    authz_cache=True,
    tmpfs_cache=True,
)
INSTANCES = (COMPARE, FULL, FULL_CACHED, FULL_GRANIAN, FULL_CACHED_TMPFS)
LEVER_INSTANCES = (FULL_GRANIAN, FULL_CACHED_TMPFS)  # skipped by --no-levers


BENCH_API = config.Service("api", None, run_dir=bench_config.BENCH_DIR / "api")
BENCH_API_SOCKET = BENCH_API.run_dir / "api.sock"


def _start_bench_app(
    svc: config.Service,
    socket: Path,
    what: str,
    env: dict[str, str],
    target: str,
    *extra: str,
    worker_class: str = "gthread",
) -> int:
    """One of the benchmark's own gunicorn apps (one a crashed run left is stopped
    first); returns its pid once it answers ``/healthz``."""
    procs.stop(svc)
    svc.run_dir.mkdir(parents=True, exist_ok=True)
    apps.start_gunicorn(svc, socket, target, env, *extra, worker_class=worker_class)
    wait_until(
        what,
        lambda: procs.alive_or_fail(svc) and unixhttp.answers(socket),
        60,
        str(svc.log_file),
        interval=0.1,
    )
    pid = procs.running(svc)
    assert pid is not None
    return pid


def start_api() -> int:
    """The baseline's own API (no assertion check)."""
    request_log = BENCH_API.run_dir / "api-requests.log"
    request_log.parent.mkdir(parents=True, exist_ok=True)
    request_log.unlink(missing_ok=True)
    accounts.service_file(request_log)
    env = {"ZT_API_INSECURE_SKIP_ASSERTION": "1", "ZT_API_REQUEST_LOG": str(request_log)}
    return _start_bench_app(
        BENCH_API,
        BENCH_API_SOCKET,
        "bench API (baseline, no assertion check)",
        env,
        apps.API.target,
        *apps.API.extra,  # the same gunicorn flags as the stack's API (stock parser)
    )


def _values(instance: Instance) -> dict[str, object]:
    """Every placeholder either template uses: the stack's, with this instance's folders
    (the compare instance's baseline proxies to the bench's own API)."""
    api: dict[str, object] = {"api_socket": BENCH_API_SOCKET} if instance is COMPARE else {}
    if instance.verifier_socket is not None:
        api["verifier_socket"] = instance.verifier_socket
    return nginx.nginx_values(
        nginx.authz_cache_values(
            instance.authz_cache,
            _tmpfs.get(instance.name, instance.folder / "cache"),
            instance.folder / "authz-cache.conf",
        ),
        run_dir=instance.folder,
        log_dir=instance.logs,
        tmp_dir=instance.folder / "tmp",
        port=instance.ports[0],  # the production template's one listener
        health_port=instance.ports[0] + bench_config.HEALTH_PORT_OFFSET,  # and its /healthz
        ceiling_port=bench_config.CEILING_PORT,
        baseline_port=bench_config.BASELINE_PORT,
        resumable_port=bench_config.RESUMABLE_PORT,
        peer_port=bench_config.PEER_PORT,
        peer_socket=peer.PEER_SOCKET,
        **api,
    )


# Per run: instance name -> its decision cache folder inside a fresh tmpfs folder.
_tmpfs: dict[str, Path] = {}


def render(instance: Instance) -> None:
    """Render ``instance``'s template and have ``nginx -t`` accept it."""
    instance.logs.mkdir(parents=True, exist_ok=True)
    if instance.tmpfs_cache and instance.name not in _tmpfs:
        # A random name made by us (0700, opened to traversal only): nobody can have
        # placed anything there. nginx makes the cache folder inside, owned by its workers.
        parent = Path(tempfile.mkdtemp(prefix="zt-bench-authz-", dir=bench_config.TMPFS))
        parent.chmod(0o711)
        _tmpfs[instance.name] = parent / "cache"
    nginx.render_nginx(instance.template, _values(instance), instance.conf)


def parity_gaps() -> list[str]:
    """Production-template lines (TLS, workers, logging, limits) the comparison lacks.

    An empty list means the ceiling/baseline servers run with the production
    settings; anything listed makes the 3/2 ratio measure more than the
    auth_request and is printed with the results.
    """

    def lines(path: Path) -> set[str]:
        found = set()
        for raw in path.read_text().splitlines():
            line = re.sub(r"\s+", " ", raw.split("#", 1)[0]).strip()
            if line.startswith(_PARITY_PREFIXES):
                found.add(line)
        return found

    return sorted(lines(PRODUCTION_TEMPLATE) - lines(bench_config.COMPARE_TEMPLATE))


def start(instance: Instance) -> int:
    """Render, test and start ``instance``; return once it answers TLS on every port."""
    stop(instance)  # one a crashed run left behind, identified by pid + start time
    for port in instance.ports:
        procs.require_free_port(port, f"the benchmark's nginx ({instance.name})")
    for old in instance.logs.glob("*.log") if instance.logs.exists() else ():
        old.unlink()  # each run's logs only; they grow by one line per request
    render(instance)
    # Own session (procs.start): ctrl-C reaches the harness, whose finally stops it.
    pid = procs.start(instance.service, ["nginx", "-c", str(instance.conf)])
    for port in instance.ports:
        wait_until(
            f"bench nginx {instance.name} on 127.0.0.1:{port}",
            lambda port=port: procs.alive_or_fail(instance.service) and _refuses_without_cert(port),
            15,
            str(instance.logs / "nginx-error.log"),
            interval=0.1,
        )
    return pid


def _refuses_without_cert(port: int) -> bool:
    """Up means: TLS answers and a request without a client certificate gets 400."""
    try:
        r = requests.get(
            f"https://localhost:{port}/", verify=str(config.SERVER_CA_BUNDLE), timeout=2
        )
    except requests.RequestException:
        return False
    return r.status_code == 400


def stop(instance: Instance, timeout: float = 10.0) -> bool:
    """Graceful stop (SIGQUIT: workers finish their requests), SIGKILL after ``timeout``."""
    return procs.stop(instance.service, timeout, sig=signal.SIGQUIT)


@contextlib.contextmanager
def running(
    instances: tuple[Instance, ...] = INSTANCES,
    peer_binary: Path | None = None,
) -> Iterator[dict[str, int]]:
    """Start ``instances`` (and the baseline's API; oauth2-proxy from ``peer_binary``
    if given; the granian verifier if ``FULL_GRANIAN`` is one of them) for the body of
    a ``with``; always stop them after. Yields pids by instance name, ``api`` for the
    bench API, ``oauth2-proxy`` and ``verifier-granian``."""
    pids: dict[str, int] = {}
    try:
        if COMPARE in instances:
            pids["api"] = start_api()
            say(f"    bench API (baseline): pid {pids['api']}, {BENCH_API_SOCKET}")
        if peer_binary is not None:
            pids["oauth2-proxy"] = peer.start(peer_binary)
            say(f"    oauth2-proxy (peer): pid {pids['oauth2-proxy']}, {peer.PEER_SOCKET}")
        if FULL_GRANIAN in instances:
            pids["verifier-granian"] = levers.start()
            say(f"    verifier on granian: pid {pids['verifier-granian']}, {levers.GRANIAN_SOCKET}")
        for instance in instances:
            pids[instance.name] = start(instance)
            say(f"    bench nginx {instance.name}: pid {pids[instance.name]}, {instance.conf}")
        yield pids
    finally:
        for instance in reversed(instances):
            if stop(instance):
                say(f"    bench nginx {instance.name} stopped")
            # One line per request (tens of MB a run); the error log is kept.
            (instance.logs / "nginx-access.log").unlink(missing_ok=True)
            if instance.name in _tmpfs:  # memory, not disk: not kept
                shutil.rmtree(_tmpfs.pop(instance.name).parent, ignore_errors=True)
        if procs.stop(BENCH_API):
            say("    bench API stopped")
        if peer.stop():
            say("    oauth2-proxy stopped")
        if levers.stop():
            say("    verifier on granian stopped")
        (BENCH_API.run_dir / "api-requests.log").unlink(missing_ok=True)
