"""Call the gateway with the workload's certificate and a bearer token."""

from __future__ import annotations

from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from client.token import TokenSource


@dataclass(frozen=True)
class Identity:
    """Files that make up a workload identity on disk."""

    cert_file: str  # leaf + chain, PEM; may also hold the key (bundle.pem)
    key_file: str | None
    server_ca_file: str  # the only CA trusted for the gateway and Keycloak

    @property
    def requests_cert(self) -> str | tuple[str, str]:
        return self.cert_file if self.key_file is None else (self.cert_file, self.key_file)


def reload_safe_adapter() -> HTTPAdapter:
    """Retry idempotent requests on a *new* connection when the old one was closed.

    A graceful nginx reload closes idle keep-alive connections; a request racing that
    close fails on a connection nginx already gave up. Retrying idempotent methods
    on a new connection is what makes reloads and certificate rotations invisible to
    callers. Never retried: POST etc., and any HTTP answer (a 401/403/5xx is
    returned as is).
    """
    retry = Retry(
        total=2,
        connect=2,
        read=2,
        status=0,
        other=0,
        allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}),
        backoff_factor=0.05,
        raise_on_status=False,
    )
    return HTTPAdapter(max_retries=retry)


class GatewayClient:
    """mTLS + bearer calls. Cert files are re-read for every new TLS connection,
    so a rotated cert/key pair is picked up without restarting the client. Give
    it the identity's ``bundle.pem`` (key + chain in one file, replaced by one
    atomic rename) so a rotation can never pair a new key with an old cert."""

    def __init__(self, base_url: str, identity: Identity, tokens: TokenSource) -> None:
        self._base = base_url.rstrip("/")
        self._identity = identity
        self._tokens = tokens
        self._session = requests.Session()
        self._session.mount("https://", reload_safe_adapter())

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self._tokens.get()}"}
        return self._session.request(
            method,
            f"{self._base}{path}",
            headers=headers,
            cert=self._identity.requests_cert,
            verify=self._identity.server_ca_file,
            timeout=kwargs.pop("timeout", 10),
            **kwargs,
        )
