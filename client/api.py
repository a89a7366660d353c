"""Call the gateway with the workload's certificate and a token bound to it."""

from __future__ import annotations

import requests

from client.credential import Credential, Identity, reload_safe_adapter
from client.token import TokenSource

__all__ = ["Credential", "GatewayClient", "Identity", "reload_safe_adapter"]


class GatewayClient:
    """mTLS + bearer calls, the token bound to the certificate of the connection.

    Each request takes one snapshot of the workload's certificate and uses it for
    both the token (fetched again when the certificate changed) and the TLS
    connection, so a rotation — ``bundle.pem`` replaced by one atomic rename — is
    picked up without restarting the client and never sends a token over a
    connection made with another certificate. Connections of the previous
    certificate are not reused for new requests."""

    def __init__(self, base_url: str, tokens: TokenSource) -> None:
        self._base = base_url.rstrip("/")
        self._tokens = tokens

    @property
    def tokens(self) -> TokenSource:
        return self._tokens

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        snap = self._tokens.credential.snapshot()
        headers = {
            **kwargs.pop("headers", {}),
            "Authorization": f"Bearer {self._tokens.get(snap)}",
        }
        return snap.session.request(
            method,
            f"{self._base}{path}",
            headers=headers,
            verify=snap.server_ca_file,
            timeout=kwargs.pop("timeout", 10),
            **kwargs,
        )
