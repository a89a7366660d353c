"""The peer in the same ``auth_request`` slot: oauth2-proxy validating the same token.

The question a user asks is not "what does zero trust cost against nothing" but "is
it slower than what I would put there instead". The usual answer behind nginx is
oauth2-proxy (Go) with ``--skip-jwt-bearer-tokens``: nginx's ``auth_request`` asks
its ``/oauth2/auth``, which verifies the bearer token's signature (JWKS from our
Keycloak's OIDC discovery, over TLS with the server CA), issuer, expiry and audience,
and answers 202 or 401. It does less than the verifier per request (no certificate
binding, no route policy, no audit line; it writes a request log line), so being
ahead of it is being ahead while doing more.

Its settings go into a TOML file of its own, written per run into
``.state/bench/peer/`` with mode 0600, because three of them are secrets it insists
on although a bearer-only check never uses them (client secret, cookie secret); they
are random per run, never on a command line, never logged. The client id is the
API's (the verifier's audience), so both check the same ``aud``. It listens on a
unix socket like the verifier, is started with its own session and stopped by pid
(``procs``), like the benchmark's nginx instances.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from bench import config as bench_config
from bench import sockets
from scripts import config
from scripts.files import read_json, write_secret
from scripts.services import procs, unixhttp
from scripts.steps import wait_until

PEER = config.Service(
    "oauth2-proxy", None, run_dir=bench_config.PEER_DIR, log_dir=bench_config.PEER_DIR / "logs"
)
# Its own 0700 folder (write_secret): the socket's folder must stay open to nginx.
PEER_CONFIG = bench_config.PEER_DIR / "secret" / "oauth2-proxy.cfg"
PEER_SOCKET = bench_config.PEER_DIR / "oauth2-proxy.sock"
READY_SECONDS = 60.0


def _toml(value: object) -> str:
    """A TOML value for the few types the settings use (strings are JSON-compatible)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def settings(issuer: str, audience: str, socket: Path) -> dict[str, object]:
    """oauth2-proxy's settings, secrets generated now (random per run, never reused)."""
    return {
        "provider": "oidc",
        "oidc_issuer_url": issuer,
        "provider_ca_files": [str(config.SERVER_CA_BUNDLE)],
        "client_id": audience,  # the audience it requires in a bearer token, as ours
        "client_secret": secrets.token_urlsafe(32),  # unused by a bearer-only check
        "cookie_secret": secrets.token_hex(16),  # 32 bytes, as it requires; unused
        "cookie_secure": True,
        "email_domains": ["*"],
        # A client-credentials token has no email: take the subject, as the verifier does.
        "oidc_email_claim": "sub",
        "insecure_oidc_allow_unverified_email": True,
        "skip_jwt_bearer_tokens": True,
        "skip_provider_button": True,
        "reverse_proxy": True,
        "upstreams": ["static://202"],
        "http_address": f"unix://{socket}",
        "silence_ping_logging": True,
    }


def write_config(path: Path = PEER_CONFIG) -> Path:
    """Write this run's settings (0600: they hold the secrets)."""
    identity = read_json(config.IDENTITY_OUTPUTS)
    values = settings(identity["issuer"], identity["api_client_id"], PEER_SOCKET)
    write_secret(path, "".join(f"{k} = {_toml(v)}\n" for k, v in values.items()))
    return path


def start(binary: Path) -> int:
    """Start oauth2-proxy (one a crashed run left is stopped first); return its pid
    once it answers ``/ping`` on its socket (it has read Keycloak's discovery by then)."""
    procs.stop(PEER)
    bench_config.PEER_DIR.mkdir(parents=True, exist_ok=True)
    bench_config.PEER_DIR.chmod(0o755)
    PEER_SOCKET.unlink(missing_ok=True)
    write_config()
    pid = procs.start(PEER, [str(binary), f"--config={PEER_CONFIG}"], cwd=bench_config.PEER_DIR)
    wait_until(
        "oauth2-proxy (the peer) answering /ping",
        lambda: procs.alive_or_fail(PEER) and unixhttp.answers(PEER_SOCKET, "/ping"),
        READY_SECONDS,
        str(PEER.log_file),
        interval=0.2,
    )
    sockets.open_to_nginx(PEER_SOCKET)
    return pid


def stop() -> bool:
    """Stop it by pid; its log (a line per request) goes with it, its config too."""
    stopped = procs.stop(PEER, timeout=10.0)
    PEER.log_file.unlink(missing_ok=True)
    PEER_CONFIG.unlink(missing_ok=True)
    return stopped
