"""The decision: one pure function of (event, keys, policy, settings, revocation, caches, now).

Read ``decide`` to know the whole request path. It runs the four checks in
order, top to bottom, and stops at the first failure; each failure is a
``VerifierError`` whose reason and status become the response. Allow only when
all passed:

1. transport   ``transport.parse_client_cert`` / ``check_client_cert``
               -> ``revocation.check_not_revoked`` (the cert and its issuing CA)
               -> ``lockout.check_not_locked_out`` (too many refused tokens lately)
2. token       ``forwarded.check_forwarded_intact`` (no header withheld by nginx)
               -> ``bearer.bearer_token`` -> ``claims.verify_token`` (keys via ``jwks``)
3. binding     ``binding.check_binding`` (CN == ``azp``; ``cnf.x5t#S256`` == the cert's
               SHA-256, required unless ``REQUIRE_BOUND_TOKENS`` is false)
4. authz       ``paths.canonical_path`` -> ``policy.Policy.authorize``

Each check's result is a local variable; a deny is built from whichever of them
were set when the check failed, so the audit records what was proven (the
certificate of a request whose token failed, the verified identity of a
request the policy refused) and nothing else.

Nothing raises out of ``decide``: an unexpected exception is a bug, and a bug
denies (``internal_error``, 401) rather than answering 500.

Everything with state is passed in: the key source, the revocation source and
the caches (``verifier.caches.DecisionCaches``) are built together by the
caller, which also refreshes the sources (``decide`` does no I/O except the
JWKS fetch the key source may make for an unknown kid, and the lockout source's
one ``stat``; the adapter records refusals in it after the decision). The adapters around it:
``verifier.app`` (Flask, behind nginx) and ``verifier.lambda_handler`` (AWS Lambda).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from verifier.bearer import bearer_token
from verifier.binding import check_binding
from verifier.caches import DecisionCaches, IdentityCache
from verifier.claims import VerifiedToken, verify_token
from verifier.errors import InternalError, VerifierError
from verifier.event import AuthorizerEvent
from verifier.forwarded import check_forwarded_intact
from verifier.identity import Identity
from verifier.jwks import JWKSKeySource, KeySource
from verifier.lockout import NO_LOCKOUTS, LockoutSource, check_not_locked_out, lockout_from_settings
from verifier.paths import canonical_path
from verifier.policy import Policy, load_policy
from verifier.response import ALLOW, ALLOW_STATUS, AuthorizerResponse
from verifier.revocation import CRLFileSource, RevocationSource, check_not_revoked
from verifier.settings import Settings
from verifier.transport import PresentedCert, check_client_cert, parse_client_cert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decider:
    """Everything a decision uses besides the event and the clock, built once, together.

    An adapter (the Flask app, the Lambda container, the fuzzer) holds one; the key
    source and the revocation source own their I/O and are refreshed by the adapter,
    the caches are this decider's own. ``decide`` below stays the pure function.
    """

    settings: Settings
    policy: Policy
    keys: KeySource
    revocation: RevocationSource
    caches: DecisionCaches
    lockouts: LockoutSource = NO_LOCKOUTS
    """Certificates locked out for refused tokens (``verifier.lockout``)."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        keys: KeySource | None = None,
        revocation: RevocationSource | None = None,
    ) -> Decider:
        """The production sources for ``settings`` (Keycloak's JWKS, the CRL file),
        unless a test or the fuzzer passes its own."""
        return cls(
            settings=settings,
            policy=load_policy(settings.policy_path),
            keys=keys or JWKSKeySource.from_settings(settings),
            revocation=revocation or CRLFileSource.from_settings(settings),
            caches=DecisionCaches.from_settings(settings),
            lockouts=lockout_from_settings(settings),
        )

    def decide(self, event: Mapping[str, Any] | AuthorizerEvent, now: float) -> AuthorizerResponse:
        return decide(
            event,
            keys=self.keys,
            policy=self.policy,
            settings=self.settings,
            revocation=self.revocation,
            caches=self.caches,
            now=now,
            lockouts=self.lockouts,
        )


def decide(
    event: Mapping[str, Any] | AuthorizerEvent,
    *,
    keys: KeySource,
    policy: Policy,
    settings: Settings,
    revocation: RevocationSource,
    caches: DecisionCaches,
    now: float,
    lockouts: LockoutSource = NO_LOCKOUTS,
) -> AuthorizerResponse:
    """Allow or deny one request; never raises."""
    view = event if isinstance(event, AuthorizerEvent) else AuthorizerEvent(event)
    cert: PresentedCert | None = None
    token: VerifiedToken | None = None
    subject = ""
    try:
        # 1. transport: the certificate nginx verified, from a client CA, on no CRL
        cert = parse_client_cert(
            view, cache=caches.certs, require_verify_header=settings.require_verify_header
        )
        issuing_ca = check_client_cert(cert, settings.client_cas, now, cache=caches.issuers)
        crls_valid_until = check_not_revoked(cert.serial_number, issuing_ca, revocation, now)
        check_not_locked_out(cert.serial, lockouts, now)  # before its token is read
        # 2. token: one bearer token, verified with Keycloak's key, valid now
        check_forwarded_intact(view)  # nginx withheld no control byte
        bearer = bearer_token(view, settings.max_token_bytes)
        token = verify_token(bearer, keys, settings, now, cache=caches.tokens)
        # 3. binding: the certificate and the token name the same workload
        subject = check_binding(cert, token, require_bound=settings.require_bound_tokens)
        # 4. authorization: the policy grants this method on the canonical path
        policy.authorize(view.http_method, canonical_path(view.path), token)
    except VerifierError as e:
        return _deny(view, e, cert, token, subject)
    except Exception as e:  # a bug must deny, never answer 500
        log.exception("verifier bug while deciding request %r", view.request_id)
        return _deny(view, InternalError(type(e).__name__), cert, token, subject)
    return AuthorizerResponse(
        decision=ALLOW,
        status=ALLOW_STATUS,
        reason="ok",
        identity=_allowed_identity(cert, token, subject, caches),
        method_arn=view.method_arn,
        # A cache of this allow must end when its inputs do: the token's raw exp
        # (no leeway: a cache must not stretch a token's life as the clock-skew
        # leeway does for one live check), the certificate's notAfter, and the
        # checked CRLs' nextUpdate (past it a newer CRL may list the certificate).
        valid_until=min(cert.not_after, float(token.exp), crls_valid_until),
    )


def _deny(
    view: AuthorizerEvent,
    error: VerifierError,
    cert: PresentedCert | None,
    token: VerifiedToken | None,
    subject: str,
) -> AuthorizerResponse:
    """The deny for ``error``, carrying what the checks before it proved."""
    return AuthorizerResponse.denied(
        error, identity=_identity(cert, token, subject), method_arn=view.method_arn
    )


def _allowed_identity(
    cert: PresentedCert, token: VerifiedToken, subject: str, caches: DecisionCaches
) -> Identity:
    """``_identity`` of an allow, the same object for the same cached certificate and
    token (``DecisionCaches.identities``: the entry pins both, so ids are not reused).
    Without the token cache every token object is new: nothing to remember."""
    if caches.tokens is None:
        return _identity(cert, token, subject)
    cache: IdentityCache = caches.identities
    key = (id(cert), id(token), subject)
    hit = cache.get(key)
    if hit is not None and hit[0] is cert and hit[1] is token:
        return hit[2]
    identity = _identity(cert, token, subject)
    cache.put(key, (cert, token, identity))
    return identity


def _identity(cert: PresentedCert | None, token: VerifiedToken | None, subject: str) -> Identity:
    """Only proven facts: the parsed certificate, the verified token, the bound subject."""
    claims: Mapping[str, Any] = token.claims if token else {}
    return Identity(
        subject=subject,
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
