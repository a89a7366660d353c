"""What the verifier's ``/healthz`` reports: can this worker decide, and record, now?

Why not "the process answers": a worker with no Keycloak keys refuses every
token (``jwks_unavailable``), one whose keys are past the hard maximum staleness
refuses every token (``jwks_stale``), one that cannot append to the audit log
refuses every request (``audit_unavailable``, 503), and so does one without a
usable client CRL (``crl_unavailable``, 503). Each still answered
``{"status":"ok"}`` before issue 17. Health is therefore the conjunction of:

* keys loaded (> 0) and fresh: last fetched successfully within
  ``JWKS_MAX_STALENESS_SECONDS`` (``KeyStatus.fresh``);
* the audit log configured and writable by this process (or, when missing,
  creatable: the writer opens it with ``O_CREAT``): a ``stat`` and an ``access``
  call, no line written (a probe is not a decision);
* a usable client CRL, not past its ``nextUpdate``: without one every request is
  refused (``crl_unavailable``, 503), so a worker in that state is not healthy;
* copies to the second audit sink succeeding (``verifier.auditsink``): a sink
  that is down never fails a decision, but the lines decided meanwhile exist only
  in the primary file, which an operator must hear about; the problem clears
  with the next copy that succeeds.

The report is plain data (a ``HealthReport``); the Flask adapter adds the worker's
``pid`` and picks 200 or 503.
"""

from __future__ import annotations

import os
from typing import TypedDict

from verifier.auditsink import SinkSender, SinkStatus
from verifier.decision import Decider
from verifier.errors import CrlUnavailable
from verifier.revocation import RevocationSource


class HealthReport(TypedDict):
    """The body of ``/healthz`` (without ``pid``)."""

    status: str
    """``ok`` or ``unhealthy``."""
    problems: list[str]
    """One line per reason the worker cannot decide or record; empty when ``ok``."""
    jwks_keys: int
    jwks_age_seconds: float | None
    jwks_max_staleness_seconds: float | None
    jwks_refreshing: bool
    jwks_last_error: str | None
    audit_log_writable: bool
    crl_next_update: float | None
    """The installed CRLs' earliest ``nextUpdate`` (epoch seconds); None when unusable."""
    audit_sink: SinkStatus | None
    """This worker's copies to the second audit sink; None when there is none."""


def audit_log_problem(path: str | None) -> str | None:
    """Why the audit log cannot take a line now, or None; no line is written."""
    if not path:
        return "no audit log configured"
    if os.path.lexists(path):
        if not os.path.isfile(path) or not os.access(path, os.W_OK):
            return f"audit log {path} is not a file this process can write"
        return None
    # The writer creates a missing file (O_CREAT: a rotated-away log comes back).
    folder = os.path.dirname(os.path.abspath(path))
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"audit log {path} does not exist and {folder} is not writable"
    return None


def crl_problem(revocation: RevocationSource, now: float) -> tuple[str | None, float | None]:
    """(Why no CRL can be checked now, or None; the earliest nextUpdate, if any)."""
    revocation.refresh_if_changed(now)
    try:
        next_update = revocation.snapshot().next_update
    except CrlUnavailable as e:
        return f"no usable client CRL: {e.detail}", None
    if next_update <= now:
        return f"the client CRL expired {now - next_update:.0f}s ago (nextUpdate passed)", (
            next_update
        )
    return None, next_update


def health_report(decider: Decider, now: float, *, sink: SinkSender | None = None) -> HealthReport:
    """The health of ``decider``'s key source, audit log and audit sink at ``now``."""
    keys = decider.keys.status(now)
    problems: list[str] = []
    if keys.keys == 0:
        problems.append(f"no JWKS keys loaded (last error: {keys.last_error})")
    elif not keys.fresh:
        problems.append(
            f"JWKS keys last fetched {keys.age_seconds:.0f}s ago, past the "
            f"{keys.max_staleness_seconds:g}s maximum staleness (last error: {keys.last_error})"
        )
    audit = audit_log_problem(decider.settings.audit_log)
    if audit is not None:
        problems.append(audit)
    crl, crl_next_update = crl_problem(decider.revocation, now)
    if crl is not None:
        problems.append(crl)
    sink_problem = sink.problem() if sink is not None else None
    if sink_problem is not None:
        problems.append(sink_problem)
    return HealthReport(
        status="unhealthy" if problems else "ok",
        problems=problems,
        jwks_keys=keys.keys,
        jwks_age_seconds=None if keys.age_seconds is None else round(keys.age_seconds, 1),
        jwks_max_staleness_seconds=keys.max_staleness_seconds,
        jwks_refreshing=keys.refreshing,
        jwks_last_error=keys.last_error,
        audit_log_writable=audit is None,
        crl_next_update=crl_next_update,
        audit_sink=sink.status() if sink is not None else None,
    )
