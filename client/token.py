"""OAuth2 client_credentials against Keycloak, cached until shortly before expiry."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import jwt
import requests


class TokenError(RuntimeError):
    """Keycloak refused or could not be reached; the message says which."""


@dataclass(frozen=True)
class Token:
    access_token: str
    expires_at: float  # monotonic clock


class TokenSource:
    """Fetches and caches an access token; refreshes ``refresh_margin`` seconds before expiry.

    Thread-safe: concurrent callers share one fetch.
    """

    def __init__(
        self,
        token_endpoint: str,
        client_id: str,
        client_secret: str,
        ca_bundle: str,
        refresh_margin: float = 30.0,
        timeout: float = 5.0,
    ) -> None:
        self._endpoint = token_endpoint
        self._auth = (client_id, client_secret)
        self._verify = ca_bundle
        self._margin = refresh_margin
        self._timeout = timeout
        self._lock = threading.Lock()
        self._token: Token | None = None
        self._session = requests.Session()

    def get(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._token.expires_at - self._margin:
                self._token = self._fetch()
            return self._token.access_token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self) -> Token:
        try:
            r = self._session.post(
                self._endpoint,
                data={"grant_type": "client_credentials"},
                auth=self._auth,
                verify=self._verify,
                timeout=self._timeout,
            )
        except requests.RequestException as e:
            raise TokenError(f"cannot reach Keycloak at {self._endpoint}: {e}") from e
        if r.status_code != 200:
            raise TokenError(
                f"Keycloak refused client_credentials ({r.status_code}): {r.text[:200]}"
            )
        body = r.json()
        return Token(body["access_token"], time.monotonic() + float(body["expires_in"]))


def decode_unverified(token: str) -> dict:
    """Header and claims for display only (the verifier does the real checks)."""
    return {
        "header": jwt.get_unverified_header(token),
        "claims": jwt.decode(token, options={"verify_signature": False}),
    }
