"""The decision, as an object the Lambda runtime, the Flask adapter and the audit share.

``AuthorizerResponse.asdict()`` is the API Gateway Lambda-authorizer response
(``principalId`` + IAM ``policyDocument`` + flat ``context``), as AWS Lambda
Powertools' ``APIGatewayAuthorizerResponse`` builds it, so the same value can be
returned by a real Lambda authorizer. ``context`` carries the decision, the
status to use, the reason code and the identity (``verifier.identity``, the same
names as everywhere else); API Gateway only allows flat string/number/boolean
context values, so role lists are comma-joined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from verifier.errors import VerifierError
from verifier.identity import Identity

ALLOW = "allow"
DENY = "deny"
ALLOW_STATUS = 200


@dataclass(frozen=True)
class AuthorizerResponse:
    """One decision: allow/deny, the HTTP status to answer with, and why."""

    decision: str
    status: int
    reason: str
    detail: str = ""
    identity: Identity = field(default_factory=Identity)
    method_arn: str = ""
    valid_until: float = 0.0
    """An allow: epoch seconds when what it rests on ends (token ``exp``, cert
    ``notAfter``, the checked CRLs' ``nextUpdate``, whichever is first); a cached
    copy of it must expire by then. A lockout (``locked_out``): when it ends. Any
    other deny: 0."""

    @classmethod
    def denied(
        cls, error: VerifierError, *, identity: Identity | None = None, method_arn: str = ""
    ) -> AuthorizerResponse:
        """The deny for ``error``, with whatever identity was proven before it."""
        return cls(
            decision=DENY,
            status=error.status,
            reason=error.reason,
            detail=error.detail,
            identity=identity if identity is not None else Identity(),
            method_arn=method_arn,
            valid_until=error.until,
        )

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOW

    def _resource(self) -> str:
        """The ARN the statement covers; a wildcard only ever widens a Deny."""
        if self.method_arn:
            return self.method_arn
        return "" if self.allowed else "*"

    def asdict(self) -> dict[str, Any]:
        """The API Gateway authorizer response (JSON-serializable)."""
        return {
            "principalId": self.identity.subject or "anonymous",
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Action": "execute-api:Invoke",
                        "Effect": "Allow" if self.allowed else "Deny",
                        "Resource": self._resource(),
                    }
                ],
            },
            "context": {
                "decision": self.decision,
                "status": self.status,
                "reason": self.reason,
                **self.identity.ascontext(),
            },
        }
