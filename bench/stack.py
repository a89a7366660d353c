"""The shared stack as the benchmark sees it: its pids, its readiness, bounded waits.

The stack (``make up``) is shared with engineers whose fault tests stop,
restart and break its services on purpose. The benchmark reads it (pids from
``.state/run``, a request through each scenario) and waits for it to come
back, always within a budget; it never starts, stops or reloads it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from bench import config as bench_config
from bench import scenarios
from client.token import TokenError, TokenSource
from scripts import config
from scripts.services import procs
from scripts.steps import StepFailed, say, wait_until


def running_pids() -> dict[str, int]:
    """The recorded pids of the shared services running right now (never raises)."""
    pids = {svc.name: procs.running(svc) for svc in config.SERVICES}
    return {name: pid for name, pid in pids.items() if pid is not None}


def shared_pids() -> dict[str, int]:
    """The shared stack's recorded pids; StepFailed naming what is not running."""
    pids = running_pids()
    missing = [svc.name for svc in config.SERVICES if svc.name not in pids]
    if missing:
        raise StepFailed(f"not running: {', '.join(missing)}; start the stack with `make up`")
    return pids


def _answers(scenario: scenarios.Scenario, tokens: TokenSource) -> bool:
    """One request through ``scenario`` gets its expected status."""
    cert, key = config.client_cert_paths(bench_config.CLIENT_IDENTITY)
    try:
        shared_pids()
        r = requests.get(
            scenario.url,
            cert=(str(cert), str(key)),
            verify=str(config.SERVER_CA_BUNDLE),
            headers={"Authorization": f"Bearer {tokens.get()}"},
            timeout=5,
        )
    except (StepFailed, TokenError, requests.RequestException):
        return False
    return r.status_code == scenario.expected_status


class WaitBudget:
    """How long, in all, a run may wait for the shared stack to come back.

    Each wait is bounded (``STACK_WAIT_SECONDS``) and so is their sum
    (``TOTAL_WAIT_SECONDS``), so a stack that keeps being restarted fails
    the benchmark instead of stretching it without end.
    """

    def __init__(self, total: float = bench_config.TOTAL_WAIT_SECONDS) -> None:
        self.remaining = total

    def wait(self, what: str, check: Callable[[], bool], hint: str) -> None:
        """Return at once if ``check()``; else poll it within the remaining budget."""
        if check():
            return
        if self.remaining <= 0:
            raise StepFailed(
                f"{what}: the shared stack keeps being restarted (waited "
                f"{bench_config.TOTAL_WAIT_SECONDS:.0f} s in all); re-run `make bench` later"
            )
        say(f"    {what}: not yet (the shared stack restarted?); waiting")
        started = time.monotonic()
        try:
            wait_until(what, check, min(bench_config.STACK_WAIT_SECONDS, self.remaining), hint)
        finally:
            self.remaining -= time.monotonic() - started


def services_ready(tokens: TokenSource) -> bool:
    """Every shared service runs and Keycloak issues a token."""
    try:
        shared_pids()
        tokens.get()
    except (StepFailed, TokenError):
        return False
    return True


def wait_for_stack(scenario: scenarios.Scenario, tokens: TokenSource, budget: WaitBudget) -> None:
    """Return when ``scenario`` answers as expected; wait (bounded) while it does not."""
    budget.wait(
        f"{scenario.name} answering {scenario.expected_status}",
        lambda: _answers(scenario, tokens),
        f"{config.LOGS}/verifier.log and {config.AUDIT_LOG}",
    )
