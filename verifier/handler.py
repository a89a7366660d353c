"""The decision: one pure function of (event, keys, policy, settings, revocation, now).

Read this file to know the whole request path. ``decide`` runs the four checks
in order and stops at the first failure; each failure is a ``VerifierError``
whose reason and status become the response. Allow only when all passed:

1. transport   ``transport.parse_client_cert`` / ``check_client_cert``
               -> ``revocation.check_not_revoked`` (the cert and its issuing CA)
2. token       ``bearer.bearer_token`` -> ``claims.verify_token`` (keys via ``jwks``)
3. binding     ``binding.check_binding``
4. authz       ``paths.canonical_path`` -> ``policy.Policy.authorize``

Nothing raises out of ``decide``: an unexpected exception is a bug, and a bug
denies (``internal_error``, 401) rather than answering 500.

The key source and the revocation source are objects passed in: they own
their caches, and the adapters refresh them (``decide`` does no I/O except the
JWKS fetch the key source may make for an unknown kid).

``handler(event, context)`` is the AWS Lambda entry point. It builds settings,
policy, the JWKS key source and the CRL file source once from ``ZT_VERIFIER_*``
environment variables (``Settings.from_env``, as strict as the Flask adapter's;
see ``verifier.settings``), re-checks the CRL file per invocation, and returns
``decide(...).asdict()``, the API Gateway authorizer response, because Lambda
must return JSON. A refused configuration denies every invocation
(``internal_error``) and logs every problem.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from verifier.bearer import bearer_token
from verifier.binding import check_binding
from verifier.claims import VerifiedToken, verify_token
from verifier.errors import InternalError, VerifierError
from verifier.event import AuthorizerEvent
from verifier.jwks import JWKSKeySource, KeySource
from verifier.paths import canonical_path
from verifier.policy import Policy, load_policy
from verifier.response import ALLOW, ALLOW_STATUS, DENY, AuthorizerResponse, Identity
from verifier.revocation import CRLFileSource, RevocationSource, check_not_revoked
from verifier.settings import Settings
from verifier.transport import PresentedCert, check_client_cert, parse_client_cert

log = logging.getLogger(__name__)
wall_clock: Callable[[], float] = time.time
"""The Lambda entry point's clock; ``decide`` itself only ever gets ``now``."""


@dataclass
class _Proven:
    """Facts established so far; a denied request is audited with what was proven."""

    cert: PresentedCert | None = None
    token: VerifiedToken | None = None
    subject: str = ""
    crl_valid_until: float = 0.0
    """Earliest ``nextUpdate`` of the CRLs the certificate was checked against."""


def decide(
    event: Mapping[str, Any] | AuthorizerEvent,
    *,
    keys: KeySource,
    policy: Policy,
    settings: Settings,
    revocation: RevocationSource,
    now: float,
) -> AuthorizerResponse:
    """Allow or deny one request; never raises."""
    view = event if isinstance(event, AuthorizerEvent) else AuthorizerEvent(event)
    proven = _Proven()
    try:
        _run_checks(view, keys, policy, settings, revocation, now, proven)
    except VerifierError as e:
        return _deny(view, e, proven)
    except Exception as e:  # a bug must deny, never answer 500
        log.exception("verifier bug while deciding request %r", view.request_id)
        return _deny(view, InternalError(type(e).__name__), proven)
    return AuthorizerResponse(
        decision=ALLOW,
        status=ALLOW_STATUS,
        reason="ok",
        identity=_identity(proven),
        method_arn=view.method_arn,
        valid_until=_valid_until(proven),
    )


def _run_checks(
    view: AuthorizerEvent,
    keys: KeySource,
    policy: Policy,
    settings: Settings,
    revocation: RevocationSource,
    now: float,
    proven: _Proven,
) -> None:
    """The four checks, in order; each raises its ``VerifierError`` on failure."""
    proven.cert = parse_client_cert(view, require_verify_header=settings.require_verify_header)
    issuing_ca = check_client_cert(proven.cert, settings.client_cas, now)
    proven.crl_valid_until = check_not_revoked(
        proven.cert.serial_number, issuing_ca, revocation, now
    )

    token = verify_token(bearer_token(view, settings.max_token_bytes), keys, settings, now)
    proven.token = token

    proven.subject = check_binding(proven.cert, token.claims)

    path = canonical_path(view.path)
    policy.authorize(view.http_method, path, token)


def _valid_until(proven: _Proven) -> float:
    """When the allow's inputs stop being valid: the earliest of token exp, cert
    notAfter and the nextUpdate of the CRLs the certificate was checked against.

    The token's raw ``exp`` (no leeway): a decision cache must never stretch a
    token's life the way the clock-skew leeway does for one live check. The
    CRL's nextUpdate: past it a newer CRL may list the certificate.
    """
    cert_end = proven.cert.not_after if proven.cert else 0.0
    token_end = float(proven.token.exp) if proven.token else 0.0
    return min(cert_end, token_end, proven.crl_valid_until)


def _deny(view: AuthorizerEvent, error: VerifierError, proven: _Proven) -> AuthorizerResponse:
    return AuthorizerResponse(
        decision=DENY,
        status=error.status,
        reason=error.reason,
        detail=error.detail,
        identity=_identity(proven),
        method_arn=view.method_arn,
    )


def _identity(proven: _Proven) -> Identity:
    """Only proven facts: the parsed cert, then the verified token."""
    cert, token = proven.cert, proven.token
    claims: Mapping[str, Any] = token.claims if token else {}
    return Identity(
        subject=proven.subject,
        azp=token.azp if token else "",
        sub=_claim(claims, "sub"),
        jti=_claim(claims, "jti"),
        cert_cn=cert.common_names[0] if cert and len(cert.common_names) == 1 else "",
        cert_serial=cert.serial if cert else "",
        cert_subject_dn=cert.subject_dn if cert else "",
        cert_issuer_dn=cert.issuer_dn if cert else "",
        realm_roles=tuple(sorted(token.realm_roles)) if token else (),
        client_roles=tuple(sorted(token.client_roles)) if token else (),
        org=_claim(claims, "org"),
        department=_claim(claims, "department"),
    )


def _claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    return value if isinstance(value, str) else ""


@functools.lru_cache(maxsize=1)
def _lambda_defaults() -> tuple[Settings, Policy, JWKSKeySource, CRLFileSource]:
    """Built on the first invocation and reused while the Lambda container lives."""
    settings = Settings.from_env(os.environ)
    policy = load_policy(settings.policy_path)
    keys = JWKSKeySource.from_settings(settings)
    return settings, policy, keys, CRLFileSource.from_settings(settings)


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """AWS Lambda REQUEST-authorizer entry point; the wall clock is read here only."""
    try:
        settings, policy, keys, revocation = _lambda_defaults()
    except Exception as e:  # misconfiguration denies, it does not crash the caller
        log.exception("verifier misconfigured")
        error = InternalError(type(e).__name__)
        return _deny(AuthorizerEvent(event), error, _Proven()).asdict()
    now = wall_clock()
    revocation.refresh_if_changed(now)
    response = decide(
        event, keys=keys, policy=policy, settings=settings, revocation=revocation, now=now
    )
    return response.asdict()
