"""The decision's caches: one object, built next to the key source, passed to ``decide``.

Why an object and not module globals: state belongs to what owns it, as PyJWT's
``PyJWKClient`` owns its key cache. Whoever builds the key source builds one
``DecisionCaches`` beside it and passes both to every ``decide`` call: the Flask
app (``create_app``), the Lambda container (``lambda_handler``), each test (a
fresh one, so no test sees another's entries), ``bench.core`` and the fuzzer.
Two apps in one process share nothing.

What each cache may skip, and why a hit is always the same answer:

* ``tokens`` (``verifier.claims.TokenCache``): the parse and signature check of
  a token already verified with the same key object under the same settings
  object; the clock checks run on every request. ``None`` when
  ``TOKEN_CACHE_SIZE`` is 0: every request verifies its token.
* ``certs`` (``verifier.transport.CertCache``): parsing a certificate PEM seen
  before, keyed by its exact text; every check on the parsed certificate still
  runs.
* ``issuers`` (``verifier.transport.IssuerCache``): the signature check of a
  certificate against a configured issuing CA, keyed by (certificate
  fingerprint, that CA object).

* ``identities``: the ``Identity`` of an allow, keyed by the very certificate and
  token objects the two caches above returned (and the bound subject), so a client
  reusing its token gets the same object and its header JSON is built once
  (``Identity.to_header``). The entry holds both objects, so their ids cannot be
  reused while it lives; an identity is a pure function of the three.

All four are bounded LRUs (``verifier.lru``) and thread-safe: gunicorn's
threads share one app's caches.
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier.claims import TokenCache, VerifiedToken
from verifier.identity import Identity
from verifier.lru import BoundedLRU
from verifier.settings import Settings
from verifier.transport import CertCache, IssuerCache, PresentedCert

CERT_CACHE_SIZE = 256
"""Distinct client certificates remembered (each a few KiB parsed)."""
ISSUER_CACHE_SIZE = 256
"""(certificate, CA) verdicts remembered."""
IDENTITY_CACHE_SIZE = 256
"""Allowed (certificate, token, subject) identities remembered."""
IdentityCache = BoundedLRU[tuple[int, int, str], tuple[PresentedCert, VerifiedToken, Identity]]


@dataclass(frozen=True)
class DecisionCaches:
    """The verified-token, parsed-certificate and issuer-verdict caches of one verifier."""

    tokens: TokenCache | None
    certs: CertCache
    issuers: IssuerCache
    identities: IdentityCache

    @classmethod
    def from_settings(cls, settings: Settings) -> DecisionCaches:
        """Caches sized by ``settings`` (``TOKEN_CACHE_SIZE``; 0 = no token cache)."""
        size = settings.token_cache_size
        return cls(
            tokens=BoundedLRU(size) if size > 0 else None,
            certs=BoundedLRU(CERT_CACHE_SIZE),
            issuers=BoundedLRU(ISSUER_CACHE_SIZE),
            identities=BoundedLRU(IDENTITY_CACHE_SIZE),
        )
