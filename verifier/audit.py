"""One audit record per decision, ALLOW and DENY alike.

Why a pure builder: the record is part of the decision's contract (tests
assert on it, the attack suite greps it), so it is built from the event and the
response only; writing it is the adapter's job (``verifier.auditlog``).

What is never in a record: the token, the Authorization header, the client
certificate PEM. Identity comes from the parsed certificate and the VERIFIED
claims only, so a forged token cannot write a chosen ``sub`` into the log.
Attacker-influenced strings (path, method, request id) are truncated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypedDict

from verifier.event import AuthorizerEvent
from verifier.response import AuthorizerResponse

MAX_FIELD_CHARS = 512


class AuditRecord(TypedDict):
    """The JSON line written for every decision."""

    time: str
    request_id: str
    decision: str
    reason: str
    status: int
    detail: str
    method: str
    path: str
    client_addr: str
    cert_subject: str
    cert_serial: str
    cert_issuer: str
    token_sub: str
    token_azp: str
    token_jti: str
    subject: str
    latency_ms: float


def audit_record(
    event: AuthorizerEvent, response: AuthorizerResponse, *, now: float, latency_ms: float
) -> AuditRecord:
    """The record of ``response`` to ``event``, decided at ``now``."""
    identity = response.identity
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
        cert_subject=identity.cert_subject_dn,
        cert_serial=identity.cert_serial,
        cert_issuer=identity.cert_issuer_dn,
        token_sub=identity.sub,
        token_azp=identity.azp,
        token_jti=identity.jti,
        subject=identity.subject,
        latency_ms=round(latency_ms, 3),
    )


def _cut(value: str) -> str:
    return value if len(value) <= MAX_FIELD_CHARS else value[:MAX_FIELD_CHARS] + "..."
