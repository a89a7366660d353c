"""Append an audit record to the audit file as the next link of its hash chain,
failing closed.

Why fail closed: a decision nobody can later audit is treated like a decision
that was not made, so when the line cannot be written the adapter turns the
answer into a deny with ``audit_unavailable`` (status 503: a server-side fault
the caller cannot fix; nginx's ``auth_request`` answers the client with 500).

How one record is appended (several gunicorn workers, each with threads, write
the same file):

1. open the path (``O_APPEND|O_CREAT``, per record, so a rotated file is picked
   up without a reload) and take ``flock(LOCK_EX)`` on it: the chain needs each
   line to know the one before, so appends are serialised, not merely atomic;
2. check the descriptor is still the file at the path (same device and inode):
   a rotation (``verifier.auditrotate``) may have replaced it while we waited for
   the lock; if so, start again on the new file (at most ``REOPEN_ATTEMPTS``);
3. find the chain's head: this writer caches (device, inode, size, seq, hash)
   after its own write; when the file is still that size nobody wrote since and
   nothing is read, otherwise the last line is read from the end
   (``verifier.auditchain.chain_head``);
4. one ``os.write`` of the line with ``seq`` and ``prev`` (``chained_line``);
   closing the descriptor releases the lock.

Any error (open, lock, read, a file whose end is not a chain line, a short
write) is ``AuditUnavailable``. No fsync: durability against power loss is traded
for latency; the chain still shows where a crash cut the file.

After the primary line is written, the same bytes go to the second sink, best
effort (``verifier.auditsink.SinkSender``): never blocking, never failing the
decision, its failures counted for ``/healthz``.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from verifier.auditchain import EMPTY, ChainError, Head, chain_head, chained_line, line_hash
from verifier.auditsink import SinkSender
from verifier.errors import AuditUnavailable

REOPEN_ATTEMPTS: Final = 5
"""Times a writer follows a replaced file before giving up (a rotation replaces it once)."""


@dataclass(frozen=True)
class _Seen:
    """The file as this writer left it after its last append."""

    dev: int
    ino: int
    size: int
    head: Head


class AuditWriter:
    """The chained audit file of one process (one per app, built in ``create_app``)."""

    def __init__(self, path: str | None, sink: SinkSender | None = None) -> None:
        self.path = path
        self.sink = sink
        self._seen: _Seen | None = None
        self._seen_lock = threading.Lock()  # threads of one gthread worker share it
        self.tail_reads = 0
        """How many appends had to read the file's end (another process wrote since)."""

    def append(self, record: Mapping[str, Any]) -> bytes:
        """Write ``record`` as the chain's next line; return its bytes, or raise
        ``AuditUnavailable``."""
        if not self.path:
            raise AuditUnavailable("no audit log configured")
        try:
            data = self._append(dict(record))
        except (TypeError, ValueError) as e:
            raise AuditUnavailable(f"record not serialisable: {e}") from e
        except ChainError as e:
            raise AuditUnavailable(f"audit log {self.path}: {e}; run `zt audit rotate`") from e
        except OSError as e:
            raise AuditUnavailable(f"{type(e).__name__}: {e.strerror}") from e
        if self.sink is not None:
            self.sink.send(data)
        return data

    def _append(self, record: dict[str, Any]) -> bytes:
        assert self.path is not None
        for _ in range(REOPEN_ATTEMPTS):
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                st = os.fstat(fd)
                try:
                    at_path = os.stat(self.path)
                except FileNotFoundError:
                    continue  # renamed away and not yet replaced: open the new one
                if (at_path.st_dev, at_path.st_ino) != (st.st_dev, st.st_ino):
                    continue  # rotated while we waited for the lock
                head = self._head(fd, st)
                data = chained_line(record, head.next_seq, head.digest)
                written = os.write(fd, data)
                if written != len(data):
                    raise AuditUnavailable(f"short write {written}/{len(data)}")
                with self._seen_lock:
                    self._seen = _Seen(
                        st.st_dev,
                        st.st_ino,
                        st.st_size + written,
                        Head(head.next_seq, line_hash(data)),
                    )
                return data
            finally:
                os.close(fd)  # releases the lock
        raise AuditUnavailable(f"audit log {self.path} kept being replaced")

    def _head(self, fd: int, st: os.stat_result) -> Head:
        with self._seen_lock:
            seen = self._seen
        if seen is not None and (seen.dev, seen.ino, seen.size) == (
            st.st_dev,
            st.st_ino,
            st.st_size,
        ):
            return seen.head
        if st.st_size == 0:
            return EMPTY
        self.tail_reads += 1
        return chain_head(fd, st.st_size)


def append_audit_line(path: str | None, record: Mapping[str, Any]) -> bytes:
    """Write ``record`` as the next chain line of ``path`` (a one-off writer, no cache)."""
    return AuditWriter(path).append(record)
