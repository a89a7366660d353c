"""The unprivileged accounts the request path runs as (when the bring-up runs as root).

* ``config.GATEWAY_GROUP`` (``zt-gateway``): the group of the verifier's and the
  API's unix sockets (0660). Only nginx's workers are in it, so nothing else on
  the machine can connect — not even ``www-data``, Debian's default nginx user.
* ``config.NGINX_USER`` (``zt-nginx``, primary group ``zt-gateway``): nginx's
  worker processes (the master stays root to bind the port and read the keys).
* ``config.SERVICE_USER`` (``zt-service``, its own group): the gunicorn workers of
  the verifier and the API (``--user/--group``; the master stays root to bind the
  socket). It owns exactly what they write (the audit and request logs) and the
  identity-assertion key; everything else they read is world-readable config.
* ``config.POSTGRES_USER`` (``zt-postgres``, its own group; the HA profile only):
  PostgreSQL, which refuses to run as root; it owns the data directory (0700).
* ``config.AUDIT_USER`` (``zt-audit``, its own group): the second audit sink
  (``zt audit-sink``, scripts/services/auditsink.py). It owns the sink's folder
  (0700) and file (0600), so the verifier's user can send it lines but never
  change one it kept.
* ``config.PROMETHEUS_USER`` (``zt-prometheus``, its own group): Prometheus, started
  through ``setpriv`` (it has no flag to drop privileges). It writes only its data
  folder; its config and rules are root's, readable through its group.

System accounts (``--system``), no home, no login shell; created once, idempotent.
Not root (a developer's own machine): nothing is created and every process runs
as the invoking user, with sockets 0600.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from scripts import config
from scripts.steps import StepFailed, say

NOLOGIN = "/usr/sbin/nologin"


def privileged() -> bool:
    """True when processes can be started as other users (we run as root)."""
    return os.geteuid() == 0


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise StepFailed(f"{' '.join(argv)} failed: {proc.stderr.strip()}")


def ensure() -> None:
    """Create the group and users if missing (root only; a no-op otherwise)."""
    if not privileged():
        return
    if not _group_exists(config.GATEWAY_GROUP):
        _run(["groupadd", "--system", config.GATEWAY_GROUP])
        say(f"    created group {config.GATEWAY_GROUP}")
    common = ["--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", NOLOGIN]
    if not _user_exists(config.NGINX_USER):
        _run(["useradd", *common, "--gid", config.GATEWAY_GROUP, config.NGINX_USER])
        say(f"    created user {config.NGINX_USER} (nginx workers)")
    if not _user_exists(config.SERVICE_USER):
        _run(["useradd", *common, "--user-group", config.SERVICE_USER])
        say(f"    created user {config.SERVICE_USER} (verifier and API workers)")
    if not _user_exists(config.AUDIT_USER):
        _run(["useradd", *common, "--user-group", config.AUDIT_USER])
        say(f"    created user {config.AUDIT_USER} (the second audit sink)")
    if not _user_exists(config.PROMETHEUS_USER):
        _run(["useradd", *common, "--user-group", config.PROMETHEUS_USER])
        say(f"    created user {config.PROMETHEUS_USER} (Prometheus)")
    if config.HA_KEYCLOAK and not _user_exists(config.POSTGRES_USER):
        _run(["useradd", *common, "--user-group", config.POSTGRES_USER])
        say(f"    created user {config.POSTGRES_USER} (PostgreSQL, the HA profile)")


def run_as(user: str) -> list[str]:
    """The argv prefix that starts a program as ``user`` (uid, its group, no other
    groups) when we are root: for programs with no privilege drop of their own."""
    if not privileged():
        return []
    entry = pwd.getpwnam(user)
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"]


def folder_for(path: Path, user: str, mode: int, *, group_only: bool = False) -> None:
    """``path`` (created if missing) for ``user``: theirs with ``mode``, or, with
    ``group_only``, root's in their group (they read it, cannot change it)."""
    path.mkdir(parents=True, exist_ok=True)
    if privileged():
        if group_only:
            shutil.chown(path, user="root", group=user)
        else:
            shutil.chown(path, user=user, group=user)
    os.chmod(path, mode)


def give_to_service(path: Path, mode: int) -> None:
    """Make ``path`` (an existing file) the service user's, with ``mode``."""
    if privileged():
        shutil.chown(path, user=config.SERVICE_USER, group=config.SERVICE_USER)
    os.chmod(path, mode)


def nginx_workers_folder(path: Path) -> None:
    """A folder only nginx's workers (and root) may enter: created if missing, 0700."""
    path.mkdir(parents=True, exist_ok=True)
    if privileged():
        shutil.chown(path, user=config.NGINX_USER, group=config.GATEWAY_GROUP)
    os.chmod(path, 0o700)


def service_folder(path: Path) -> None:
    """A folder the services write files in: created if missing, theirs, 0700."""
    path.mkdir(parents=True, exist_ok=True)
    if privileged():
        shutil.chown(path, user=config.SERVICE_USER, group=config.SERVICE_USER)
    os.chmod(path, 0o700)


def service_file(path: Path) -> None:
    """A file the services append to (a log): created if missing, theirs, 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    give_to_service(path, 0o600)


def owned_by_nginx_workers(folder: Path) -> bool:
    """True when ``folder`` and the folders directly in it belong to the user nginx's
    workers run as (nginx creates a cache's level folders as its workers)."""
    expected = pwd.getpwnam(config.NGINX_USER).pw_uid if privileged() else os.geteuid()
    return all(p.stat().st_uid == expected for p in (folder, *folder.iterdir()))


def gunicorn_args() -> list[str]:
    """gunicorn's flags for the workers' user and the socket's group and mode."""
    if privileged():
        return [
            "--user",
            config.SERVICE_USER,
            "--group",
            config.GATEWAY_GROUP,
            "--umask",
            "0o117",  # socket srw-rw---- service:zt-gateway
        ]
    return ["--umask", "0o177"]


def nginx_user_directive() -> str:
    """nginx.conf's first line when the master runs as root, else nothing."""
    if privileged():
        return f"user {config.NGINX_USER} {config.GATEWAY_GROUP};\n"
    return ""
