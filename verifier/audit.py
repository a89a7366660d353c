"""One audit record per decision, ALLOW and DENY alike.

Why a pure builder: the record is part of the decision's contract (tests
assert on it, the attack suite greps it), so it is built from the event and the
response only; writing it is the adapter's job (``verifier.auditlog``).

What is never in a record: the token, the Authorization header, the client
certificate PEM. Identity comes from the parsed certificate and the VERIFIED
claims only, so a forged token cannot write a chosen ``sub`` into the log: the
record's identity fields are the decision's ``Identity`` (``verifier.identity``),
under the same names as in ``X-Auth-Identity`` and the API's answer, empty
until proven. Attacker-influenced strings (path, method, request id, user
agent) are truncated; the client's W3C ``traceparent`` is recorded only when
valid, else as ``invalid`` (``verifier.tracecontext``), so a trace id joins this
line to the API's log and to the client's own trace.
"""

from __future__ import annotations

from datetime import UTC, datetime

from verifier.event import AuthorizerEvent
from verifier.identity import IdentityJSON
from verifier.response import AuthorizerResponse
from verifier.tracecontext import traceparent

MAX_FIELD_CHARS = 512


class AuditRecord(IdentityJSON):
    """The JSON line written for every decision: the request, the decision, the identity."""

    time: str
    request_id: str
    decision: str
    reason: str
    status: int
    detail: str
    method: str
    path: str
    client_addr: str
    user_agent: str
    traceparent: str
    """The client's W3C traceparent when valid, ``""`` when absent, ``invalid`` otherwise."""
    latency_ms: float


def audit_record(
    event: AuthorizerEvent, response: AuthorizerResponse, *, now: float, latency_ms: float
) -> AuditRecord:
    """The record of ``response`` to ``event``, decided at ``now``."""
    return AuditRecord(
        time=datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="milliseconds"),
        request_id=_cut(event.request_id),
        decision=response.decision,
        reason=response.reason,
        status=response.status,
        detail=_cut(response.detail),
        method=_cut(event.http_method),
        path=_cut(event.path),
        client_addr=_cut(event.source_ip),
        user_agent=_cut(event.get_header_value("User-Agent") or ""),
        traceparent=traceparent(event.get_header_value("traceparent")),
        latency_ms=round(latency_ms, 3),
        **response.identity.asdict(),
    )


def _cut(value: str) -> str:
    return value if len(value) <= MAX_FIELD_CHARS else value[:MAX_FIELD_CHARS] + "..."
