"""Check 2b: find the token's signing key by ``kid`` in Keycloak's JWKS.

Key sources share one small interface (``KeySource``): ``get_key(kid, now)``,
``refresh_if_stale(now, wait=0)`` and ``status(now)``:

* ``StaticKeySource``: a fixed key set, for unit tests and the fuzzer;
* ``JWKSKeySource``: Keycloak's JWKS, cached as parsed ``PyJWK`` objects by kid.

Why ``JWKSKeySource`` never makes a request wait on Keycloak (issue 17: one
slow fetch under one lock used to hold every verifier thread for 43 s):

* **single flight, in the background**: at most ONE fetch runs at a time, on
  its own thread; a request that finds the keys due for a refresh (older than
  ``max_age``) starts it and goes on with the keys it has;
* **a known kid never waits**: it is answered from the cache, whatever a fetch
  is doing;
* **an unknown kid waits at most ``unknown_kid_wait`` seconds** for the fetch
  in flight (starting one if the cooldown allows), then is refused with
  ``token_key_unknown`` (``jwks_unavailable`` while nothing was ever fetched);
  the bound is well under nginx's 3 s read timeout of the auth subrequest;
* **every fetch has a total deadline** (``jwks_fetch.fetch_jwks``: connect, TLS,
  status line, headers and body together), so a trickling endpoint cannot keep
  the single flight busy either;
* **rate limit**: at most one fetch attempt per ``cooldown`` seconds, successful
  or not, so a flood of tokens with random kids cannot become a flood on Keycloak;
* **a failed fetch keeps the last good keys**, but only up to the hard maximum
  staleness: keys last fetched successfully more than ``max_staleness`` seconds
  ago are no longer trusted (``jwks_stale``), so a key removed from Keycloak stops
  working even while refreshes keep failing.

Times: ``now`` is the caller's clock (epoch seconds, injectable), so cooldown,
age and staleness are testable; a fetch's keys count as fetched at the ``now`` of
the request that started it (the conservative end). The waits are real seconds.

``fetch_jwks`` (``verifier.jwks_fetch``) is the ONLY network I/O in the verifier
and the one seam tests patch (``verifier.jwks.fetch_jwks``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from jwt import PyJWK
from jwt.exceptions import PyJWTError

from verifier.errors import JwksStale, JwksUnavailable, TokenKeyUnknown
from verifier.jwks_fetch import MAX_JWKS_BYTES, fetch_jwks
from verifier.settings import Settings

__all__ = [
    "MAX_JWKS_BYTES",
    "JWKSKeySource",
    "KeySource",
    "KeyStatus",
    "StaticKeySource",
    "fetch_jwks",
    "parse_jwks",
]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyStatus:
    """What a key source holds at ``now``: the verifier's ``/healthz`` reports it."""

    keys: int
    """Signing keys loaded (0: nothing was ever fetched successfully)."""
    age_seconds: float | None
    """Since the last successful fetch started; None when there was none."""
    max_staleness_seconds: float | None
    """Past this age the keys are refused (``jwks_stale``); None: never stale."""
    refreshing: bool
    """A fetch is in flight now."""
    last_error: str | None
    """Why the last fetch failed; None after a success."""

    @property
    def fresh(self) -> bool:
        """Keys are loaded and young enough to be trusted."""
        if self.keys == 0 or self.age_seconds is None:
            return False
        return self.max_staleness_seconds is None or self.age_seconds <= self.max_staleness_seconds


class KeySource(Protocol):
    """Anything that maps a ``kid`` to a verification key at time ``now``."""

    def get_key(self, kid: str, now: float) -> PyJWK: ...

    def refresh_if_stale(self, now: float, *, wait: float = 0.0) -> None: ...

    def status(self, now: float) -> KeyStatus: ...

    @property
    def key_count(self) -> int: ...


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

    def refresh_if_stale(self, now: float, *, wait: float = 0.0) -> None:
        """Nothing to refresh."""

    def status(self, now: float) -> KeyStatus:
        """Always fresh: a fixed key set does not age."""
        return KeyStatus(len(self._keys), 0.0, None, refreshing=False, last_error=None)

    def get_key(self, kid: str, now: float) -> PyJWK:
        try:
            return self._keys[kid]
        except KeyError:
            raise TokenKeyUnknown(f"kid {kid!r}") from None


@dataclass(frozen=True)
class _Loaded:
    """The keys of one successful fetch and when it started; replaced as one value,
    so a reader never pairs new keys with an old time."""

    keys: Mapping[str, PyJWK]
    fetched_at: float


class JWKSKeySource:
    """Keycloak's JWKS, refreshed in the background (see the module docstring)."""

    def __init__(
        self,
        url: str,
        ca_bundle: str | None = None,
        *,
        timeout: float = 2.0,
        cooldown: float = 30.0,
        max_age: float = 300.0,
        max_staleness: float = 900.0,
        unknown_kid_wait: float = 1.0,
    ) -> None:
        self.url = url
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self.cooldown = cooldown
        self.max_age = max_age
        self.max_staleness = max_staleness
        self.unknown_kid_wait = unknown_kid_wait
        self.last_error: str | None = None
        self._loaded: _Loaded | None = None
        self._attempted_at: float | None = None
        self._in_flight: threading.Event | None = None
        """Set when the running fetch ends; None while none runs. Guarded by ``_lock``."""
        self._lock = threading.Lock()
        self._listeners: list[Callable[[bool], None]] = []

    def subscribe(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(succeeded)`` after every fetch attempt, on the thread that
        made it (the verifier's metrics: key count, last success, failures). A
        listener that raises is logged and never affects the keys."""
        self._listeners.append(listener)

    @classmethod
    def from_settings(cls, settings: Settings) -> JWKSKeySource:
        """The key source the settings describe (URL, server CA, timings)."""
        return cls(
            settings.jwks_url,
            settings.jwks_ca_bundle,
            timeout=settings.jwks_timeout_seconds,
            cooldown=settings.jwks_cooldown_seconds,
            max_age=settings.jwks_max_age_seconds,
            max_staleness=settings.jwks_max_staleness_seconds,
            unknown_kid_wait=settings.jwks_unknown_kid_wait_seconds,
        )

    @property
    def key_count(self) -> int:
        loaded = self._loaded
        return len(loaded.keys) if loaded else 0

    def get_key(self, kid: str, now: float) -> PyJWK:
        """The key for ``kid``; a known kid never waits, an unknown one at most
        ``unknown_kid_wait`` seconds."""
        loaded = self._loaded
        if loaded is None or now - loaded.fetched_at >= self.max_age:
            self._start_refresh(now)
        if loaded is None or kid not in loaded.keys:
            # Maybe a key Keycloak just rotated in: give the fetch in flight (one
            # is started above when the cooldown allows) a bounded chance.
            self._start_refresh(now)
            self.wait_for_refresh(self.unknown_kid_wait)
            loaded = self._loaded
        if loaded is None:
            raise JwksUnavailable(f"JWKS never fetched successfully ({self.last_error})")
        age = now - loaded.fetched_at
        if age > self.max_staleness:
            raise JwksStale(
                f"keys last fetched {age:.0f}s ago, more than the {self.max_staleness:g}s "
                f"allowed; last refresh error: {self.last_error}"
            )
        key = loaded.keys.get(kid)
        if key is None:
            raise TokenKeyUnknown(f"kid {kid!r} not in JWKS")
        return key

    def refresh_if_stale(self, now: float, *, wait: float = 0.0) -> None:
        """Start a fetch when the keys are missing or due (within the cooldown), then
        wait at most ``wait`` seconds for the fetch in flight (a worker's boot waits
        for its first keys; a health probe does not wait)."""
        loaded = self._loaded
        if loaded is None or now - loaded.fetched_at >= self.max_age:
            self._start_refresh(now)
        if wait > 0:
            self.wait_for_refresh(wait)

    def wait_for_refresh(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the fetch in flight; True when none runs now."""
        with self._lock:
            done = self._in_flight
        return done is None or done.wait(timeout)

    def status(self, now: float) -> KeyStatus:
        loaded = self._loaded
        with self._lock:
            refreshing = self._in_flight is not None
        return KeyStatus(
            keys=len(loaded.keys) if loaded else 0,
            age_seconds=now - loaded.fetched_at if loaded else None,
            max_staleness_seconds=self.max_staleness,
            refreshing=refreshing,
            last_error=self.last_error,
        )

    def _start_refresh(self, now: float) -> None:
        """Start the one background fetch, unless one runs or the cooldown forbids it."""
        with self._lock:
            if self._in_flight is not None:
                return
            if self._attempted_at is not None and now - self._attempted_at < self.cooldown:
                return
            self._attempted_at = now
            done = self._in_flight = threading.Event()
        thread = threading.Thread(
            target=self._refresh, args=(now, done), name="jwks-refresh", daemon=True
        )
        try:
            thread.start()
        except RuntimeError as e:  # no thread to be had: free the single flight again
            self._finish(None, f"refresh not started: {e}", done)

    def _refresh(self, now: float, done: threading.Event) -> None:
        """One fetch attempt (on the refresh thread); on failure the previous keys stay."""
        loaded: _Loaded | None = None
        try:
            loaded = _Loaded(parse_jwks(fetch_jwks(self.url, self.ca_bundle, self.timeout)), now)
            error = None
        except JwksUnavailable as e:
            error = e.detail
        except Exception as e:  # a bug must not leave the single flight taken forever
            log.exception("JWKS refresh failed unexpectedly")
            error = f"internal error: {type(e).__name__}"
        self._finish(loaded, error, done)

    def _finish(self, loaded: _Loaded | None, error: str | None, done: threading.Event) -> None:
        """Install what a fetch brought (or keep the keys held) and free the single flight."""
        with self._lock:
            if loaded is not None:
                self._loaded = loaded
            else:
                kept = self.key_count
                log.warning("JWKS refresh failed, keeping %d keys: %s", kept, error)
            self.last_error = error
            self._in_flight = None
        done.set()
        for listener in self._listeners:
            try:
                listener(loaded is not None)
            except Exception:
                log.exception("a JWKS fetch listener failed")
