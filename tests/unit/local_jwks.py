"""A real JWKS endpoint on loopback for the fetch tests: TLS, raw bytes, chosen faults.

Why raw sockets and not ``http.server``: the faults that matter are in the bytes
before the body (a status line and headers trickled one byte at a time, a TLS
handshake that never starts), which a framework writes for us in one go. Each
connection gets its own thread; ``stop`` releases every handler still waiting or
trickling, so a test never leaves a thread behind for long.

Modes (``server.mode``):

=================  ===================================================================
good               200, the document
trickle-head       the status line and headers one byte every ``interval`` seconds,
                   then the body (each byte comes well within any per-read timeout)
trickle-body       the head at once, then the body one byte every ``interval``
silent             TLS handshake, then nothing
no-handshake       TCP accepted, TLS never answered
status-503         503 with a JSON body
redirect           302 to another URL
not-json, not-object, huge, truncated   bodies the fetch must refuse
=================  ===================================================================
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.x509_helpers import build_cert, cert_pem, key_pem, new_key
from verifier.jwks_fetch import MAX_JWKS_BYTES

HEAD_LIMIT = 16 * 1024


class LocalJwks:
    """``with LocalJwks(tmp, document) as server:`` serves ``server.url`` until the block ends."""

    def __init__(self, folder: Path, document: Mapping[str, Any], *, interval: float = 0.1):
        self.document = document
        self.mode = "good"
        self.interval = interval
        self.stop = threading.Event()
        self.requests = 0
        self.ca_file = str(folder / "jwks-ca.pem")
        ca_key, key = new_key(), new_key()
        ca = build_cert("local jwks CA", ca_key, ca=True, path_length=0)
        leaf = build_cert(
            "127.0.0.1", key, issuer=ca.subject, signing_key=ca_key, san_ips=["127.0.0.1"]
        )
        Path(self.ca_file).write_text(cert_pem(ca))
        (folder / "jwks-cert.pem").write_text(cert_pem(leaf))
        (folder / "jwks-key.pem").write_bytes(key_pem(key))
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(folder / "jwks-cert.pem", folder / "jwks-key.pem")
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}/certs"
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> LocalJwks:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._spawn(self._serve, conn, self.mode)

    def _serve(self, conn: socket.socket, mode: str) -> None:
        with contextlib.suppress(OSError), conn:
            if mode == "no-handshake":
                self.stop.wait(30)
                return
            conn.settimeout(10)
            with self._tls.wrap_socket(conn, server_side=True) as tls:
                head = b""
                while b"\r\n\r\n" not in head and len(head) < HEAD_LIMIT:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                self.requests += 1
                self._answer(tls, mode)

    def _answer(self, tls: ssl.SSLSocket, mode: str) -> None:
        body = json.dumps(self.document).encode()
        status, extra = "200 OK", b""
        if mode == "status-503":
            status, body = "503 Service Unavailable", b'{"error":"down"}'
        elif mode == "redirect":
            status, body, extra = "302 Found", b"", b"Location: https://127.0.0.1:1/x\r\n"
        elif mode == "not-json":
            body = b"<html>login</html>"
        elif mode == "not-object":
            body = b"[1, 2, 3]"
        elif mode == "huge":
            body = b'{"keys": [' + b" " * (MAX_JWKS_BYTES + 10) + b"]}"
        length = len(body) + (1000 if mode == "truncated" else 0)
        head = (
            (
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {length}\r\nConnection: close\r\n"
            ).encode()
            + extra
            + b"\r\n"
        )
        if mode == "silent":
            self.stop.wait(30)
            return
        if mode == "truncated":
            tls.sendall(head + body[:20])
            return
        self._send(tls, head, trickle=mode == "trickle-head")
        self._send(tls, body, trickle=mode == "trickle-body")

    def _send(self, tls: ssl.SSLSocket, data: bytes, *, trickle: bool) -> None:
        if not trickle:
            tls.sendall(data)
            return
        for i in range(len(data)):
            if self.stop.wait(self.interval):
                return
            tls.sendall(data[i : i + 1])
