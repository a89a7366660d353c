"""The benchmark's bearer tokens: client_credentials for python-client, from Keycloak.

The token is requested with python-client's certificate (RFC 8705: no client
secret exists) and bound to it; vegeta presents that same certificate. Tokens
live 300 s; ``TokenSource`` refreshes ``TOKEN_REFRESH_MARGIN_SECONDS`` before
expiry, so a token taken just before a run outlives that run.
"""

from __future__ import annotations

from bench import config as bench_config
from client.credential import Identity
from client.token import TokenSource
from scripts import config
from scripts.files import read_json
from scripts.pki import certs


def token_source() -> TokenSource:
    """A cached token source for the benchmark's client identity."""
    outputs = read_json(config.IDENTITY_OUTPUTS)
    client_id = outputs["workload_clients"][bench_config.CLIENT_IDENTITY]
    cert, _ = config.client_cert_paths(bench_config.CLIENT_IDENTITY)
    return TokenSource(
        outputs["token_endpoint"],
        client_id,
        Identity(str(certs.bundle_path(cert)), None, str(config.SERVER_CA_BUNDLE)),
        refresh_margin=bench_config.TOKEN_REFRESH_MARGIN_SECONDS,
    )
