"""The request path's Python services — the verifier and the API — under gunicorn.

Each is an ``App``: a gunicorn master on a unix socket of its own, reached through a
stable path (``config.VERIFIER_SOCKET``, ``config.API_SOCKET``): a symlink to the
socket of the master serving now, which is what nginx and every tool connect to.

``converge(app, reload_front)`` makes the running service match the checkout:

* not running: start it;
* running with the inputs it was started with — its argv, its environment, and the
  bytes of its code and of every file it reads at boot (the ``fingerprint``,
  recorded next to its pid file) — nothing happens;
* otherwise it is replaced, blue/green, so no request ever waits on a cold worker:
  1. a new master starts on a new socket; the step waits until **every** new worker
     has answered ``/healthz`` (the verifier's with Keycloak's keys loaded);
  2. the stable path is pointed at it and nginx is reloaded (``reload_front``): its
     new workers connect to the new master, its old ones finish their requests and
     close their upstream connections to the old one;
  3. the old master is stopped gracefully — no connection is left to it.

  A new master that does not come up (a refused setting, broken code) is stopped,
  the old one keeps serving, and the error quotes its log. ``reload_verifier``
  (a client-CA rollover) is the same replacement, forced.

The verifier's policy is installed, not read from the checkout: ``install_policy``
checks ``verifier/policy.json`` with the verifier's strict loader and copies it to
``config.INSTALLED_POLICY``; a policy that does not load is refused with every
problem listed and the running verifier keeps the one it has. A raw ``kill -HUP``
of a master (gunicorn re-forks its workers) reads only installed, valid files.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from scripts import config
from scripts.files import read_json, write_atomic, write_secret
from scripts.services import accounts, lockout, procs, unixhttp
from scripts.steps import StepFailed, say, wait_until
from verifier.policy import load_policy
from verifier.promexport import MULTIPROC_ENV

GUNICORN = Path(sys.prefix) / "bin" / "gunicorn"
# A service's settings come from its ``env`` only: an operator's shell exporting
# ZT_VERIFIER_LEEWAY_SECONDS must not change (or break) the gateway it starts.
SETTINGS_PREFIXES = ("ZT_VERIFIER_", "ZT_API_")
READY_SECONDS = 60


def gunicorn_argv(
    socket: Path,
    target: str,
    *extra: str,
    worker_class: str = "gthread",
    access_log: bool = True,
) -> list[str]:
    """gunicorn's command line for ``target`` on ``socket`` (no environment in it)."""
    return [
        str(GUNICORN),
        "--bind",
        f"unix:{socket}",
        "--workers",
        str(config.GUNICORN_WORKERS),
        # Keep-alive: nginx's upstream keepalive pools reuse the unix-socket
        # connections (the sync worker answers Connection: close).
        "--worker-class",
        worker_class,
        # gthread's pool: threads overlap socket I/O per worker.
        *(["--threads", str(config.GUNICORN_THREADS)] if worker_class == "gthread" else []),
        "--keep-alive",
        "30",
        "--timeout",
        "30",
        "--graceful-timeout",
        "10",
        "--error-logfile",
        "-",
        # Error and access logs as JSON lines, into the service's log file (verifier/jsonlog.py).
        *(["--access-logfile", "-"] if access_log else []),
        "--logger-class",
        "verifier.jsonlog.JsonLogger",
        # gunicorn 27's control socket defaults to ~/.gunicorn/gunicorn.ctl,
        # shared by every gunicorn of this user; we manage ours by pid file.
        "--no-control-socket",
        # Prometheus multiprocess mode: empty the master's folder as it starts, drop a
        # dead worker's live gauges (a no-op without PROMETHEUS_MULTIPROC_DIR).
        "--config",
        "python:verifier.gunicorn_conf",
        *accounts.gunicorn_args(),
        *extra,
        target,
    ]


def start_gunicorn(
    svc: config.Service,
    socket: Path,
    target: str,
    env: dict[str, str],
    *extra: str,
    worker_class: str = "gthread",
) -> int:
    """Start a gunicorn master for ``target`` on ``socket`` (recorded as ``svc``)."""
    socket.unlink(missing_ok=True)
    argv = gunicorn_argv(socket, target, *extra, worker_class=worker_class)
    return procs.start(svc, argv, env=env, cwd=config.REPO, not_inherited=SETTINGS_PREFIXES)


# --- what the two services are ------------------------------------------------------


def assertion_key() -> Path:
    """The identity-assertion key: generated at first start, the services' own, 0600."""
    if not config.ASSERTION_KEY.exists():
        write_secret(config.ASSERTION_KEY, secrets.token_hex(32) + "\n")
    config.ASSERTION_KEY.parent.chmod(0o755)  # the service user must reach its key
    accounts.give_to_service(config.ASSERTION_KEY, 0o600)
    return config.ASSERTION_KEY


def verifier_env() -> dict[str, str]:
    """The verifier's ``ZT_VERIFIER_*`` settings, from Terraform's outputs and the layout."""
    identity = read_json(config.IDENTITY_OUTPUTS)
    return {
        "ZT_VERIFIER_ISSUER": identity["issuer"],
        "ZT_VERIFIER_AUDIENCE": identity["api_client_id"],
        "ZT_VERIFIER_JWKS_URL": identity["jwks_uri"],
        "ZT_VERIFIER_JWKS_CA_BUNDLE": str(config.SERVER_CA_BUNDLE),
        "ZT_VERIFIER_CLIENT_CA_CERT": str(config.CLIENT_ISSUING_CA),
        "ZT_VERIFIER_CLIENT_CRL": str(config.CLIENT_CRL),
        "ZT_VERIFIER_AUDIT_LOG": str(config.AUDIT_LOG),
        "ZT_VERIFIER_AUDIT_SINK_SOCKET": str(config.AUDIT_SINK_SOCKET),
        "ZT_VERIFIER_POLICY_PATH": str(config.INSTALLED_POLICY),
        "ZT_VERIFIER_ASSERTION_KEY_FILE": str(config.ASSERTION_KEY),
        # How long nginx's decision cache may keep an allow (X-Accel-Expires);
        # whether nginx caches at all is `zt authz-cache on|off`.
        "ZT_VERIFIER_DECISION_CACHE_SECONDS": str(config.AUTHZ_CACHE_MAX_SECONDS),
        "ZT_VERIFIER_MAX_TOKEN_LIFETIME_SECONDS": str(
            max(3600, int(identity["access_token_lifespan_seconds"]))
        ),
        # Refused tokens per certificate: its folder, and the numbers `zt lockout` saved.
        **lockout.verifier_env(),
    }


def api_env() -> dict[str, str]:
    return {
        "ZT_API_ASSERTION_KEY_FILE": str(config.ASSERTION_KEY),
        "ZT_API_REQUEST_LOG": str(config.API_REQUEST_LOG),
    }


def install_policy() -> Path:
    """Check ``verifier/policy.json`` with the verifier's own loader and install it.

    Raises ``StepFailed`` listing every problem; the installed copy (and so the
    running verifier) is untouched then.
    """
    try:
        load_policy(str(config.VERIFIER_POLICY))
    except (ValueError, OSError) as e:
        raise StepFailed(
            f"{config.VERIFIER_POLICY} was not applied; the running verifier keeps its policy:\n{e}"
        ) from e
    text = config.VERIFIER_POLICY.read_bytes()
    if not config.INSTALLED_POLICY.exists() or config.INSTALLED_POLICY.read_bytes() != text:
        write_atomic(config.INSTALLED_POLICY, text)
    return config.INSTALLED_POLICY


def metrics_env(socket: Path) -> dict[str, str]:
    """The master on ``socket``'s own Prometheus multiprocess folder: two masters
    (blue/green) never share one; ``verifier.gunicorn_conf`` empties it at start."""
    return {MULTIPROC_ENV: str(config.METRICS_DIR / socket.stem)}


def _code(*folders: str) -> Callable[[], list[Path]]:
    return lambda: sorted(p for f in folders for p in (config.REPO / f).glob("*.py"))


@dataclass(frozen=True)
class App:
    """A gunicorn service behind nginx, and everything its running version rests on."""

    svc: config.Service
    stable_socket: Path
    target: str
    env: Callable[[], dict[str, str]]
    inputs: Callable[[], list[Path]]
    """Files whose bytes the running version depends on (code, files read at boot)."""
    prepare: Callable[[], object] = lambda: None
    """Run before (re)starting: install files the service reads, make its logs."""
    extra: tuple[str, ...] = ()
    worker_class: str = "gthread"
    health: str = "/healthz"
    access_log: bool = True
    """gunicorn's access log; off for the verifier, whose every answer is an audit line."""

    def argv(self, socket: Path) -> list[str]:
        return gunicorn_argv(
            socket,
            self.target,
            *self.extra,
            worker_class=self.worker_class,
            access_log=self.access_log,
        )

    @property
    def fingerprint_file(self) -> Path:
        return self.svc.run_dir / f"{self.svc.name}.fingerprint"

    @property
    def retired(self) -> config.Service:
        """Where the old master is recorded while a replacement starts."""
        return config.Service(
            f"{self.svc.name}.retired",
            None,
            self.svc.run_dir,
            self.svc.log_dir,
            supervised=self.svc.supervised,
        )


def _prepare_verifier() -> None:
    install_policy()
    assertion_key()
    accounts.service_file(config.AUDIT_LOG)
    lockout.prepare_folder()


def _prepare_api() -> None:
    assertion_key()
    accounts.service_file(config.API_REQUEST_LOG)


VERIFIER = App(
    svc=config.VERIFIER,
    stable_socket=config.VERIFIER_SOCKET,
    target="verifier.app:create_app()",
    env=verifier_env,
    inputs=lambda: [
        *_code("verifier")(),
        config.INSTALLED_POLICY,
        config.CLIENT_ISSUING_CA,  # parsed into the settings at boot
        config.ASSERTION_KEY,
    ],
    prepare=_prepare_verifier,
    # A token at the verifier's 8 KiB limit plus "Bearer " exceeds gunicorn's default
    # 8190-byte header field limit; raise it so the verifier (not gunicorn) refuses
    # oversized tokens with its own reason code.
    # gunicorn_h1c's C parser (picohttpparser) instead of gunicorn's pure-Python one:
    # ~24 us less per subrequest in-process (docs/benchmarks.md, "Issue 20, round 2");
    # "fast", not "auto": a venv without it fails the start instead of running slower.
    extra=("--limit-request-field_size", "16384", "--http-parser", "fast"),
    # No access line per subrequest: the audit line already records each one (request
    # id, decision, latency), and the access line went through supervisord's pipe too
    # (make bench: see docs/benchmarks.md, "issue 18's cost").
    access_log=False,
)
API = App(
    svc=config.API,
    stable_socket=config.API_SOCKET,
    target="api.app:create_app()",
    env=api_env,
    inputs=lambda: [
        *_code("api")(),
        config.REPO / "verifier" / "assertion.py",  # the API checks assertions with it
        config.REPO / "verifier" / "promexport.py",  # and serves its metrics with these
        config.REPO / "verifier" / "gunicorn_conf.py",
        config.REPO / "verifier" / "jsonlog.py",  # its gunicorn's logger class
        config.ASSERTION_KEY,
    ],
    prepare=_prepare_api,
    # The API stands for the user's own service and is the benchmark's baseline: stock
    # gunicorn, so its pure-Python parser even though the venv has the verifier's C one.
    extra=("--http-parser", "python"),
)
APPS = (VERIFIER, API)


# --- converge -------------------------------------------------------------------------


def fingerprint(app: App) -> str:
    """A digest of what the running version rests on: argv shape, environment, files."""
    digest = hashlib.sha256()
    digest.update(json.dumps(app.argv(Path("<socket>"))).encode())
    digest.update(json.dumps(app.env(), sort_keys=True).encode())
    for path in app.inputs():
        digest.update(str(path).encode() + b"\0")
        digest.update(path.read_bytes() if path.exists() else b"<missing>")
    return digest.hexdigest()


def converge(app: App, reload_front: Callable[[], None]) -> str:
    """Start, replace or leave ``app`` so it runs the checkout; returns what it did."""
    procs.stop(app.retired)  # a replacement a crash interrupted
    app.prepare()
    wanted = fingerprint(app)
    running = procs.running(app.svc) is not None
    if running and _recorded(app) == wanted and unixhttp.answers(app.stable_socket, app.health):
        return "unchanged"
    if running:
        replace(app, reload_front, wanted)
        return "reloaded (blue/green)"
    _start(app, wanted)
    return "started"


def reload(app: App, reload_front: Callable[[], None]) -> None:
    """Replace the running ``app`` even if nothing changed (new trust files, say)."""
    app.prepare()
    replace(app, reload_front, fingerprint(app))


def _recorded(app: App) -> str | None:
    try:
        return app.fingerprint_file.read_text().strip()
    except OSError:
        return None


def _new_socket(app: App) -> Path:
    return app.svc.run_dir / f"{app.svc.name}-{secrets.token_hex(4)}.sock"


def _point(stable: Path, socket: Path) -> None:
    """Make ``stable`` a symlink to ``socket`` in one rename (a reader sees old or new)."""
    link = stable.with_name(stable.name + ".link")
    link.unlink(missing_ok=True)
    os.symlink(socket.name, link)
    os.replace(link, stable)


def _spawn(app: App, socket: Path) -> None:
    """A new master on ``socket``, as supervisord program ``<name>-<token>`` (the
    socket's name): a master killed outright comes back on the same socket."""
    procs.start(
        app.svc,
        app.argv(socket),
        env={**app.env(), **metrics_env(socket)},
        cwd=config.REPO,
        not_inherited=SETTINGS_PREFIXES,
        as_program=socket.stem,
    )


def _sweep_sockets(app: App, serving: Path) -> None:
    """Remove the sockets of masters that are gone (one killed outright cannot
    unlink its own); only ``<name>-*.sock`` in our run folder, never ``serving``."""
    for stale in app.svc.run_dir.glob(f"{app.svc.name}-*.sock"):
        if stale != serving:
            stale.unlink(missing_ok=True)
    for folder in config.METRICS_DIR.glob(f"{app.svc.name}-*"):  # their metrics too
        if folder.name != serving.stem:
            shutil.rmtree(folder, ignore_errors=True)


def _start(app: App, wanted: str) -> None:
    socket = _new_socket(app)
    _spawn(app, socket)
    _wait_ready(app, socket)
    _point(app.stable_socket, socket)
    _sweep_sockets(app, socket)
    write_atomic(app.fingerprint_file, wanted + "\n")


def replace(app: App, reload_front: Callable[[], None], wanted: str) -> None:
    """Blue/green: new master ready, nginx switched and drained, old master stopped."""
    retired = procs.retire(app.svc, app.retired)
    socket = _new_socket(app)
    try:
        _spawn(app, socket)
        _wait_ready(app, socket)
    except StepFailed:
        procs.stop(app.svc)
        socket.unlink(missing_ok=True)
        procs.retire(retired, app.svc)  # the old master is the service again
        raise
    _point(app.stable_socket, socket)
    reload_front()  # nginx's old workers drain their connections to the old master
    procs.stop(retired)
    # A master started before this layout was bound to the stable path itself and
    # unlinks it as it exits: point it at the new master again (a no-op otherwise).
    _point(app.stable_socket, socket)
    _sweep_sockets(app, socket)
    write_atomic(app.fingerprint_file, wanted + "\n")


PROBES_PER_ROUND = 4  # concurrent connections, so every idle worker gets to accept one


def _wait_ready(app: App, socket: Path) -> None:
    """Until every worker of the new master has answered ``app.health`` itself
    (each answer names its worker's pid)."""
    answered: set[int] = set()
    started = time.monotonic()

    def probe(_: int) -> int | None:
        try:
            answer = unixhttp.request(socket, "GET", app.health)
        except OSError:
            return None
        return json.loads(answer.body).get("pid") if answer.status == 200 else None

    def ready() -> bool:
        procs.alive_or_fail(app.svc)
        pid = procs.running(app.svc)
        workers = procs.children(pid) if pid else set()
        with ThreadPoolExecutor(PROBES_PER_ROUND) as pool:
            answered.update(p for p in pool.map(probe, range(PROBES_PER_ROUND)) if p)
        return len(workers) >= config.GUNICORN_WORKERS and workers <= answered

    wait_until(
        f"{app.svc.name}: every new worker answering {app.health}",
        ready,
        READY_SECONDS,
        str(app.svc.log_file),
        interval=0.05,
    )
    say(f"    {app.svc.name}: workers ready in {time.monotonic() - started:.1f}s")
