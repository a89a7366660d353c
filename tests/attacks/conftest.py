"""Fixtures for the attack suite: the real stack, real tokens, and the three logs.

Every attack is a real request to nginx on :8444. What a test asserts comes from
the logs the stack writes, never from the client's view alone:

* nginx's access log (``config.NGINX_ACCESS_LOG``): status, ``ssl_client_verify``;
* the verifier's audit log (``config.AUDIT_LOG``): the decision's reason code;
* the API's request log (``config.API_REQUEST_LOG``): what really reached the API.

nginx makes up ``$request_id`` itself, so a test cannot choose it. Instead each
request carries a random marker in its query string (``?attack=<hex>``; the
verifier strips queries before matching routes). ``log_since()`` remembers the
size of each log, the marker finds this request's one nginx line, and its
``request_id`` finds the audit and API lines appended since.

"The API received nothing" is checked strictly, and still works while someone
else uses the stack: every API line appended during the attack must belong to
another request that nginx logged. A line carrying our request id, or one no
logged request explains (a spoofed id, a request that bypassed nginx), counts
as received; the one exception is the bring-up's own ``/healthz`` probe on the
API's socket, which carries no request id.
"""

from __future__ import annotations

import contextlib
import functools
import json
import secrets
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from scripts import cli, config
from scripts.pki import certs
from scripts.services import apps, keycloak, openbao, procs
from tests.lockout_profile import lockout_off
from tests.tokens import SERVER_CA, cert_of, fetch_token
from tests.x509_helpers import csr_pem
from verifier.settings import Settings

MARKER_PARAM = "attack"
LOG_WAIT_SECONDS = 5.0


# --- the stack ----------------------------------------------------------------


@pytest.fixture(scope="session")
def stack() -> Iterator[None]:
    """The real stack, brought up (idempotently) if any part of it is not running."""
    h = openbao.health()
    down = [s.name for s in config.SERVICES if procs.running(s) is None]
    if h is None or h.get("sealed") or down or not config.IDENTITY_OUTPUTS.exists():
        assert cli.main(["up"]) == 0, "`python -m scripts.zt up` failed; see its output above"
    with lockout_off():  # many attacks send bad tokens on purpose (tests/lockout_profile.py)
        yield


@pytest.fixture(autouse=True)
def _sigpipe_stays_ignored() -> Iterator[None]:
    """Undo ``scripts.cli.main()``'s process-wide ``SIGPIPE = SIG_DFL`` after each test.

    Tests restore the stack in-process with ``cli.main(["up"])``; with SIGPIPE at
    its default, the next write to a socket the peer closed kills pytest itself
    (exit 141, no report). Reported as a bug in scripts/zt.py; pinned by
    tests/faults/test_restore_harness.py.
    """
    yield
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)


def restore_stack() -> int:
    """``scripts.zt up`` in-process (idempotent), keeping SIGPIPE ignored."""
    try:
        return cli.main(["up"])
    finally:
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)


@pytest.fixture(scope="session")
def identity(stack: None) -> dict[str, Any]:
    """terraform/identity's non-secret outputs (issuer, token endpoint, audience...)."""
    return json.loads(config.IDENTITY_OUTPUTS.read_text())


# --- credentials -----------------------------------------------------------------


@pytest.fixture
def token_for(identity: dict[str, Any]) -> Callable[..., str]:
    """``token_for("python-client")``: a real access token of a workload identity,
    bound to its current certificate; ``token_for(id, cert)`` binds it to ``cert``."""
    return lambda client_id, cert=None: fetch_token(client_id, cert, identity["token_endpoint"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the logs ----------------------------------------------------------------------


@dataclass(frozen=True)
class Trail:
    """What the stack logged about one request."""

    request_id: str
    nginx: dict[str, Any]  # the one access-log line
    audit: list[dict[str, Any]]  # the verifier's decisions for it (0 or 1)
    api: list[dict[str, Any]]  # what the API received (see the module docstring)

    @property
    def reasons(self) -> list[str]:
        return [line["reason"] for line in self.audit]


def _is_bringup_probe(api_line: Mapping[str, Any]) -> bool:
    """``scripts.gateway`` polls ``/healthz`` on the API's socket, bypassing nginx.

    Such a line has no request id; anything nginx forwards always has one.
    """
    return api_line.get("path") == "/healthz" and api_line.get("request_id") is None


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


class LogWindow:
    """The three logs from the moment of creation on, and this request's marker."""

    def __init__(self) -> None:
        self.marker = secrets.token_hex(8)
        self._paths = {
            "nginx": config.NGINX_ACCESS_LOG,
            "audit": config.AUDIT_LOG,
            "api": config.API_REQUEST_LOG,
        }
        self._offsets = {name: _size(path) for name, path in self._paths.items()}

    def url(self, path: str, *, base: str = config.GATEWAY_URL) -> str:
        """``base + path`` with this window's marker in the query string."""
        sep = "&" if "?" in path else "?"
        return f"{base}{path}{sep}{MARKER_PARAM}={self.marker}"

    def lines(self, log: str) -> list[dict[str, Any]]:
        """Complete JSON lines appended to ``log`` ("nginx", "audit", "api") since creation."""
        path = self._paths[log]
        offset = self._offsets[log] if _size(path) >= self._offsets[log] else 0  # rotated
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
        complete = data[: data.rfind(b"\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def marked_nginx_lines(self) -> list[dict[str, Any]]:
        return [line for line in self.lines("nginx") if self.marker in line["uri"]]

    def marked(self, count: int) -> list[dict[str, Any]]:
        """The ``count`` nginx lines carrying the marker, oldest first (waits for them)."""
        deadline = time.monotonic() + LOG_WAIT_SECONDS
        while len(mine := self.marked_nginx_lines()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(mine) == count, f"expected {count} nginx lines with {self.marker}, got {mine}"
        return mine

    def audit_for(self, request_id: str) -> list[dict[str, Any]]:
        """The verifier's audit lines for ``request_id`` appended since creation."""
        return [line for line in self.lines("audit") if line["request_id"] == request_id]

    def trail(self) -> Trail:
        """The logs of the one request that carried the marker (waits for nginx's line)."""
        (mine,) = self.marked(1)
        rid = mine["request_id"]
        return Trail(
            request_id=rid, nginx=mine, audit=self.audit_for(rid), api=self.api_lines_for(rid)
        )

    def api_lines_for(self, request_id: str) -> list[dict[str, Any]]:
        """API lines with ``request_id``, plus any API line no other logged request explains."""
        deadline = time.monotonic() + LOG_WAIT_SECONDS
        while True:
            api = self.lines("api")
            others = {
                line["request_id"]
                for line in self.lines("nginx")
                if self.marker not in line["uri"] and line["request_id"] != request_id
            }
            unexplained = [
                line
                for line in api
                if line.get("request_id") != request_id
                and line.get("request_id") not in others
                and not _is_bringup_probe(line)
            ]
            # nginx logs a request after the API answered it: give others' lines time.
            if not unexplained or time.monotonic() >= deadline:
                return [line for line in api if line.get("request_id") == request_id] + unexplained
            time.sleep(0.1)


@pytest.fixture
def log_since(stack: None) -> Callable[[], LogWindow]:
    """``window = log_since()`` before a request; ``window.trail()`` after it."""
    return LogWindow


# --- requests through the gateway -------------------------------------------------------


def call(
    window: LogWindow,
    method: str,
    path: str,
    *,
    cert: tuple[str, str] | None,
    headers: Mapping[str, str] | None = None,
    verify: str | bool = SERVER_CA,
    **kwargs: Any,
) -> requests.Response:
    """One request to the gateway with an explicit client cert and trust store."""
    return requests.request(
        method,
        window.url(path),
        cert=cert,
        headers=dict(headers or {}),
        verify=verify,
        timeout=10,
        **kwargs,
    )


# --- refusals nginx makes in the handshake, and certificates minted to provoke them -----

CERT_REQUIRED = {"error": "client certificate required"}


def assert_refused_by_nginx(r: requests.Response, window: LogWindow, verify: str) -> None:
    """400 + our body; nginx logged ``ssl_client_verify`` as ``verify`` exactly, or as a
    ``FAILED:`` reason containing it; no verifier decision; the API got nothing."""
    assert r.status_code == 400, r.text
    assert r.json() == CERT_REQUIRED
    trail = window.trail()
    assert trail.nginx["status"] == 400
    logged = trail.nginx["ssl_client_verify"]
    assert logged == verify or (logged.startswith("FAILED:") and verify in logged), trail.nginx
    assert trail.nginx["auth_reason"] == ""
    assert trail.audit == []
    assert trail.api == []


def sign_verbatim(mount: str, key: Any, **params: Any) -> dict[str, Any]:
    """The operator AppRole (terraform/pki operator.tf: it administers every path of the
    PKI mounts) signs a CN=python-client CSR for ``key``, verbatim, on the PKI mount named
    ``mount`` in Terraform's outputs (``client_issuing``, ``server_issuing``): a simulated
    mis-issuance by a PKI administrator, which no workload AppRole could make."""
    mount_path = certs.pki_outputs()["mounts"][mount]
    operator = certs.approle_client(config.VAULT_OPERATOR_APPROLE)
    csr = csr_pem("python-client", key)
    return operator.write_data(f"{mount_path}/sign-verbatim", data={"csr": csr, **params})["data"]


# --- Keycloak admin (throw-away clients outside Terraform's view) -----------------------


class KeycloakAdmin:
    """The bootstrap admin on the REST API; used only to make throw-away clients."""

    def __init__(self, realm: str, token_endpoint: str) -> None:
        self._realm = realm
        self._token_endpoint = token_endpoint

    def _session(self) -> requests.Session:
        admin = keycloak.admin_credentials()
        r = requests.post(
            f"{config.KEYCLOAK_URL}/realms/master/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "admin-cli", **admin},
            verify=SERVER_CA,
            timeout=10,
        )
        r.raise_for_status()
        s = requests.Session()
        # Per-request `verify`: REQUESTS_CA_BUNDLE in the env overrides Session.verify.
        s.request = functools.partial(s.request, verify=SERVER_CA, timeout=10)  # type: ignore[method-assign]
        s.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        return s

    def session(self) -> requests.Session:
        """An authenticated admin REST session (server CA verified, 10 s timeout)."""
        return self._session()

    @property
    def _clients(self) -> str:
        return f"{config.KEYCLOAK_URL}/admin/realms/{self._realm}/clients"

    @contextlib.contextmanager
    def throwaway_client(
        self, purpose: str, *, api_audience: bool, lifespan_seconds: int | None = None
    ) -> Iterator[str]:
        """A confidential client-credentials client; yields a token of it; deleted after.

        Like the workload clients it authenticates with a certificate (python-client's,
        whose subject DN it accepts) and its tokens are bound to it, so an attack
        with such a token and python-client's certificate reaches the check it aims
        at. ``api_audience`` adds the same audience mapper Terraform gives workload
        clients; ``lifespan_seconds`` sets Keycloak's per-client access token lifespan.
        """
        client_id = f"attack-{purpose}-{secrets.token_hex(4)}"
        body: dict[str, Any] = {
            "clientId": client_id,
            "protocol": "openid-connect",
            "publicClient": False,
            "clientAuthenticatorType": "client-x509",
            "serviceAccountsEnabled": True,
            "standardFlowEnabled": False,
            "directAccessGrantsEnabled": False,
            "attributes": dict(CERTIFICATE_CLIENT_ATTRIBUTES),
            "protocolMappers": [],
        }
        if lifespan_seconds is not None:
            body["attributes"]["access.token.lifespan"] = str(lifespan_seconds)
        if api_audience:
            body["protocolMappers"].append(
                {
                    "name": "api-audience",
                    "protocol": "openid-connect",
                    "protocolMapper": "oidc-audience-mapper",
                    "config": {
                        "included.client.audience": "zerotrust-api",
                        "access.token.claim": "true",
                        "id.token.claim": "false",
                    },
                }
            )
        r = self._session().post(self._clients, json=body)
        assert r.status_code == 201, f"could not create {client_id}: {r.status_code} {r.text}"
        uuid = r.headers["Location"].rsplit("/", 1)[1]
        try:
            yield fetch_token(client_id, cert_of("python-client"), self._token_endpoint)
        finally:
            self._session().delete(f"{self._clients}/{uuid}").raise_for_status()


# What terraform/identity gives a workload client, for a client an attack creates
# by hand that accepts python-client's certificate (RFC 8705 tls_client_auth).
CERTIFICATE_CLIENT_ATTRIBUTES = {
    "x509.subjectdn": "CN=python-client",
    "x509.allow.regex.pattern.comparison": "false",
    "tls.client.certificate.bound.access.tokens": "true",
}


@pytest.fixture
def keycloak_admin(identity: dict[str, Any]) -> KeycloakAdmin:
    return KeycloakAdmin(identity["realm"], identity["token_endpoint"])


UNAUTHORIZED = {"error": "unauthorized"}


def present_token(window: LogWindow, token: str | None, path: str = "/api/resource") -> Trail:
    """Send ``token`` with python-client's certificate; assert the generic 401 and that
    nginx verified the certificate and the API received nothing. Returns the trail."""
    headers = bearer(token) if token is not None else {}
    r = call(window, "GET", path, cert=cert_of("python-client"), headers=headers)
    assert r.status_code == 401, r.text
    assert r.json() == UNAUTHORIZED
    assert r.headers["WWW-Authenticate"] == "Bearer"
    trail = window.trail()
    assert trail.nginx["status"] == 401
    assert trail.nginx["ssl_client_verify"] == "SUCCESS"
    assert trail.api == []
    return trail


def verifier_seconds(name: str) -> float:
    """A duration setting of the running verifier, as the bring-up passes it
    (``ZT_VERIFIER_<name>``), else the verifier's default."""
    default = getattr(Settings, name.lower())
    return float(apps.verifier_env().get(f"ZT_VERIFIER_{name}", default))
