"""What Keycloak's drills share (tests/ha/test_keycloak_*.py): a workload that keeps
fetching tokens, and admin sessions through each node's own port.

``Workload``: each load thread runs the client library as python-client does, but with a
*fresh* ``TokenSource`` every ``TOKEN_EVERY`` requests, so tokens are fetched all through
a drill (a new TLS connection to the edge, a new token from whichever node answers),
not once at the start. A fetch that fails is retried (bounded) and then given up: the
thread keeps its previous client and token, which is still valid, exactly what a
workload does. Fetches and failed fetches are counted and timed for the figures; an
API request that fails is counted by ``tests.load.Load``.
"""

from __future__ import annotations

import functools
import threading
import time

import requests

from client.api import GatewayClient
from client.token import TokenError
from scripts import config
from scripts.services import keycloak, keycloak_cluster
from tests.load import Send
from tests.tokens import token_source

WORKLOAD = "python-client"
TOKEN_EVERY = 5  # requests per token source (and so per token fetch), per thread
FETCH_TRIES = 3
FETCH_RETRY_SECONDS = 0.5


class Workload:
    def __init__(self) -> None:
        self.fetched_at: list[float] = []  # time.monotonic() of each token fetched
        self.failed_fetches: list[tuple[float, str]] = []  # (when, why) of each failed try
        self._lock = threading.Lock()

    def _fresh_client(self) -> GatewayClient | None:
        for _ in range(FETCH_TRIES):
            tokens = token_source(WORKLOAD)
            try:
                tokens.get()
            except TokenError as e:
                with self._lock:
                    self.failed_fetches.append((time.monotonic(), str(e)[:160]))
                time.sleep(FETCH_RETRY_SECONDS)
                continue
            with self._lock:
                self.fetched_at.append(time.monotonic())
            return GatewayClient(config.GATEWAY_URL, tokens)
        return None

    def sender(self) -> Send:
        """One thread's sender (``tests.load.Load``'s ``sender``)."""
        state: dict = {"sent": 0, "client": None}

        def send(path: str) -> requests.Response:
            if state["client"] is None or state["sent"] % TOKEN_EVERY == 0:
                state["client"] = self._fresh_client() or state["client"]
                if state["client"] is None:
                    raise TokenError("no token at all yet")
            state["sent"] += 1
            return state["client"].request("GET", path)

        return send

    def fetched_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.fetched_at if start <= t <= end)

    def summary(self, since: float) -> str:
        """Fetches and failed tries, with when (seconds after ``since``) and why."""
        failed = [t - since for t, _ in self.failed_fetches]
        text = f"{len(self.fetched_at)} tokens fetched, {len(failed)} failed fetch tries"
        if failed:
            why = sorted({reason for _, reason in self.failed_fetches})[:3]
            text += f" (between +{min(failed):.1f}s and +{max(failed):.1f}s: {why})"
        return text


def admin_session(base: str) -> requests.Session:
    """An admin session whose token came from the Keycloak at ``base`` (a node's own URL,
    or the edge's)."""
    admin = keycloak.admin_credentials()
    r = requests.post(
        f"{base}/realms/master/protocol/openid-connect/token",
        data={"grant_type": "password", "client_id": "admin-cli", **admin},
        verify=str(config.SERVER_CA_BUNDLE),
        timeout=20,
    )
    r.raise_for_status()
    s = requests.Session()
    # Per-request `verify`: requests lets REQUESTS_CA_BUNDLE override Session.verify.
    s.request = functools.partial(s.request, verify=str(config.SERVER_CA_BUNDLE), timeout=20)
    s.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    return s


def realm_shape(base: str) -> dict[str, list[str]]:
    """The zerotrust realm's client ids and realm roles, read through ``base``."""
    s = admin_session(base)
    realm = f"{base}/admin/realms/zerotrust"
    clients = s.get(f"{realm}/clients")
    roles = s.get(f"{realm}/roles")
    assert clients.status_code == 200 and roles.status_code == 200, (clients.text, roles.text)
    return {
        "clients": sorted(c["clientId"] for c in clients.json()),
        "roles": sorted(r["name"] for r in roles.json()),
    }


def jwks_kids() -> set[str]:
    """The key ids of the realm's JWKS through the edge (what the verifier fetches)."""
    r = requests.get(
        f"{config.KEYCLOAK_URL}/realms/zerotrust/protocol/openid-connect/certs",
        verify=str(config.SERVER_CA_BUNDLE),
        timeout=10,
    )
    assert r.status_code == 200, r.text[:200]
    return {k["kid"] for k in r.json()["keys"]}


def cluster_of_two() -> bool:
    """Both nodes ready, each one's latest cluster view listing two members."""
    return all(
        keycloak_cluster.ready(node) and keycloak_cluster.last_view_size(node) == 2
        for node in config.KEYCLOAK_NODES
    )
