"""Check 2b: find the token's signing key by ``kid`` in Keycloak's JWKS.

Key sources share one small interface, ``get_key(kid, now) -> PyJWK``:

* ``StaticKeySource``: a fixed key set, for unit tests and the fuzzer;
* ``JWKSKeySource``: Keycloak's JWKS, cached as parsed ``PyJWK`` objects by kid.

Refresh policy of ``JWKSKeySource`` (mirrors PyJWT's ``PyJWKClient`` cooldown):

* an unknown kid, or keys older than ``max_age``, trigger a refetch, but at
  most ONE fetch attempt per ``cooldown`` seconds, successful or not, so a
  flood of tokens with random kids cannot turn into a flood on Keycloak;
* a failed fetch keeps the last good keys: while Keycloak is down, tokens
  signed by known keys keep verifying and unknown kids are refused;
* never fetched successfully -> ``jwks_unavailable``; fetched but the kid is not
  there -> ``token_key_unknown``. Both are 401.

``fetch_jwks`` is the ONLY network I/O in the verifier and the one seam tests
patch. The clock is the caller's ``now``, so the cooldown is testable.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import requests
from jwt import PyJWK
from jwt.exceptions import PyJWTError
from urllib3.exceptions import HTTPError as Urllib3Error

from verifier.errors import JwksUnavailable, TokenKeyUnknown
from verifier.settings import Settings

MAX_JWKS_BYTES = 512 * 1024
log = logging.getLogger(__name__)


class KeySource(Protocol):
    """Anything that maps a ``kid`` to a verification key at time ``now``."""

    def get_key(self, kid: str, now: float) -> PyJWK: ...

    def refresh_if_stale(self, now: float) -> None: ...

    @property
    def key_count(self) -> int: ...


def fetch_jwks(url: str, ca_bundle: str | None, timeout: float) -> Mapping[str, Any]:
    """GET the JWKS document over HTTPS, verifying the server against ``ca_bundle``.

    Redirects are not followed (a JWKS URL is configuration, not something to be
    talked out of) and the body is capped, so a hostile endpoint cannot exhaust
    memory, and ``timeout`` bounds the whole fetch, not only each socket read
    (an endpoint trickling a byte at a time must not hold a worker). Every
    failure is raised as ``JwksUnavailable`` from its cause.
    """
    if not url.startswith("https://"):
        raise JwksUnavailable(f"JWKS URL must be https: {url!r}")
    verify: str | bool = ca_bundle if ca_bundle else True
    deadline = time.monotonic() + timeout
    try:
        with requests.get(
            url, verify=verify, timeout=timeout, allow_redirects=False, stream=True
        ) as response:
            response.raise_for_status()
            body = _read_body(response.raw, deadline)
    # urllib3's ProtocolError (connection broken mid-body) is not a RequestException.
    except (requests.RequestException, Urllib3Error, OSError) as e:
        raise JwksUnavailable(f"fetch {url}: {type(e).__name__}") from e
    if len(body) > MAX_JWKS_BYTES:
        raise JwksUnavailable(f"JWKS larger than {MAX_JWKS_BYTES} bytes")
    try:
        document = json.loads(body)
    except ValueError as e:
        raise JwksUnavailable("JWKS is not JSON") from e
    if not isinstance(document, Mapping):
        raise JwksUnavailable("JWKS is not a JSON object")
    return document


def _read_body(raw: Any, deadline: float) -> bytes:
    """At most ``MAX_JWKS_BYTES + 1`` bytes of the body, read before ``deadline``."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_JWKS_BYTES:
        if time.monotonic() > deadline:
            raise JwksUnavailable("JWKS fetch exceeded its timeout")
        chunk = raw.read1(MAX_JWKS_BYTES + 1 - size, decode_content=True)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def parse_jwks(document: Mapping[str, Any]) -> dict[str, PyJWK]:
    """Signing keys by kid; encryption, symmetric and unusable keys are skipped.

    Keycloak publishes an ``RSA-OAEP`` key with ``use: enc`` next to its signing
    keys; it must never verify a signature, so it is dropped here. A symmetric
    (``kty: oct``) key has no business in a public JWKS; dropping it means an
    HMAC key can never be chosen, whatever the alg allowlist says.
    """
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise JwksUnavailable("JWKS has no 'keys' list")
    parsed: dict[str, PyJWK] = {}
    for jwk in keys:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        if jwk.get("kty") == "oct":
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        try:
            parsed[kid] = PyJWK.from_dict(jwk)
        except PyJWTError:
            continue
    if not parsed:
        raise JwksUnavailable("JWKS holds no usable signing key")
    return parsed


class StaticKeySource:
    """A fixed set of keys; never fetches."""

    def __init__(self, keys: Mapping[str, PyJWK] | Iterable[PyJWK]) -> None:
        if isinstance(keys, Mapping):
            self._keys = dict(keys)
        else:
            self._keys = {k.key_id: k for k in keys if k.key_id}

    @classmethod
    def from_jwks(cls, document: Mapping[str, Any]) -> StaticKeySource:
        return cls(parse_jwks(document))

    @property
    def key_count(self) -> int:
        return len(self._keys)

    def refresh_if_stale(self, now: float) -> None:
        """Nothing to refresh."""

    def get_key(self, kid: str, now: float) -> PyJWK:
        try:
            return self._keys[kid]
        except KeyError:
            raise TokenKeyUnknown(f"kid {kid!r}") from None


class JWKSKeySource:
    """Keycloak's JWKS, fetched lazily and rate-limited (see module docstring)."""

    def __init__(
        self,
        url: str,
        ca_bundle: str | None = None,
        *,
        timeout: float = 2.0,
        cooldown: float = 30.0,
        max_age: float = 300.0,
    ) -> None:
        self.url = url
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self.cooldown = cooldown
        self.max_age = max_age
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self.last_error: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> JWKSKeySource:
        """The key source the settings describe (URL, server CA, timings)."""
        return cls(
            settings.jwks_url,
            settings.jwks_ca_bundle,
            timeout=settings.jwks_timeout_seconds,
            cooldown=settings.jwks_cooldown_seconds,
            max_age=settings.jwks_max_age_seconds,
        )

    @property
    def key_count(self) -> int:
        return len(self._keys)

    def get_key(self, kid: str, now: float) -> PyJWK:
        key = self._keys.get(kid)
        if key is not None and not self._stale(now):
            return key
        with self._lock:
            if self._may_fetch(now):
                self._refresh(now)
            key = self._keys.get(kid)
        if key is not None:
            return key
        if self._fetched_at is None:
            raise JwksUnavailable("JWKS never fetched successfully")
        raise TokenKeyUnknown(f"kid {kid!r} not in JWKS")

    def refresh_if_stale(self, now: float) -> None:
        """Fetch ahead of the first request (health checks), within the cooldown."""
        if self._stale(now):
            with self._lock:
                if self._may_fetch(now):
                    self._refresh(now)

    def _stale(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at >= self.max_age

    def _may_fetch(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self.cooldown

    def _refresh(self, now: float) -> None:
        """One fetch attempt; on failure the previous keys stay in place."""
        self._attempted_at = now
        try:
            keys = parse_jwks(fetch_jwks(self.url, self.ca_bundle, self.timeout))
        except JwksUnavailable as e:
            self.last_error = e.detail
            log.warning("JWKS refresh failed, keeping %d keys: %s", len(self._keys), e)
            return
        self._keys = keys
        self._fetched_at = now
        self.last_error = None
