"""OAuth2 client_credentials against Keycloak with the workload's certificate (RFC 8705).

No client secret exists: the workload authenticates to the token endpoint with
its certificate (``tls_client_auth``), and the token it gets is bound to that
certificate (``cnf.x5t#S256``). A token is cached until shortly before expiry and
dropped as soon as the certificate changes (a rotation): a token is only ever
used with the certificate generation it was fetched with.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import jwt
import requests

from client.credential import Credential, CredentialError, Identity, Snapshot


class TokenError(RuntimeError):
    """Keycloak refused or could not be reached; the message says which."""


@dataclass(frozen=True)
class Token:
    access_token: str
    generation: int  # the certificate generation it is bound to
    expires_at: float  # monotonic clock


class TokenSource:
    """Fetches and caches an access token per certificate generation; refreshes
    ``refresh_margin`` seconds before expiry. Thread-safe: concurrent callers
    share one fetch."""

    def __init__(
        self,
        token_endpoint: str,
        client_id: str,
        credential: Credential | Identity,
        refresh_margin: float = 30.0,
        timeout: float = 5.0,
    ) -> None:
        self._endpoint = token_endpoint
        self.client_id = client_id
        self.credential = (
            credential if isinstance(credential, Credential) else Credential(credential)
        )
        self._margin = refresh_margin
        self._timeout = timeout
        self._lock = threading.Lock()
        self._token: Token | None = None

    def get(self, snapshot: Snapshot | None = None) -> str:
        """A token bound to ``snapshot``'s certificate (default: the current one)."""
        try:
            snap = snapshot or self.credential.snapshot()
        except CredentialError as e:
            raise TokenError(str(e)) from e
        with self._lock:
            t = self._token
            if (
                t is None
                or t.generation != snap.generation
                or time.monotonic() >= t.expires_at - self._margin
            ):
                t = self._token = self._fetch(snap)
            return t.access_token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self, snap: Snapshot) -> Token:
        try:
            r = snap.session.post(
                self._endpoint,
                data={"grant_type": "client_credentials", "client_id": self.client_id},
                verify=snap.server_ca_file,
                timeout=self._timeout,
            )
        except requests.RequestException as e:
            raise TokenError(f"cannot reach Keycloak at {self._endpoint}: {e}") from e
        if r.status_code != 200:
            raise TokenError(
                f"Keycloak refused client_credentials for {self.client_id} with its "
                f"certificate ({r.status_code}): {r.text[:200]}"
            )
        try:
            body = r.json()
            return Token(
                str(body["access_token"]),
                snap.generation,
                time.monotonic() + float(body["expires_in"]),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise TokenError(
                f"Keycloak answered client_credentials for {self.client_id} without a "
                f"usable token ({e!r}): {r.text[:200]}"
            ) from e


def decode_unverified(token: str) -> dict:
    """Header and claims for display only (the verifier does the real checks)."""
    return {
        "header": jwt.get_unverified_header(token),
        "claims": jwt.decode(token, options={"verify_signature": False}),
    }
