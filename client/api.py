"""Call the gateway with the workload's certificate and a bearer token."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from client.token import TokenSource


@dataclass(frozen=True)
class Identity:
    """Files that make up a workload identity on disk."""

    cert_file: str  # leaf + chain, PEM
    key_file: str
    server_ca_file: str  # the only CA trusted for the gateway and Keycloak


class GatewayClient:
    """mTLS + bearer calls. Cert files are re-read for every new TLS connection,
    so a rotated cert/key pair is picked up without restarting the client."""

    def __init__(self, base_url: str, identity: Identity, tokens: TokenSource) -> None:
        self._base = base_url.rstrip("/")
        self._identity = identity
        self._tokens = tokens
        self._session = requests.Session()

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self._tokens.get()}"}
        return self._session.request(
            method,
            f"{self._base}{path}",
            headers=headers,
            cert=(self._identity.cert_file, self._identity.key_file),
            verify=self._identity.server_ca_file,
            timeout=kwargs.pop("timeout", 10),
            **kwargs,
        )
