"""Check 2c: the token is a Keycloak access token for this API, valid now.

PyJWT does the JWT work (structure, alg allowlist, signature, ``iss``, ``aud``,
required claims). Time is checked here, with one small ``_validate_<claim>``
per claim, because PyJWT reads the wall clock and our decision must be a pure
function of the injected ``now``.

Order (each failure its own reason): alg in allowlist -> no ``crit`` -> ``kid``
present -> key by kid -> signature, iss, aud, required claims -> exp -> iat
-> nbf -> lifetime -> ``typ`` is ``Bearer`` -> ``azp`` is a string -> a
``cnf.x5t#S256`` present is one spelling of a SHA-256 digest.

The result is a ``VerifiedToken``: the claims, read-only all the way down, and
the facts the later checks read from them (times, ``azp``, the roles, the
``cnf`` confirmation), taken out once per token rather than once per request.
As for ``azp``, this module checks the claim's *type* and ``verifier.binding``
what it *means* (equal to the certificate's CN, to its thumbprint).

Verified-token cache (as Envoy's jwt_authn does): parsing and the signature
check cost most of a decision (PyJWT's strict base64url check alone is over
half), and a client reuses one token for its whole lifetime. The cache is the
caller's (``TokenCache``: ``decide`` passes ``DecisionCaches.tokens``, built next
to the key source; None = verify every time, which is what ``TOKEN_CACHE_SIZE=0``
builds). A token that passed every check is remembered, as a ``CachedToken``,
under the SHA-256 of its exact text together with the key object and settings
it was verified with. A later request with the same token is served from the
cache only if its ``kid`` still resolves to *the same key object* (a JWKS
refresh or a removed key is a miss) under *the same settings object* (a cache
handed settings with another issuer, audience or algorithms verifies again), and
exp/iat/nbf are checked again against ``now`` on every request, so a cached
token never outlives its ``exp``. What does not depend on the clock (the
numbers' types, lifetime, ``typ``, ``azp``, the ``cnf`` spelling) is a property
of the exact token text and is not re-checked; the binding to the presented
certificate is (``verifier.binding``, from the decoded thumbprint).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import jwt
from jwt import exceptions as jwt_errors

from verifier.errors import (
    TokenAlgNotAllowed,
    TokenAudienceInvalid,
    TokenClaimInvalid,
    TokenClaimMissing,
    TokenCritUnsupported,
    TokenError,
    TokenExpired,
    TokenIssuedInFuture,
    TokenIssuerInvalid,
    TokenKidMissing,
    TokenLifetimeTooLong,
    TokenMalformed,
    TokenNotYetValid,
    TokenSignatureInvalid,
    TokenTypeInvalid,
)
from verifier.jwks import KeySource
from verifier.lru import BoundedLRU
from verifier.settings import Settings

REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "azp", "typ"]
ACCESS_TYP = "Bearer"
THUMBPRINT_MEMBER = "x5t#S256"
"""RFC 8705 section 3.1: the ``cnf`` member binding a token to one certificate."""
_THUMBPRINT_CHARS = 43
"""base64url of a SHA-256 digest (32 bytes) without padding."""

# Most specific first: InvalidSignatureError is a DecodeError, and everything
# is an InvalidTokenError.
_PYJWT_REASONS: tuple[tuple[type[Exception], type[TokenError]], ...] = (
    (jwt_errors.InvalidSignatureError, TokenSignatureInvalid),
    (jwt_errors.InvalidKeyError, TokenSignatureInvalid),
    (jwt_errors.ExpiredSignatureError, TokenExpired),
    (jwt_errors.ImmatureSignatureError, TokenNotYetValid),
    (jwt_errors.InvalidIssuerError, TokenIssuerInvalid),
    (jwt_errors.InvalidAudienceError, TokenAudienceInvalid),
    (jwt_errors.MissingRequiredClaimError, TokenClaimMissing),
    (jwt_errors.InvalidAlgorithmError, TokenAlgNotAllowed),
    (jwt_errors.InvalidIssuedAtError, TokenClaimInvalid),
    (jwt_errors.InvalidSubjectError, TokenClaimInvalid),
    (jwt_errors.InvalidJTIError, TokenClaimInvalid),
    (jwt_errors.PyJWTError, TokenMalformed),
)


@dataclass(frozen=True)
class Confirmation:
    """The token's ``cnf`` claim (RFC 7800), read once per token for ``verifier.binding``.

    Exactly one of three: bound to a certificate (``x5t_s256`` set), unbound
    (no ``cnf``, or an empty one: both fields empty), or a confirmation we do not
    verify (``unsupported`` says which), which binding refuses whatever the settings.
    """

    x5t_s256: bytes | None = None
    """The certificate's SHA-256 thumbprint, decoded (32 bytes): compared with the
    presented certificate's fingerprint as bytes, with no encoding per request."""
    unsupported: str = ""
    """Why ``cnf`` cannot be confirmed here (not an object, another method such as
    DPoP's ``jkt``); empty when it can."""


UNBOUND = Confirmation()


@dataclass(frozen=True)
class VerifiedToken:
    """An access token that passed every check here, and what the later checks need from it.

    One object answers every request that carries the same token (the
    ``TokenCache``), so it is immutable all the way down: ``claims`` is a read-only
    mapping whose JSON objects are read-only mappings and whose arrays are
    tuples. The roles are those of ``client_id``, the API's own client.
    """

    claims: Mapping[str, Any]
    exp: int
    iat: int
    nbf: int | None
    azp: str
    realm_roles: frozenset[str]
    client_roles: frozenset[str]
    confirmation: Confirmation

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], client_id: str) -> VerifiedToken:
        """The facts of ``claims``, which hold numeric ``exp``/``iat`` (``nbf``) and ``azp``.

        Raises ``TokenClaimInvalid`` for a ``cnf.x5t#S256`` that is not one (``confirmation``).
        """
        return cls(
            claims=MappingProxyType({name: _read_only(value) for name, value in claims.items()}),
            exp=_numeric(claims, "exp"),
            iat=_numeric(claims, "iat"),
            nbf=_numeric(claims, "nbf") if "nbf" in claims else None,
            azp=claims["azp"],
            realm_roles=realm_roles(claims),
            client_roles=client_roles(claims, client_id),
            confirmation=confirmation(claims),
        )


def realm_roles(claims: Mapping[str, Any]) -> frozenset[str]:
    """``realm_access.roles``, ignoring anything that is not a list of strings."""
    access = claims.get("realm_access")
    return _role_names(access.get("roles") if isinstance(access, Mapping) else None)


def client_roles(claims: Mapping[str, Any], client_id: str) -> frozenset[str]:
    """``resource_access[client_id].roles``, ignoring malformed entries."""
    resources = claims.get("resource_access")
    access = resources.get(client_id) if isinstance(resources, Mapping) else None
    return _role_names(access.get("roles") if isinstance(access, Mapping) else None)


def confirmation(claims: Mapping[str, Any]) -> Confirmation:
    """``cnf``: a certificate thumbprint, nothing, or something we do not verify.

    Members are not skipped: a token that also carries, say, ``jkt`` was bound to a
    DPoP key too, and we would be ignoring half of what the issuer asked for.
    """
    if "cnf" not in claims:
        return UNBOUND
    cnf = claims["cnf"]
    if not isinstance(cnf, Mapping):
        return Confirmation(unsupported=f"cnf is {type(cnf).__name__}, not a JSON object")
    others = sorted(str(member) for member in cnf if member != THUMBPRINT_MEMBER)
    if others:
        return Confirmation(unsupported=f"cnf carries {', '.join(others)[:64]!r}")
    if THUMBPRINT_MEMBER not in cnf:
        return UNBOUND
    return Confirmation(x5t_s256=_thumbprint(cnf[THUMBPRINT_MEMBER]))


def _thumbprint(value: Any) -> bytes:
    """The 32 bytes of an ``x5t#S256``, which has one spelling: 43 base64url characters,
    no padding (RFC 8705 section 3.1, RFC 7515 section 2), the last one canonical."""
    if not isinstance(value, str) or len(value) != _THUMBPRINT_CHARS or not value.isascii():
        raise TokenClaimInvalid("cnf.x5t#S256 is not 43 base64url characters")
    try:
        digest = base64.urlsafe_b64decode(value + "=")
    except (binascii.Error, ValueError):
        raise TokenClaimInvalid("cnf.x5t#S256 is not base64url") from None
    # The decoder skips characters outside the alphabet and ignores the last
    # character's spare bits: only the canonical spelling encodes back to itself.
    if base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii") != value:
        raise TokenClaimInvalid("cnf.x5t#S256 is not canonical base64url")
    return digest


def _role_names(roles: Any) -> frozenset[str]:
    if not isinstance(roles, (list, tuple)):
        return frozenset()
    return frozenset(role for role in roles if isinstance(role, str))


def _read_only(value: Any) -> Any:
    """JSON data nothing can change: objects become mapping proxies, arrays tuples."""
    if isinstance(value, dict):
        return MappingProxyType({key: _read_only(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_read_only(item) for item in value)
    return value


@dataclass(frozen=True)
class CachedToken:
    """A verified token and what it was verified with; a hit needs the same of both."""

    kid: str
    key: Any
    """The PyJWK object the signature was checked with (compared by identity)."""
    settings: Settings
    """The settings object it was checked under (compared by identity)."""
    token: VerifiedToken


TokenCache = BoundedLRU[bytes, CachedToken]
"""Verified tokens by the SHA-256 of their exact text."""


def verify_token(
    token: str, keys: KeySource, settings: Settings, now: float, *, cache: TokenCache | None
) -> VerifiedToken:
    """The verified ``token``, or the ``TokenError`` that refuses it."""
    digest = hashlib.sha256(token.encode()).digest() if cache is not None else b""
    hit = cache.get(digest) if cache is not None else None
    if hit is not None and hit.settings is settings and keys.get_key(hit.kid, now) is hit.key:
        _check_clock(hit.token, now, settings.leeway_seconds)
        return hit.token
    claims, kid, key = _verify_signed(token, keys, settings, now)
    _validate_time_and_type(claims, settings, now)
    verified = VerifiedToken.from_claims(claims, settings.audience)
    if cache is not None:
        cache.put(digest, CachedToken(kid, key, settings, verified))
    return verified


def _verify_signed(
    token: str, keys: KeySource, settings: Settings, now: float
) -> tuple[dict[str, Any], str, Any]:
    """Header checks, key lookup and PyJWT's decode (signature, iss, aud, required)."""
    header = _read_header(token)
    alg = header.get("alg")
    if alg not in settings.algorithms:
        raise TokenAlgNotAllowed(f"alg {alg!r}")
    if "crit" in header:
        raise TokenCritUnsupported(f"crit {header['crit']!r}")
    kid = header.get("kid")
    if not kid:
        raise TokenKidMissing("no kid in header")
    key = keys.get_key(kid, now)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=list(settings.algorithms),
            audience=settings.audience,
            issuer=settings.issuer,
            options={
                "require": REQUIRED_CLAIMS,
                "verify_exp": False,  # checked below against the injected clock
                "verify_iat": False,
                "verify_nbf": False,
                "enforce_minimum_key_length": True,
            },
        )
    except jwt_errors.PyJWTError as e:
        raise _reason_for(e)(str(e)) from e
    return claims, kid, key


def _validate_time_and_type(claims: dict[str, Any], settings: Settings, now: float) -> None:
    leeway = settings.leeway_seconds
    exp = _validate_exp(claims, now, leeway)
    iat = _validate_iat(claims, now, leeway)
    _validate_nbf(claims, now, leeway)
    _validate_lifetime(exp, iat, settings.max_token_lifetime_seconds)
    _validate_typ(claims)
    _validate_azp(claims)


def _check_clock(token: VerifiedToken, now: float, leeway: float) -> None:
    """The clock checks again, for a token whose other checks passed when first seen."""
    _check_exp(token.exp, now, leeway)
    _check_iat(token.iat, now, leeway)
    if token.nbf is not None:
        _check_nbf(token.nbf, now, leeway)


def _read_header(token: str) -> dict[str, Any]:
    """The unverified JOSE header, used only to pick the key and refuse early.

    PyJWT rejects an unsupported ``crit`` inside ``get_unverified_header`` with
    a plain ``InvalidTokenError`` before we can look at the header; the message
    is the only thing that tells it apart, so it is matched here (and pinned by
    a test). Any other failure is ``token_malformed``.
    """
    if "=" in token:
        # RFC 7515 section 2: base64url without padding; "sig==" would otherwise
        # be a second spelling of the same token.
        raise TokenMalformed("base64url padding in the token")
    try:
        return jwt.get_unverified_header(token)
    except jwt_errors.DecodeError as e:
        raise TokenMalformed(str(e)) from e
    except jwt_errors.PyJWTError as e:
        if "crit" in str(e).lower():
            raise TokenCritUnsupported(str(e)) from e
        raise TokenMalformed(str(e)) from e


def _reason_for(error: Exception) -> type[TokenError]:
    for pyjwt_class, reason_class in _PYJWT_REASONS:
        if isinstance(error, pyjwt_class):
            return reason_class
    return TokenMalformed


def _numeric(claims: Mapping[str, Any], name: str) -> int:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenClaimInvalid(f"{name} is not a number")
    try:
        return int(value)
    except (ValueError, OverflowError):
        raise TokenClaimInvalid(f"{name} is not a finite number") from None


def _validate_exp(claims: dict[str, Any], now: float, leeway: float) -> int:
    exp = _numeric(claims, "exp")
    _check_exp(exp, now, leeway)
    return exp


def _validate_iat(claims: dict[str, Any], now: float, leeway: float) -> int:
    iat = _numeric(claims, "iat")
    _check_iat(iat, now, leeway)
    return iat


def _validate_nbf(claims: dict[str, Any], now: float, leeway: float) -> None:
    if "nbf" in claims:
        _check_nbf(_numeric(claims, "nbf"), now, leeway)


def _check_exp(exp: int, now: float, leeway: float) -> None:
    if exp <= now - leeway:
        raise TokenExpired(f"exp {exp} <= now {now:.0f} - leeway {leeway:.0f}")


def _check_iat(iat: int, now: float, leeway: float) -> None:
    if iat > now + leeway:
        raise TokenIssuedInFuture(f"iat {iat} > now {now:.0f} + leeway {leeway:.0f}")


def _check_nbf(nbf: int, now: float, leeway: float) -> None:
    if nbf > now + leeway:
        raise TokenNotYetValid(f"nbf {nbf} > now {now:.0f} + leeway {leeway:.0f}")


def _validate_lifetime(exp: int, iat: int, max_lifetime: float) -> None:
    if max_lifetime > 0 and exp - iat > max_lifetime:
        raise TokenLifetimeTooLong(f"exp - iat = {exp - iat} > {max_lifetime:.0f}")


def _validate_typ(claims: dict[str, Any]) -> None:
    if claims["typ"] != ACCESS_TYP:
        raise TokenTypeInvalid(f"typ {str(claims['typ'])[:32]!r}")


def _validate_azp(claims: dict[str, Any]) -> None:
    if not isinstance(claims["azp"], str) or not claims["azp"]:
        raise TokenClaimInvalid("azp is not a non-empty string")
