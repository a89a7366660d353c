"""HTTP over a unix socket: how the bring-up and the tests talk to a gunicorn app directly."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_SECONDS = 5


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=TIMEOUT_SECONDS)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT_SECONDS)
        self.sock.connect(self._path)


@dataclass(frozen=True)
class SocketAnswer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def request(
    sock_path: Path, method: str, path: str, headers: Mapping[str, str] | None = None
) -> SocketAnswer:
    """One HTTP request to the app behind ``sock_path`` (OSError if it is down)."""
    conn = UnixHTTPConnection(sock_path)
    try:
        conn.request(method, path, headers=dict(headers or {}))
        response = conn.getresponse()
        return SocketAnswer(response.status, response.headers, response.read())
    finally:
        conn.close()


def answers(sock_path: Path, path: str = "/healthz") -> bool:
    """True when the app behind ``sock_path`` answers 200 on ``path``."""
    if not sock_path.exists():
        return False
    try:
        return request(sock_path, "GET", path).status == 200
    except OSError:
        return False
