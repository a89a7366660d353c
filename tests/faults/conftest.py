"""Fixtures for the fault suite: the attack suite's stack, tokens and log windows,
plus helpers to find the stack's processes by pid file (never by name).

Every fault test breaks one real part of the running stack and restores it in a
``finally`` (``scripts.zt up`` is idempotent), then proves a normal call works.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import requests

from client.api import reload_safe_adapter
from scripts import config, procs
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


def children(pid: int) -> set[int]:
    """Direct children of ``pid`` (gunicorn's workers, nginx's workers)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(c) for c in text.split()}


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


class Load:
    """A bounded request loop through the gateway (as in tests/integration/test_rotation),
    with the client's retry of idempotent requests on a connection nginx closed.

    ``threads`` threads, each sending python-client's GET /api/resource every
    ``interval`` seconds for ``seconds`` seconds; outcomes counted by status.
    """

    def __init__(self, token: str, seconds: float, threads: int = 3, interval: float = 0.05):
        self.token = token
        self.seconds = seconds
        self.interval = interval
        self.results: Counter[str] = Counter()
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        s = requests.Session()
        s.mount("https://", reload_safe_adapter())  # as every client of ours does
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            try:
                r = s.get(
                    config.GATEWAY_URL + "/api/resource?fault=load",
                    cert=cert_of("python-client"),
                    headers=bearer(self.token),
                    verify=str(config.SERVER_CA_BUNDLE),
                    timeout=10,
                )
                outcome = str(r.status_code)
                detail = "" if r.status_code == 200 else f"{r.status_code} {r.text[:100]}"
            except requests.RequestException as e:
                outcome, detail = "exception", repr(e)[:200]
            with self._lock:
                self.results[outcome] += 1
                if detail:
                    self.errors.append(detail)
            time.sleep(self.interval)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for t in self._threads:
            t.join(timeout=self.seconds + 30)

    @property
    def total(self) -> int:
        return sum(self.results.values())

    @property
    def failed(self) -> int:
        return sum(n for k, n in self.results.items() if k != "200")
