"""The verifier's one network call: GET Keycloak's JWKS under a TOTAL deadline.

Why not ``requests``: its ``timeout`` is per socket operation, and the old fetch
enforced its own deadline only while reading the body. An endpoint that
trickled its status line or headers one byte at a time (each byte inside the
per-read timeout) therefore held the fetch, and every verifier thread waiting
on it, for 43 s (measured in-process; issue 17).

Here every socket operation of the fetch (connect, TLS handshake, sending the
request, each read of the status line, the headers and the body) gets only the
time left until one absolute deadline (``_DeadlineSSLSocket``). CPython's TLS
layer treats a socket timeout as a deadline for the whole call (handshake,
read), so the fetch as a whole cannot outlive ``timeout``, however the endpoint
doles out its bytes. Name resolution (``getaddrinfo``) is the one blocking step
a socket timeout cannot bound; the JWKS URL names a local host (/etc/hosts).

What else is refused: a non-https URL, any status but 200 (redirects are not
followed: a JWKS URL is configuration, not something to be talked out of), a
body over ``MAX_JWKS_BYTES``, anything but a JSON object. Environment proxies
are not consulted (the URL is the whole configuration). Every failure is raised
as ``JwksUnavailable`` from its cause.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from verifier.errors import JwksUnavailable

MAX_JWKS_BYTES = 512 * 1024


class _DeadlineSSLSocket(ssl.SSLSocket):
    """A TLS socket whose every operation gets only the time left until ``deadline``.

    ``settimeout(remaining)`` before each call turns per-operation timeouts into
    one total deadline; past it, the next operation raises ``TimeoutError``.
    """

    deadline: float = 0.0  # monotonic; set before the handshake (see ``_connect``)

    def _arm(self) -> None:
        self.settimeout(_remaining(self.deadline))

    def do_handshake(self, block: bool = False) -> None:
        self._arm()
        super().do_handshake(block)

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        self._arm()
        return super().recv(buflen, flags)

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        self._arm()
        return super().recv_into(buffer, nbytes, flags)  # type: ignore[arg-type]

    def send(self, data: Any, flags: int = 0) -> int:
        self._arm()
        return super().send(data, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._arm()
        super().sendall(data, flags)


def _remaining(deadline: float) -> float:
    """Seconds left until ``deadline``; ``TimeoutError`` once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("JWKS fetch exceeded its total deadline")
    return left


def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Server verification against ``ca_bundle`` (or the system store), hostname checked."""
    context = ssl.create_default_context(cafile=ca_bundle)
    context.sslsocket_class = _DeadlineSSLSocket
    return context


def _connect(host: str, port: int, context: ssl.SSLContext, deadline: float) -> ssl.SSLSocket:
    """A TLS connection to ``host:port`` whose every operation ends by ``deadline``."""
    last: OSError = OSError(f"no address for {host!r}")
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(address)
            tls = context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
        except OSError as e:
            sock.close()
            if isinstance(e, TimeoutError):
                raise
            last = e
            continue
        assert isinstance(tls, _DeadlineSSLSocket)
        tls.deadline = deadline
        try:
            tls.do_handshake()
        except BaseException:
            tls.close()
            raise
        return tls
    raise last


def _get(tls: ssl.SSLSocket, host: str, port: int, target: str) -> bytes:
    """The whole body of a 200 answer to one GET over ``tls``, at most ``MAX_JWKS_BYTES``."""
    connection = http.client.HTTPSConnection(host, port)
    connection.sock = tls  # already connected: http.client never opens its own socket
    try:
        connection.request("GET", target, headers={"Accept": "application/json"})
        response = connection.getresponse()
        if response.status != 200:
            raise JwksUnavailable(f"JWKS endpoint answered HTTP {response.status}")
        body = response.read(MAX_JWKS_BYTES + 1)
        if len(body) > MAX_JWKS_BYTES:
            raise JwksUnavailable(f"JWKS larger than {MAX_JWKS_BYTES} bytes")
        if response.length:  # Content-Length promised more than the peer sent
            raise JwksUnavailable(f"JWKS body cut short ({response.length} bytes missing)")
        return body
    finally:
        connection.close()


def fetch_jwks(url: str, ca_bundle: str | None, timeout: float) -> Mapping[str, Any]:
    """The JWKS document at ``url``, fetched within ``timeout`` seconds in total."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise JwksUnavailable(f"JWKS URL must be https: {url!r}")
    deadline = time.monotonic() + timeout
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        port = parts.port or 443
        with _connect(parts.hostname, port, _tls_context(ca_bundle), deadline) as tls:
            body = _get(tls, parts.hostname, port, target)
    # OSError: refused, reset, TLS (ssl.SSLError), TimeoutError (the deadline);
    # HTTPException: a bad status line or headers, a chunked body cut short;
    # ValueError: a bad port in the URL.
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise JwksUnavailable(f"fetch {url}: {type(e).__name__}") from e
    try:
        document = json.loads(body)
    except ValueError as e:
        raise JwksUnavailable("JWKS is not JSON") from e
    if not isinstance(document, Mapping):
        raise JwksUnavailable("JWKS is not a JSON object")
    return document
