"""Append an audit record to the audit file, failing closed.

Why fail closed: a decision nobody can later audit is treated like a decision
that was not made, so when the line cannot be written the adapter turns the
answer into a deny with ``audit_unavailable`` (status 503: a server-side fault
the caller cannot fix; nginx's ``auth_request`` answers the client with 500).

One ``os.write`` of one line on an ``O_APPEND`` descriptor, so concurrent
gunicorn workers do not interleave lines; the file is opened per record so a
rotated log is picked up without a reload. No fsync: durability against power
loss is traded for latency, integrity of each line is kept.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from verifier.errors import AuditUnavailable


def append_audit_line(path: str | None, record: Mapping[str, Any]) -> None:
    """Write ``record`` as one JSON line to ``path``, or raise ``AuditUnavailable``."""
    if not path:
        raise AuditUnavailable("no audit log configured")
    try:
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=True) + "\n"
    except (TypeError, ValueError) as e:
        raise AuditUnavailable(f"record not serialisable: {e}") from e
    data = line.encode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            written = os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as e:
        raise AuditUnavailable(f"{type(e).__name__}: {e.strerror}") from e
    if written != len(data):
        raise AuditUnavailable(f"short write {written}/{len(data)}")
