"""Fixtures for the fault suite: the attack suite's stack, tokens and log windows,
plus helpers to find the stack's processes by pid file (never by name).

Every fault test breaks one real part of the running stack and restores it in a
``finally`` (``scripts.zt up`` is idempotent), then proves a normal call works.
"""

from __future__ import annotations

import time

from scripts import config
from scripts.services import procs
from tests.attacks.conftest import (  # noqa: F401  (fixtures re-exported for this suite)
    _sigpipe_stays_ignored,
    bearer,
    call,
    cert_of,
    identity,
    keycloak_admin,
    log_since,
    stack,
    token_for,
)
from tests.load import Load


def children(pid: int) -> set[int]:
    """Direct children of ``pid`` (gunicorn's workers, nginx's workers)."""
    return procs.children(pid)


def service_pid(svc: config.Service) -> int:
    pid = procs.running(svc)
    assert pid is not None, f"{svc.name} is not running"
    return pid


def wait_for(predicate, seconds: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def load(token: str, seconds: float, threads: int = 3, interval: float = 0.05) -> Load:
    """python-client's GET /api/resource in a bounded loop (``tests.load.Load``)."""
    return Load.with_token(
        lambda: token,
        cert_of("python-client"),
        path="/api/resource?fault=load",
        seconds=seconds,
        threads=threads,
        interval=interval,
    )
