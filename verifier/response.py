"""The decision, as an object the Lambda runtime, the Flask adapter and the audit share.

``AuthorizerResponse.asdict()`` is the API Gateway Lambda-authorizer response
(``principalId`` + IAM ``policyDocument`` + flat ``context``), as AWS Lambda
Powertools' ``APIGatewayAuthorizerResponse`` builds it, so the same value can be
returned by a real Lambda authorizer. ``context`` carries the decision, the
status to use, the reason code and the identity; API Gateway only allows flat
string/number/boolean context values, so role lists are comma-joined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALLOW = "allow"
DENY = "deny"
ALLOW_STATUS = 200


@dataclass(frozen=True)
class Identity:
    """What the checks learned about the caller; fields stay empty until proven.

    ``subject`` is the authenticated workload: the certificate CN, which the
    binding check has proven equal to the token's ``azp``. ``sub`` is the
    token's own subject (Keycloak's service-account user id).
    """

    subject: str = ""
    azp: str = ""
    sub: str = ""
    jti: str = ""
    cert_cn: str = ""
    cert_serial: str = ""
    cert_subject_dn: str = ""
    cert_issuer_dn: str = ""
    realm_roles: tuple[str, ...] = ()
    client_roles: tuple[str, ...] = ()
    org: str = ""
    department: str = ""

    def ascontext(self) -> dict[str, str]:
        """Flat string values (API Gateway context / HTTP header friendly)."""
        return {
            "subject": self.subject,
            "azp": self.azp,
            "sub": self.sub,
            "jti": self.jti,
            "cert_cn": self.cert_cn,
            "cert_serial": self.cert_serial,
            "cert_subject_dn": self.cert_subject_dn,
            "cert_issuer_dn": self.cert_issuer_dn,
            "roles": ",".join(self.realm_roles),
            "client_roles": ",".join(self.client_roles),
            "org": self.org,
            "department": self.department,
        }


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
    """Allow only: epoch seconds when what it rests on ends (token ``exp``, cert
    ``notAfter``, the checked CRLs' ``nextUpdate``, whichever is first); a cached
    copy of it must expire by then."""

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


DENY_ALL = AuthorizerResponse(decision=DENY, status=401, reason="internal_error")
"""Returned when nothing better can be said; deny is the default."""
