"""The verifier's side of the second audit sink: each chain line, once written to
the primary file, is also sent as one datagram to the sink's unix socket.

Why a second copy, and why this one: the chain (``verifier.auditchain``) shows
an edit, but whoever can write the primary file (the verifier's user) can also
rewrite every hash after the edit or cut lines off its end. The sink
(``zt audit-sink``, ``scripts/services/auditsink.py``) runs as another user and
appends what it receives to a file the verifier's user cannot open, so a line,
once sent, stays as it was; ``zt audit verify`` compares the two.
A unix datagram socket: one ``sendto`` per line, no connection to keep or
re-establish, message boundaries kept, and the receiver learns the sender's uid
from the kernel (``SO_PASSCRED``), so only the verifier's user can add lines.

Best effort, by design: the primary file stays the fail-closed record (no
decision without it); the copy must never block or fail a decision. The socket is
non-blocking: a sink that is down (no socket: ``ENOENT``/``ECONNREFUSED``) or
behind (its queue full: ``EAGAIN``) costs the line's copy, not the request. Every
failure is counted; ``failing_since`` (the first of the failures since the last
success) makes ``/healthz`` report a problem until a copy succeeds again. The bound:
lines decided while the sink is down or its queue (``net.unix.max_dgram_qlen``
datagrams) is full are only in the primary file.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TypedDict


class SinkStatus(TypedDict):
    """What ``/healthz`` shows of this worker's copies (``audit_sink``)."""

    socket: str
    sent: int
    failed: int
    failing_since: float | None
    """Epoch seconds of the first failure since the last success; None when copying."""
    last_error: str | None


class SinkSender:
    """Sends lines to the sink's socket; never raises, never blocks."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.setblocking(False)
        self._lock = threading.Lock()
        self._sent = 0
        self._failed = 0
        self._failing_since: float | None = None
        self._last_error: str | None = None

    def send(self, line: bytes, now: float | None = None) -> bool:
        """Copy ``line`` to the sink (``b""``: a probe); True when the kernel took it."""
        try:
            self._sock.sendto(line, self.path)
        except OSError as e:
            with self._lock:
                self._failed += 1
                if self._failing_since is None:
                    self._failing_since = now if now is not None else time.time()
                self._last_error = f"{type(e).__name__}: {e.strerror}"
            return False
        with self._lock:
            self._sent += 1 if line else 0
            self._failing_since = None
        return True

    def status(self) -> SinkStatus:
        with self._lock:
            return SinkStatus(
                socket=self.path,
                sent=self._sent,
                failed=self._failed,
                failing_since=self._failing_since,
                last_error=self._last_error,
            )

    def problem(self) -> str | None:
        """Why copies are failing now, or None (for ``/healthz``'s problems).

        While failing, an empty datagram probes the sink (it ignores those): a sink
        that is back clears the problem at once, not only at this worker's next line."""
        if self.status()["failing_since"] is not None:
            self.send(b"")
        s = self.status()
        if s["failing_since"] is None:
            return None
        return (
            f"audit sink {s['socket']}: copies failing since {s['failing_since']:.0f} "
            f"({s['failed']} failed in all; last error: {s['last_error']}); "
            "lines are only in the primary file"
        )
