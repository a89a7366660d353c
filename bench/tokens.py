"""The benchmark's bearer tokens: client_credentials for python-client, from Keycloak.

Tokens live 300 s; ``TokenSource`` refreshes ``TOKEN_REFRESH_MARGIN_SECONDS``
before expiry, so a token taken just before a run outlives that run.
"""

from __future__ import annotations

from bench import config as bench_config
from client.token import TokenSource
from scripts import config
from scripts.files import read_json


def token_source() -> TokenSource:
    """A cached token source for the benchmark's client identity."""
    outputs = read_json(config.IDENTITY_OUTPUTS)
    client_id = outputs["workload_clients"][bench_config.CLIENT_IDENTITY]
    secret = read_json(config.KEYCLOAK_CLIENT_SECRETS / f"{client_id}.json")["client_secret"]
    return TokenSource(
        outputs["token_endpoint"],
        client_id,
        secret,
        str(config.SERVER_CA_BUNDLE),
        refresh_margin=bench_config.TOKEN_REFRESH_MARGIN_SECONDS,
    )
