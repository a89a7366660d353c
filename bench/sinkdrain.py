"""A stand-in for the audit sink that the benchmark's own verifiers copy their lines to.

Why: every verifier built from ``apps.verifier_env()`` sends each audit line to the
stack's sink, whose file ``zt audit verify`` compares line for line with the stack's
primary audit log. A benchmark verifier writes its primary lines to a file of its own
(granian's, ``bench.core``'s and ``bench.metrics_cost``'s in-process apps), so its
copies must go elsewhere too, or the stack's sink holds lines its primary file never
had (thousands after one ``make bench``). This socket takes them and throws them away
on a thread of its own: the verifier still pays its ``sendto``, as the stack's does.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path


class SinkDrain:
    """A datagram socket standing in for the audit sink, emptied on a thread of its own
    (the copy still costs the verifier its ``sendto``, as the stack's does)."""

    def __init__(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sink-drain", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
        self.path.unlink(missing_ok=True)
