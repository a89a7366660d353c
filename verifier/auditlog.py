"""Append an audit record to the audit file as the next link of its hash chain,
failing closed.

Why fail closed: a decision nobody can later audit is treated like a decision
that was not made, so when the line cannot be written the adapter turns the
answer into a deny with ``audit_unavailable`` (status 503: a server-side fault
the caller cannot fix; nginx's ``auth_request`` answers the client with 500).

How one record is appended (several gunicorn workers, each with threads, write
the same file):

0. serialise the record (``record_body``) before any lock is taken;
1. take this writer's thread lock (the threads of one worker share one
   descriptor, and ``flock`` does not order threads that share it), then
   ``flock(LOCK_EX)`` on the descriptor: the chain needs each line to know the
   one before, so appends are serialised, not merely atomic. The descriptor
   (``O_APPEND|O_CREAT``) is opened on the first record and kept: opening and
   closing the file per record cost ~3 µs of each decision (docs/benchmarks.md,
   "Issue 20, round 2"). A process forked from one that had it open opens its own
   (an inherited descriptor would share the parent's lock);
2. check the descriptor is still the file at the path (same device and inode):
   a rotation (``verifier.auditrotate``) may have replaced it while we waited for
   the lock or since our last line; if so, close it and start again on the new
   file (at most ``REOPEN_ATTEMPTS``); the same for a path that is gone or no
   longer a file, so whatever is at the path is what gets written (or refused);
3. find the chain's head: this writer caches (device, inode, size, seq, hash)
   after its own write; when the file is still that size nobody wrote since and
   nothing is read, otherwise the last line is read from the end
   (``verifier.auditchain.chain_head``);
4. one ``os.write`` of the line with ``seq`` and ``prev`` (``chain_line_from_body``),
   then ``flock(LOCK_UN)``. A failed write closes the descriptor: the next record
   opens the path afresh.

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

from verifier.auditchain import (
    EMPTY,
    ChainError,
    Head,
    chain_head,
    chain_line_from_body,
    line_hash,
    record_body,
)
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
        self._lock = threading.Lock()  # threads of one gthread worker share the descriptor
        self._fd: int | None = None
        self._pid = 0
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
        body = record_body(record)  # serialised before the lock: no JSON while others wait
        with self._lock:  # one thread of this process at a time; flock orders the processes
            for _ in range(REOPEN_ATTEMPTS):
                fd = self._descriptor()
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    data = self._append_locked(fd, body)
                finally:
                    if self._fd == fd:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                if data is not None:
                    return data
        raise AuditUnavailable(f"audit log {self.path} kept being replaced")

    def _append_locked(self, fd: int, body: str) -> bytes | None:
        """The line written under the lock; None when ``fd`` is no longer the file at
        the path (rotated or removed: dropped, the caller opens the new one)."""
        assert self.path is not None
        st = os.fstat(fd)
        try:
            at_path = os.stat(self.path)
        except FileNotFoundError:
            self._close()  # renamed away and not yet replaced: open the new one
            return None
        if (at_path.st_dev, at_path.st_ino) != (st.st_dev, st.st_ino):
            self._close()  # rotated while we waited for the lock (or since our last line)
            return None
        head = self._head(fd, st)
        data = chain_line_from_body(body, head.next_seq, head.digest)
        try:
            written = os.write(fd, data)
        except OSError:
            self._close()  # start afresh at the next record
            raise
        if written != len(data):
            self._close()
            raise AuditUnavailable(f"short write {written}/{len(data)}")
        self._seen = _Seen(
            st.st_dev, st.st_ino, st.st_size + written, Head(head.next_seq, line_hash(data))
        )
        return data

    def _descriptor(self) -> int:
        """This process's descriptor of the file at the path, opened on first use (and
        after a fork: a descriptor inherited from the parent shares its ``flock``)."""
        pid = os.getpid()
        if self._fd is not None and self._pid == pid:
            return self._fd
        if self._fd is not None:
            # The parent's, inherited. Closing our copy never releases the parent's
            # lock: a flock lasts until every copy of the descriptor is closed.
            inherited, self._fd = self._fd, None
            os.close(inherited)
        assert self.path is not None
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._pid = pid
        return self._fd

    def close(self) -> None:
        """Close the descriptor (a one-off writer; the app's lives as long as its worker)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        """Drop the descriptor (closing it releases this process's lock on it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _head(self, fd: int, st: os.stat_result) -> Head:
        seen = self._seen  # under self._lock
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
    writer = AuditWriter(path)
    try:
        return writer.append(record)
    finally:
        writer.close()
