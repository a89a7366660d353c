"""Every reason the verifier can refuse a request, as one exception tree.

Why a tree: each refusal carries a *stable* reason code (``token_expired``,
``binding_cn_mismatch``...) that appears verbatim in audit lines, metrics, the
``X-Auth-Reason`` header and tests, so renaming one is a breaking change.

Why statuses live on the category classes: this module is the ONE place where a
reason is mapped to an HTTP status. A leaf class never sets ``status`` itself;
it inherits it from its category:

* ``TransportError``, ``TokenError``, ``BindingError`` -> 401: the caller did not
  authenticate as a single principal (bad cert, bad token, or a cert and a token
  that belong to different principals; RFC 8705 section 3 asks for 401 on a
  binding failure).
* ``AuthorizationError`` -> 403: the principal is known but may not do this.
* ``InternalError`` -> 401: an unexpected bug must still deny, and must not look
  like a server fault (500) that a caller could provoke and probe.
* ``Throttled`` -> 429: the certificate presented too many refused tokens lately
  (``verifier.lockout``); refused before its token is even read, until the
  lockout ends. nginx's ``auth_request`` only understands 2xx/401/403, so the
  Flask adapter sends it as 403 with ``X-Auth-Reason: locked_out`` and nginx
  answers the client 429 (nginx/snippets/lockout-refusal.conf).
* ``ServiceUnavailable`` -> 503: the verifier cannot decide or record safely
  right now (no audit line can be written, no current CRL to check the
  certificate against). A server-side fault the caller cannot fix, so it is not
  a 401 that would blame the caller; nginx turns it into a 5xx.

``ConfigError`` (``PolicyError``, ``SettingsError``) is the other tree: a
configuration refused at start-up, listing every problem, never a request.
"""

from __future__ import annotations

from collections.abc import Sequence


class VerifierError(Exception):
    """Base class: the request is denied for ``reason`` with HTTP ``status``."""

    reason: str = "denied"
    status: int = 401
    until: float = 0.0
    """Epoch seconds until which this refusal stands whatever is presented; 0 for
    every refusal but a lockout (``Throttled``), which is decided afresh each time."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.reason)
        self.detail = detail


# --- 1. transport: the client certificate nginx verified ------------------------


class TransportError(VerifierError):
    """The client certificate does not prove a workload identity."""

    status = 401


class ClientCertNotVerified(TransportError):
    """nginx did not report ``SUCCESS`` for the client certificate chain."""

    reason = "client_cert_not_verified"


class ClientCertMissing(TransportError):
    """No client certificate PEM reached the verifier."""

    reason = "client_cert_missing"


class ClientCertMalformed(TransportError):
    """The client certificate PEM does not parse as one X.509 certificate."""

    reason = "client_cert_malformed"


class ClientCertNotClientAuth(TransportError):
    """The certificate lacks the clientAuth extended key usage."""

    reason = "client_cert_not_client_auth"


class ClientCertExpired(TransportError):
    """The certificate's notAfter is in the past."""

    reason = "client_cert_expired"


class ClientCertNotYetValid(TransportError):
    """The certificate's notBefore is in the future."""

    reason = "client_cert_not_yet_valid"


class ClientCertIssuerUntrusted(TransportError):
    """The certificate was not issued by a configured client issuing CA."""

    reason = "client_cert_issuer_untrusted"


class ClientCertRevoked(TransportError):
    """The certificate, or the CA that issued it, is listed on its issuer's CRL."""

    reason = "cert_revoked"


# --- 2. token: the bearer access token -------------------------------------------


class TokenError(VerifierError):
    """The bearer token does not authenticate the caller."""

    status = 401


class TokenMissing(TokenError):
    """No Authorization header was sent."""

    reason = "token_missing"


class TokenHeaderMultiple(TokenError):
    """More than one Authorization value was sent; which one counts is ambiguous."""

    reason = "token_header_multiple"


class TokenSchemeNotBearer(TokenError):
    """The Authorization scheme is not Bearer (e.g. Basic)."""

    reason = "token_scheme_not_bearer"


class TokenSchemeCase(TokenError):
    """The scheme is a case variant of ``Bearer``; our policy is case-sensitive."""

    reason = "token_scheme_case_invalid"


class TokenTooLarge(TokenError):
    """The token exceeds the configured size limit."""

    reason = "token_too_large"


class TokenMalformed(TokenError):
    """The token is not a well-formed signed JWT."""

    reason = "token_malformed"


class TokenAlgNotAllowed(TokenError):
    """The header ``alg`` is not in the allowlist (or does not match the key)."""

    reason = "token_alg_not_allowed"


class TokenCritUnsupported(TokenError):
    """The header carries ``crit``; we understand no critical extensions."""

    reason = "token_crit_unsupported"


class TokenKidMissing(TokenError):
    """The header has no ``kid``, so the signing key cannot be chosen safely."""

    reason = "token_kid_missing"


class TokenKeyUnknown(TokenError):
    """No key with the token's ``kid`` is in the JWKS, even after a refetch."""

    reason = "token_key_unknown"


class JwksUnavailable(TokenError):
    """The JWKS has never been fetched successfully, so no token can be verified."""

    reason = "jwks_unavailable"


class JwksStale(TokenError):
    """The JWKS was last fetched longer ago than the hard maximum staleness; no key is trusted."""

    reason = "jwks_stale"


class TokenSignatureInvalid(TokenError):
    """The signature does not verify with the key named by ``kid``."""

    reason = "token_signature_invalid"


class TokenIssuerInvalid(TokenError):
    """``iss`` is not exactly the configured issuer."""

    reason = "token_issuer_invalid"


class TokenAudienceInvalid(TokenError):
    """``aud`` does not contain this API's client id."""

    reason = "token_audience_invalid"


class TokenClaimMissing(TokenError):
    """A required claim (exp, iat, iss, aud, azp, typ) is absent."""

    reason = "token_claim_missing"


class TokenClaimInvalid(TokenError):
    """A claim has the wrong type (e.g. non-numeric ``exp``, non-string ``azp``)."""

    reason = "token_claim_invalid"


class TokenExpired(TokenError):
    """``exp`` is in the past beyond the leeway."""

    reason = "token_expired"


class TokenNotYetValid(TokenError):
    """``nbf`` is in the future beyond the leeway."""

    reason = "token_not_yet_valid"


class TokenIssuedInFuture(TokenError):
    """``iat`` is in the future beyond the leeway."""

    reason = "token_issued_in_future"


class TokenLifetimeTooLong(TokenError):
    """``exp - iat`` exceeds the configured maximum lifetime."""

    reason = "token_lifetime_too_long"


class TokenTypeInvalid(TokenError):
    """``typ`` is not ``Bearer`` (e.g. an ID token or refresh token)."""

    reason = "token_type_invalid"


# --- 3. binding: certificate and token name the same principal ---------------------


class BindingError(VerifierError):
    """The certificate and the token do not belong to the same principal."""

    status = 401


class BindingCnMismatch(BindingError):
    """The certificate's subject CN is not the token's ``azp``."""

    reason = "binding_cn_mismatch"


class BindingThumbprintMismatch(BindingError):
    """``cnf.x5t#S256`` is not the SHA-256 thumbprint of the presented cert."""

    reason = "binding_thumbprint_mismatch"


class TokenNotBound(BindingError):
    """The token carries no ``cnf.x5t#S256`` and certificate-bound tokens are required."""

    reason = "token_not_bound"


class TokenBindingUnsupported(BindingError):
    """``cnf`` is not an object or names a confirmation method other than ``x5t#S256``."""

    reason = "token_binding_unsupported"


# --- 4. authorization: the route's requirements ------------------------------------


class AuthorizationError(VerifierError):
    """The principal is authenticated but not allowed to do this."""

    status = 403


class PathNotCanonical(AuthorizationError):
    """The request path is not in canonical form, so matching it would be unsafe."""

    reason = "path_not_canonical"


class RouteNotAllowed(AuthorizationError):
    """No policy rule covers this method and path (deny by default)."""

    reason = "route_not_allowed"


class RealmRoleMissing(AuthorizationError):
    """A realm role the route requires is not in ``realm_access.roles``."""

    reason = "realm_role_missing"


class ClientRoleMissing(AuthorizationError):
    """A client role the route requires is not in ``resource_access[client].roles``."""

    reason = "client_role_missing"


class TenantMismatch(AuthorizationError):
    """A tenant claim (e.g. ``org``) does not equal the tenant named in the path."""

    reason = "tenant_mismatch"


# --- 5. throttling: a certificate that keeps presenting refused tokens ----------------


class Throttled(VerifierError):
    """The caller is refused for a while, whatever it presents now."""

    status = 429


class LockedOut(Throttled):
    """This certificate presented too many refused tokens lately (``verifier.lockout``)."""

    reason = "locked_out"

    def __init__(self, detail: str = "", *, until: float) -> None:
        super().__init__(detail)
        self.until = until


# --- faults of the verifier itself -------------------------------------------------


class InternalError(VerifierError):
    """An unexpected exception; denied rather than answered with a 500."""

    reason = "internal_error"
    status = 401


class ServiceUnavailable(VerifierError):
    """The verifier cannot decide or record safely now: a server-side fault (503)."""

    status = 503


class AuditUnavailable(ServiceUnavailable):
    """The audit line could not be written, so the request may not proceed."""

    reason = "audit_unavailable"


class CrlUnavailable(ServiceUnavailable):
    """No current CRL covers the certificate's issuer, so revocation cannot be checked."""

    reason = "crl_unavailable"


# --- start-up refusals: configuration that would not take effect as written -------


class ConfigError(ValueError):
    """Configuration refused at start-up; ``problems`` lists every reason, one line each.

    Not a ``VerifierError``: nothing is decided with a refused configuration, so
    there is no reason code or status. Every problem is collected before raising,
    so one start (or one ``zt validate``) shows them all.
    """

    what = "configuration"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        count = len(self.problems)
        heading = f"{self.what} refused ({count} problem{'' if count == 1 else 's'}):"
        super().__init__("\n  ".join((heading, *self.problems)))


class PolicyError(ConfigError):
    """The route policy is refused; each problem names the file, the rule and the key."""

    what = "policy"


class SettingsError(ConfigError):
    """The settings are refused; each problem names the setting (``ZT_VERIFIER_*``)."""

    what = "verifier settings"


def all_reasons() -> dict[str, int]:
    """Every reason code with its status, for docs and for the coverage test."""
    found: dict[str, int] = {}
    pending: list[type[VerifierError]] = [VerifierError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not cls.__subclasses__():
            found[cls.reason] = cls.status
    return found
