"""The workload client library (``client/``): RFC 8705 tokens bound to the certificate.

A throw-away PKI (a server CA and a client CA, made here) and a small HTTPS server on
127.0.0.1 stand in for Keycloak and the gateway. The server records, for every
request, the SHA-256 thumbprint of the certificate presented in the TLS handshake:

* ``POST /token`` answers a JWT whose ``cnf.x5t#S256`` is that thumbprint (or a
  configured refusal), and records the form body and any ``Authorization`` header;
* ``GET /api`` answers the connection's thumbprint, the thumbprint inside the bearer
  token and the ``Authorization`` header, so a token sent over a connection made with
  another certificate shows up as a mismatch.

A rotation replaces ``bundle.pem`` (key + certificate in one file) by one
``os.replace``, as the PKI scripts do. Every server thread is stopped in a fixture
finalizer; every loop and wait is bounded.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import select
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from client.api import GatewayClient
from client.credential import Credential, CredentialError, Identity
from client.token import TokenError, TokenSource, decode_unverified
from tests.x509_helpers import PrivateKey, build_cert, cert_pem, key_pem, new_key, write_pair

CLIENT_ID = "workload-a"
TOKEN_KEY = "unit-test-token-signing-key-0123456789"  # HS256, server side only
WAIT = 5.0  # upper bound for any join / socket wait in this file


def thumbprint(cert: x509.Certificate | bytes) -> str:
    """RFC 8705 ``x5t#S256``: base64url (no padding) SHA-256 of the DER certificate."""
    der = cert if isinstance(cert, bytes) else cert.public_bytes(serialization.Encoding.DER)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


# --------------------------------------------------------------------------- PKI


@dataclass
class Pki:
    folder: Path
    server_ca_key: PrivateKey
    server_ca: x509.Certificate
    client_ca_key: PrivateKey
    client_ca: x509.Certificate
    server_key: PrivateKey
    server_cert: x509.Certificate

    @staticmethod
    def ca(common_name: str) -> tuple[PrivateKey, x509.Certificate]:
        key = new_key()
        return key, build_cert(common_name, key, ca=True, subject_key_id=True)

    @staticmethod
    def leaf(
        common_name: str, ca_key: PrivateKey, ca: x509.Certificate, *, client: bool
    ) -> tuple[PrivateKey, x509.Certificate]:
        key = new_key()
        cert = build_cert(
            common_name,
            key,
            issuer=ca.subject,
            signing_key=ca_key,
            ca=False,
            client_auth=client,
            subject_key_id=True,
            authority_key=ca_key,
            san_ips=() if client else ("127.0.0.1",),
        )
        return key, cert

    @classmethod
    def build(cls, folder: Path) -> Pki:
        server_ca_key, server_ca = cls.ca("unit server CA")
        client_ca_key, client_ca = cls.ca("unit client CA")
        server_key, server_cert = cls.leaf("localhost", server_ca_key, server_ca, client=False)
        pki = cls(
            folder, server_ca_key, server_ca, client_ca_key, client_ca, server_key, server_cert
        )
        (folder / "server-ca.pem").write_text(cert_pem(server_ca))
        (folder / "client-ca.pem").write_text(cert_pem(client_ca))
        return pki

    @property
    def server_ca_file(self) -> str:
        return str(self.folder / "server-ca.pem")

    @property
    def client_ca_file(self) -> str:
        return str(self.folder / "client-ca.pem")

    def client(self, common_name: str = CLIENT_ID) -> tuple[PrivateKey, x509.Certificate]:
        """A fresh key and client certificate issued by the client CA."""
        return self.leaf(common_name, self.client_ca_key, self.client_ca, client=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.build(tmp_path_factory.mktemp("client-pki"))


def pair(folder: Path, cert: x509.Certificate, key: PrivateKey) -> tuple[str, str]:
    """``cert.pem`` + ``key.pem`` (0600) in ``folder``: an identity with a separate key."""
    folder.mkdir(mode=0o700, exist_ok=True)
    return write_pair(folder, cert_pem(cert), key)


def install_bundle(path: Path, key: PrivateKey | bytes, cert: x509.Certificate) -> None:
    """Key + certificate in one 0600 file, replacing ``path`` by one atomic rename."""
    raw = key if isinstance(key, bytes) else key_pem(key)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(raw.rstrip(b"\n") + b"\n" + cert_pem(cert).encode())
    tmp.chmod(0o600)
    os.replace(tmp, path)


# ------------------------------------------------------------ Keycloak + gateway


@dataclass
class TokenCall:
    thumbprint: str | None
    body: str
    authorization: str | None
    content_type: str | None


@dataclass
class ApiCall:
    thumbprint: str | None
    token_thumbprint: str | None
    authorization: str | None


@dataclass
class FakeServer:
    """What the server answers (settable by a test) and what it saw."""

    token_status: int = 200
    token_answer: dict[str, Any] | None = None  # replaces the token JSON when set
    token_raw: bytes | None = None  # replaces the whole token body when set
    expires_in: float = 300
    token_delay: float = 0.0
    token_calls: list[TokenCall] = field(default_factory=list)
    api_calls: list[ApiCall] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    _issued: int = 0

    def on_token(self, peer: str | None, body: str, headers: Any) -> tuple[int, bytes]:
        if self.token_delay:
            time.sleep(self.token_delay)
        with self.lock:
            self.token_calls.append(
                TokenCall(peer, body, headers.get("Authorization"), headers.get("Content-Type"))
            )
            self._issued += 1
            serial = self._issued
        if self.token_raw is not None:
            return self.token_status, self.token_raw
        if self.token_answer is not None or self.token_status != 200:
            return self.token_status, json.dumps(self.token_answer or {}).encode()
        client_id = parse_qs(body).get("client_id", ["?"])[0]
        claims = {"azp": client_id, "jti": f"t{serial}", "cnf": {"x5t#S256": peer}}
        token = jwt.encode(claims, TOKEN_KEY, algorithm="HS256")
        answer = {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}
        return 200, json.dumps(answer).encode()

    def on_api(self, peer: str | None, authorization: str | None) -> tuple[int, bytes]:
        bound = None
        if authorization and authorization.startswith("Bearer "):
            claims = jwt.decode(authorization[7:], TOKEN_KEY, algorithms=["HS256"])
            bound = claims["cnf"]["x5t#S256"]
        with self.lock:
            self.api_calls.append(ApiCall(peer, bound, authorization))
        answer = {"thumbprint": peer, "token_thumbprint": bound, "authorization": authorization}
        return 200, json.dumps(answer).encode()

    @property
    def token_thumbprints(self) -> list[str | None]:
        with self.lock:
            return [c.thumbprint for c in self.token_calls]

    @property
    def mixed(self) -> list[ApiCall]:
        """Gateway calls whose token is bound to another certificate than the connection's."""
        with self.lock:
            return [c for c in self.api_calls if c.thumbprint != c.token_thumbprint]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a reused connection keeps its certificate
    timeout = WAIT
    server: _HttpsServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _peer(self) -> str | None:
        der = self.connection.getpeercert(binary_form=True)
        return None if der is None else thumbprint(der)

    def _reply(self, status: int, raw: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        if self.path != "/token":
            return self._reply(404, b"{}")
        self._reply(*self.server.fake.on_token(self._peer(), body, self.headers))

    def do_GET(self) -> None:
        if self.path != "/api":
            return self._reply(404, b"{}")
        self._reply(*self.server.fake.on_api(self._peer(), self.headers.get("Authorization")))


class _HttpsServer(ThreadingHTTPServer):
    """TLS handshake in the per-connection thread; every thread joined on close."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, context: ssl.SSLContext, fake: FakeServer) -> None:
        self.context = context
        self.fake = fake
        self.live: set[socket.socket] = set()
        self.live_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:  # no reverse DNS lookup (HTTPServer.server_bind)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request: socket.socket, client_address: Any) -> None:
        request.settimeout(WAIT)
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return  # refused handshake (a test of the client's refusal)
        with self.live_lock:
            self.live.add(tls)
        try:
            super().finish_request(tls, client_address)
        except OSError:
            pass
        finally:
            with self.live_lock:
                self.live.discard(tls)
            tls.close()

    def drop_connections(self) -> None:
        with self.live_lock:
            for conn in list(self.live):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


def _server_context(pki: Pki, key: PrivateKey, cert: x509.Certificate, folder: Path):
    cert_file, key_file = pair(folder, cert, key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(pki.client_ca_file)
    ctx.verify_mode = ssl.CERT_OPTIONAL  # record "no certificate" rather than refuse it
    return ctx


@pytest.fixture
def start_server(pki: Pki, tmp_path: Path) -> Iterator[Callable[..., FakeServer]]:
    """Start servers (default: the PKI's server certificate); all stopped at teardown."""
    started: list[tuple[_HttpsServer, threading.Thread]] = []

    def start(key: PrivateKey | None = None, cert: x509.Certificate | None = None) -> FakeServer:
        folder = tmp_path / f"server-{len(started)}"
        ctx = _server_context(pki, key or pki.server_key, cert or pki.server_cert, folder)
        fake = FakeServer()
        server = _HttpsServer(ctx, fake)
        fake.url = f"https://127.0.0.1:{server.server_port}"
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        started.append((server, thread))
        return fake

    yield start
    for server, thread in started:
        server.shutdown()
        server.drop_connections()
        server.server_close()  # joins the connection threads (each bounded by WAIT)
        thread.join(WAIT)
        assert not thread.is_alive()


@pytest.fixture
def server(start_server: Callable[..., FakeServer]) -> FakeServer:
    return start_server()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server is local: no proxy from the environment applies."""
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)


# ----------------------------------------------------------------------- workload


@dataclass
class Workload:
    bundle: Path
    key: PrivateKey
    cert: x509.Certificate


@pytest.fixture
def workload(pki: Pki, tmp_path: Path) -> Workload:
    key, cert = pki.client()
    bundle = tmp_path / "workload" / "bundle.pem"
    bundle.parent.mkdir(mode=0o700)
    install_bundle(bundle, key, cert)
    return Workload(bundle, key, cert)


@pytest.fixture
def credentials() -> Iterator[list[Credential]]:
    """Credentials to close at teardown (before the servers: this fixture is newer)."""
    made: list[Credential] = []
    yield made
    for credential in made:
        credential.close()


@pytest.fixture
def make_tokens(
    server: FakeServer, pki: Pki, workload: Workload, credentials: list[Credential]
) -> Callable[..., TokenSource]:
    """A TokenSource on ``server``'s /token for ``workload``'s bundle (or another identity)."""

    def make(identity: Identity | None = None, **kwargs: Any) -> TokenSource:
        identity = identity or Identity(str(workload.bundle), None, pki.server_ca_file)
        tokens = TokenSource(f"{server.url}/token", CLIENT_ID, identity, **kwargs)
        credentials.append(tokens.credential)
        return tokens

    return make


def rotate(pki: Pki, workload: Workload) -> None:
    """A new key and certificate, installed like production: one rename of bundle.pem."""
    workload.key, workload.cert = pki.client()
    install_bundle(workload.bundle, workload.key, workload.cert)


def bound_to(token: str) -> str:
    return decode_unverified(token)["claims"]["cnf"]["x5t#S256"]


# ---------------------------------------------------------------- 1. no secret


@pytest.mark.parametrize("layout", ["bundle", "cert+key"])
def test_token_request_carries_no_secret_and_presents_the_certificate(
    layout: str, server: FakeServer, pki: Pki, workload: Workload, tmp_path: Path, make_tokens
) -> None:
    if layout == "bundle":
        identity = Identity(str(workload.bundle), None, pki.server_ca_file)
    else:
        cert_file, key_file = pair(tmp_path / "pair", workload.cert, workload.key)
        identity = Identity(cert_file, key_file, pki.server_ca_file)

    token = make_tokens(identity).get()

    assert len(server.token_calls) == 1
    call = server.token_calls[0]
    assert call.authorization is None  # no client_secret_basic
    assert call.body == f"grant_type=client_credentials&client_id={CLIENT_ID}"
    assert parse_qs(call.body) == {"grant_type": ["client_credentials"], "client_id": [CLIENT_ID]}
    assert call.content_type == "application/x-www-form-urlencoded"
    assert call.thumbprint == thumbprint(workload.cert)  # the certificate is the credential
    assert bound_to(token) == thumbprint(workload.cert)
    assert decode_unverified(token)["header"]["alg"] == "HS256"


# -------------------------------------------------------------------- 2. cached


def test_token_is_cached(server: FakeServer, make_tokens) -> None:
    tokens = make_tokens()
    first, second = tokens.get(), tokens.get()
    assert first == second
    assert len(server.token_calls) == 1

    tokens.invalidate()
    assert tokens.get() != first
    assert len(server.token_calls) == 2


# ------------------------------------------------------------------ 3. rotation


def test_rotation_fetches_a_new_token_with_the_new_certificate(
    server: FakeServer, pki: Pki, workload: Workload, make_tokens
) -> None:
    tokens = make_tokens()
    old_cert = workload.cert
    first = tokens.get()
    assert tokens.credential.snapshot().generation == 1

    rotate(pki, workload)
    second = tokens.get()

    assert tokens.credential.snapshot().generation == 2
    assert server.token_thumbprints == [thumbprint(old_cert), thumbprint(workload.cert)]
    assert thumbprint(old_cert) != thumbprint(workload.cert)
    assert bound_to(first) == thumbprint(old_cert)
    assert bound_to(second) == thumbprint(workload.cert)
    assert tokens.get() == second  # cached again for the new generation
    assert len(server.token_calls) == 2


def test_rotation_keeps_the_previous_session_until_the_next_change(
    server: FakeServer, pki: Pki, workload: Workload, make_tokens
) -> None:
    tokens = make_tokens()
    tokens.get()  # leaves a keep-alive connection in generation 1's pool
    gen1 = tokens.credential.snapshot()
    pools = gen1.session.get_adapter(server.url).poolmanager.pools
    assert len(pools) == 1

    rotate(pki, workload)
    gen2 = tokens.credential.snapshot()
    assert (gen2.generation, gen2.session is gen1.session) == (2, False)
    assert len(pools) == 1  # requests under way on generation 1 can finish

    rotate(pki, workload)
    assert tokens.credential.snapshot().generation == 3
    assert len(pools) == 0  # generation 1 closed at the next change


# ---------------------------------------------------------------- 4. unchanged


def test_unchanged_file_keeps_generation_and_session(
    server: FakeServer, workload: Workload, make_tokens
) -> None:
    tokens = make_tokens()
    first = tokens.credential.snapshot()
    tokens.get()
    again = tokens.credential.snapshot()
    assert again.generation == first.generation == 1
    assert again.session is first.session
    assert again is first

    # Same bytes, but a new file (one rename): a new version, hence a new generation.
    install_bundle(workload.bundle, workload.key, workload.cert)
    renamed = tokens.credential.snapshot()
    assert renamed.generation == 2
    assert renamed.session is not first.session


# ---------------------------------------- 5. token and connection always match


def test_gateway_request_uses_one_certificate_for_token_and_connection(
    server: FakeServer, pki: Pki, workload: Workload, make_tokens
) -> None:
    tokens = make_tokens()
    client = GatewayClient(server.url + "/", tokens)

    seen: list[str] = []
    for step in range(3):  # before the rotation, then after two rotations
        if step:
            rotate(pki, workload)
        expected = thumbprint(workload.cert)
        seen.append(expected)
        for _ in range(2):  # the second request reuses the keep-alive connection
            r = client.request("GET", "/api", headers={"X-Trace": str(step)})
            assert r.status_code == 200
            answer = r.json()
            assert answer["thumbprint"] == expected
            assert answer["token_thumbprint"] == expected
            assert answer["authorization"] == f"Bearer {tokens.get()}"

    assert len(set(seen)) == 3
    assert server.token_thumbprints == seen  # one token per generation
    assert len(server.api_calls) == 6
    assert server.mixed == []


def test_rotation_between_snapshot_and_use_cannot_split_a_request(
    server: FakeServer,
    pki: Pki,
    workload: Workload,
    make_tokens,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worst timing, made deterministic: the file rotates right after every snapshot.

    A request that took a second snapshot (for the token or for the connection) would
    see the next certificate for that half and send a token bound to another one.
    """
    tokens = make_tokens()
    client = GatewayClient(server.url, tokens)
    take_snapshot = tokens.credential.snapshot
    snapshotted: list[str] = []

    def snapshot_then_rotate():
        snap = take_snapshot()
        snapshotted.append(thumbprint(workload.cert))
        rotate(pki, workload)
        return snap

    monkeypatch.setattr(tokens.credential, "snapshot", snapshot_then_rotate)
    for _ in range(3):
        answer = client.request("GET", "/api").json()
        assert answer["thumbprint"] == answer["token_thumbprint"] == snapshotted[-1]

    assert len(snapshotted) == 3  # one snapshot per request
    assert len(set(snapshotted)) == 3  # and each one a new certificate
    assert [c.thumbprint for c in server.api_calls] == snapshotted
    assert server.token_thumbprints == snapshotted
    assert server.mixed == []


def test_gateway_requests_racing_rotations_never_mix_token_and_certificate(
    server: FakeServer, pki: Pki, workload: Workload, make_tokens
) -> None:
    tokens = make_tokens()
    client = GatewayClient(server.url, tokens)
    issued = {thumbprint(workload.cert)}
    workers, per_worker, rotations = 4, 12, 4
    errors: list[BaseException] = []
    statuses: list[int] = []
    start = threading.Barrier(workers + 1, timeout=WAIT)

    def work() -> None:
        try:
            start.wait()
            for _ in range(per_worker):
                statuses.append(client.request("GET", "/api").status_code)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    start.wait()
    for _ in range(rotations):
        time.sleep(0.02)
        rotate(pki, workload)
        issued.add(thumbprint(workload.cert))
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads)

    final = client.request("GET", "/api").json()
    assert final["thumbprint"] == final["token_thumbprint"] == thumbprint(workload.cert)
    assert errors == []
    assert statuses == [200] * (workers * per_worker)
    assert len(server.api_calls) == workers * per_worker + 1
    assert server.mixed == []  # no request sent a token over another certificate
    assert {c.thumbprint for c in server.api_calls} <= issued
    assert set(server.token_thumbprints) <= issued
    assert len(issued) == rotations + 1


# ------------------------------------------------------------------- 6. refusal


def test_refused_token_names_the_client_and_the_status(server: FakeServer, make_tokens) -> None:
    server.token_status, server.token_answer = 401, {"error": "invalid_client"}
    tokens = make_tokens()
    with pytest.raises(TokenError) as refused:
        tokens.get()
    message = str(refused.value)
    assert CLIENT_ID in message
    assert "401" in message
    assert "invalid_client" in message

    # A refusal is not cached: once Keycloak accepts, the next call gets a token.
    server.token_status, server.token_answer = 200, None
    assert bound_to(tokens.get()) == server.token_thumbprints[-1]
    assert len(server.token_calls) == 2


def test_unreachable_token_endpoint(pki: Pki, workload: Workload, credentials) -> None:
    with socket.socket() as s:  # a port nobody listens on (closed again at once)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"https://127.0.0.1:{port}/token"
    tokens = TokenSource(
        endpoint, CLIENT_ID, Identity(str(workload.bundle), None, pki.server_ca_file)
    )
    credentials.append(tokens.credential)
    started = time.monotonic()
    with pytest.raises(TokenError, match="cannot reach Keycloak") as unreachable:
        tokens.get()
    assert endpoint in str(unreachable.value)
    assert time.monotonic() - started < WAIT


def test_server_is_verified_with_the_identity_ca_only(
    start_server,
    pki: Pki,
    workload: Workload,
    make_tokens,
    credentials,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``verify=`` per request: a CA bundle from the environment is never trusted."""
    rogue_ca_key, rogue_ca = Pki.ca("rogue CA")
    rogue = start_server(*Pki.leaf("localhost", rogue_ca_key, rogue_ca, client=False))
    rogue_ca_file = pki.folder / "rogue-ca.pem"
    rogue_ca_file.write_text(cert_pem(rogue_ca))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(rogue_ca_file))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(rogue_ca_file))

    identity = Identity(str(workload.bundle), None, pki.server_ca_file)
    to_rogue = TokenSource(f"{rogue.url}/token", CLIENT_ID, identity)
    credentials.append(to_rogue.credential)
    with pytest.raises(TokenError, match="cannot reach Keycloak") as refused:
        to_rogue.get()
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
    tokens = make_tokens(identity)
    tokens.get()  # from the real server
    with pytest.raises(requests.exceptions.SSLError):
        GatewayClient(rogue.url, tokens).request("GET", "/api")
    assert rogue.token_calls == [] and rogue.api_calls == []

    # The premise: without ``verify=``, requests would have trusted the environment's
    # bundle (and loaded it into the shared context).
    control = Credential(identity)
    try:
        assert control.snapshot().session.get(f"{rogue.url}/api", timeout=WAIT).status_code == 200
    finally:
        control.close()


# ------------------------------------------------------ 7. unloadable credential


def test_missing_bundle_names_the_file_and_does_not_poison(
    server: FakeServer, pki: Pki, tmp_path: Path, make_tokens
) -> None:
    bundle = tmp_path / "late" / "bundle.pem"
    bundle.parent.mkdir()
    tokens = make_tokens(Identity(str(bundle), None, pki.server_ca_file))

    with pytest.raises(CredentialError, match=str(bundle)):
        tokens.credential.snapshot()
    with pytest.raises(TokenError, match=str(bundle)):
        tokens.get()
    assert server.token_calls == []

    key, cert = pki.client()
    install_bundle(bundle, key, cert)
    assert bound_to(tokens.get()) == thumbprint(cert)
    assert server.token_thumbprints == [thumbprint(cert)]
    assert tokens.credential.snapshot().generation == 1


def test_missing_key_file_names_the_key(pki: Pki, tmp_path: Path, workload: Workload) -> None:
    cert_file, key_file = pair(tmp_path / "pair", workload.cert, workload.key)
    os.unlink(key_file)
    credential = Credential(Identity(cert_file, key_file, pki.server_ca_file))
    with pytest.raises(CredentialError, match=key_file):
        credential.snapshot()


def test_key_not_matching_the_certificate(
    server: FakeServer, pki: Pki, tmp_path: Path, workload: Workload, make_tokens
) -> None:
    cert_file, key_file = pair(tmp_path / "pair", workload.cert, new_key())
    tokens = make_tokens(Identity(cert_file, key_file, pki.server_ca_file))
    with pytest.raises(CredentialError) as mismatch:
        tokens.credential.snapshot()
    assert cert_file in str(mismatch.value) and key_file in str(mismatch.value)
    with pytest.raises(TokenError, match=cert_file):
        tokens.get()

    # The matching key arrives: the same source now works, no stale failure kept.
    pair(tmp_path / "pair", workload.cert, workload.key)
    assert bound_to(tokens.get()) == thumbprint(workload.cert)
    assert server.token_thumbprints == [thumbprint(workload.cert)]


def test_broken_rotation_fails_then_a_valid_file_works(
    server: FakeServer, pki: Pki, workload: Workload, make_tokens
) -> None:
    tokens = make_tokens()
    old = tokens.get()
    assert tokens.credential.snapshot().generation == 1

    _, other_cert = pki.client()
    install_bundle(workload.bundle, workload.key, other_cert)  # key of another certificate
    with pytest.raises(TokenError, match=str(workload.bundle)):
        tokens.get()
    with pytest.raises(CredentialError, match=str(workload.bundle)):
        tokens.credential.snapshot()

    rotate(pki, workload)
    new = tokens.get()
    assert new != old
    assert bound_to(new) == thumbprint(workload.cert)
    assert server.token_thumbprints[-1] == thumbprint(workload.cert)
    assert len(server.token_calls) == 2  # nothing was fetched with the broken file
    assert tokens.credential.snapshot().generation == 2


# -------------------------------------------------------------------- 8. expiry


@pytest.mark.parametrize(
    ("expires_in", "margin", "still_cached_at", "refetched_at"),
    [(31, 30, 0.5, 1.0), (300, 30, 269.9, 270.0)],
)
def test_token_is_refetched_within_the_margin_of_expiry(
    server: FakeServer,
    make_tokens,
    monkeypatch: pytest.MonkeyPatch,
    expires_in: float,
    margin: float,
    still_cached_at: float,
    refetched_at: float,
) -> None:
    now = [1000.0]
    monkeypatch.setattr("client.token.time", SimpleNamespace(monotonic=lambda: now[0]))
    server.expires_in = expires_in
    tokens = make_tokens(refresh_margin=margin)

    first = tokens.get()
    now[0] = 1000.0 + still_cached_at
    assert tokens.get() == first
    assert len(server.token_calls) == 1

    now[0] = 1000.0 + refetched_at
    second = tokens.get()
    assert second != first
    assert len(server.token_calls) == 2
    assert tokens.get() == second


def test_token_within_the_margin_from_the_start_is_never_reused(
    server: FakeServer, make_tokens
) -> None:
    server.expires_in = 30
    tokens = make_tokens(refresh_margin=30)
    assert len({tokens.get() for _ in range(3)}) == 3
    assert len(server.token_calls) == 3


# ------------------------------------------------------------- 9. thread safety


def test_concurrent_callers_share_one_fetch(server: FakeServer, make_tokens) -> None:
    server.token_delay = 0.2  # the first fetch is still under way when the others ask
    tokens = make_tokens()
    callers = 8
    start = threading.Barrier(callers, timeout=WAIT)
    got: list[str] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            start.wait()
            got.append(tokens.get())
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=call, daemon=True) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert len(got) == callers
    assert len(set(got)) == 1
    assert len(server.token_calls) == 1
    assert tokens.credential.snapshot().generation == 1  # one context loaded


# ------------------------------------------------ found by these tests, then fixed


class _ConnectProxy(socketserver.ThreadingTCPServer):
    """An HTTP CONNECT proxy on 127.0.0.1 (what ``HTTPS_PROXY`` points to)."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.stopping = threading.Event()
        super().__init__(("127.0.0.1", 0), _ConnectHandler)


class _ConnectHandler(socketserver.BaseRequestHandler):
    server: _ConnectProxy

    def handle(self) -> None:
        client = self.request
        client.settimeout(WAIT)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 8192:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        host, port = head.split()[1].decode().rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=WAIT) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            peers = {client: upstream, upstream: client}
            while not self.server.stopping.is_set():
                ready, _, _ = select.select(list(peers), [], [], 0.1)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)


@pytest.fixture
def https_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    proxy = _ConnectProxy()
    thread = threading.Thread(
        target=proxy.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    url = f"http://127.0.0.1:{proxy.server_address[1]}"
    monkeypatch.setenv("HTTPS_PROXY", url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    yield url
    proxy.stopping.set()
    proxy.shutdown()
    proxy.server_close()  # joins the relay threads (each stops within 0.1 s)
    thread.join(WAIT)
    assert not thread.is_alive()


def test_certificate_is_presented_through_an_https_proxy(
    https_proxy: str, server: FakeServer, workload: Workload, make_tokens
) -> None:
    tokens = make_tokens()
    token = tokens.get()
    assert server.token_thumbprints == [thumbprint(workload.cert)]
    assert bound_to(token) == thumbprint(workload.cert)


def test_rotation_never_tears_a_bundle_load(pki: Pki, workload: Workload, credentials) -> None:
    credentials.append(
        credential := Credential(Identity(str(workload.bundle), None, pki.server_ca_file))
    )
    pairs = [pki.client(), pki.client()]
    stop = threading.Event()

    def keep_rotating() -> None:
        for n in range(1_000_000):
            if stop.is_set():
                return
            install_bundle(workload.bundle, *pairs[n % 2])

    rotator = threading.Thread(target=keep_rotating, daemon=True)
    rotator.start()
    try:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:  # usually torn within a few milliseconds
            credential.snapshot()
    finally:
        stop.set()
        rotator.join(WAIT)
    assert not rotator.is_alive()
    assert credential.snapshot().generation > 1


@pytest.mark.parametrize(
    "answer", [b"<html>maintenance</html>", b'{"token_type": "Bearer"}'], ids=["html", "no-token"]
)
def test_malformed_token_answer_is_a_token_error(
    answer: bytes, server: FakeServer, make_tokens
) -> None:
    server.token_raw = answer
    with pytest.raises(TokenError, match=CLIENT_ID):
        make_tokens().get()


@pytest.mark.parametrize("entry", ["credential", "token source"])
def test_missing_server_ca_is_a_credential_error(
    entry: str, pki: Pki, workload: Workload, tmp_path: Path, credentials
) -> None:
    missing = str(tmp_path / "no-such-ca.pem")
    identity = Identity(str(workload.bundle), None, missing)
    if entry == "credential":
        credentials.append(credential := Credential(identity))
        with pytest.raises(CredentialError, match=missing):
            credential.snapshot()
    else:
        tokens = TokenSource("https://127.0.0.1:9/token", CLIENT_ID, identity)
        credentials.append(tokens.credential)
        with pytest.raises(TokenError, match=missing):
            tokens.get()
