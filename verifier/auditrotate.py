"""Rotate the chained audit file without breaking the chain or losing a line.

Why here, next to the writer: a rotation must hold the same ``flock`` the
writers take (``verifier.auditlog``), so that no line is appended to the old file
after its last hash was taken, and the new file's first line (the *anchor*) must
continue the chain exactly as the writer would.

Under the old file's lock:

1. read the chain's head at its end (``raw_head``: a file whose end is no chain
   line, one written before the chain existed or torn by a full disk, is still
   rotated, so the operator's fix is always this one command; the anchor then
   says ``"previous_chained": false`` and restarts ``seq`` at 1);
2. write the new file beside it (``<name>.new``: the anchor line, mode 0600,
   ``own`` gives it to the writers' user; fsync), locked too;
3. hard-link the old file to its archive name ``<name>.<UTC timestamp>`` and
   ``rename`` the new one over ``<name>``: the path never disappears, so a
   writer never creates a stray empty file; a writer waiting for the lock finds
   its descriptor is no longer the file at the path and reopens;
4. fsync the folder, ``announce`` the anchor (to the second sink), unlock both;
   keep the newest ``keep`` archives, delete older ones.

Archive names sort in time order (``archives``), which is the order
``zt audit verify`` walks them.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from verifier.auditchain import ANCHOR_EVENT, Head, chained_line, raw_head

STAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"


@dataclass(frozen=True)
class Rotated:
    """What a rotation did."""

    archive: Path
    """The old file's new name."""
    lines_before: int
    """``seq`` of the old file's last chain line (0: it ended in no chain line)."""
    anchor: bytes
    """The new file's first line."""
    removed: tuple[Path, ...]
    """Archives deleted because more than ``keep`` were kept."""


def archives(path: Path) -> list[Path]:
    """The rotated files of ``path``, oldest first (their names sort by time)."""
    prefix = path.name + "."
    found = [
        p for p in path.parent.glob(prefix + "*") if p.is_file() and is_stamp(p.name[len(prefix) :])
    ]
    return sorted(found, key=lambda p: p.name)


def is_stamp(text: str) -> bool:
    """True when ``text`` is an archive name's timestamp (``STAMP_FORMAT``)."""
    try:
        dt.datetime.strptime(text, STAMP_FORMAT)
    except ValueError:
        return False
    return True


def anchor_line(previous: str, head: Head, chained: bool, now: float) -> bytes:
    """The first line of a file started by a rotation (``docs/operations.md``)."""
    record = {
        "time": dt.datetime.fromtimestamp(now, tz=dt.UTC).isoformat(timespec="milliseconds"),
        "request_id": "",  # no request: readers select decisions by request id
        "event": ANCHOR_EVENT,
        "previous_file": previous,
        "previous_chained": chained,
    }
    return chained_line(record, head.next_seq if chained else 1, head.digest)


def rotate(
    path: Path,
    keep: int,
    *,
    now: float,
    own: Callable[[Path], None] = lambda _p: None,
    announce: Callable[[bytes], object] = lambda _line: None,
) -> Rotated:
    """Rename ``path`` to an archive and start it again with an anchor line.

    ``announce`` gets the anchor while both files are still locked (the second
    sink's copy), so it is sent before any line a writer appends after it."""
    if keep < 1:
        raise ValueError("keep at least one archive")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        st = os.fstat(fd)
        at_path = os.stat(path)
        if (at_path.st_dev, at_path.st_ino) != (st.st_dev, st.st_ino):
            raise OSError(f"{path} was replaced during the rotation; run it again")
        head, chained = raw_head(fd, st.st_size)
        stamp = dt.datetime.fromtimestamp(now, tz=dt.UTC).strftime(STAMP_FORMAT)
        archive = path.with_name(f"{path.name}.{stamp}")
        anchor = anchor_line(archive.name, head, chained, now)
        fresh = path.with_name(path.name + ".new")
        fresh.unlink(missing_ok=True)
        new_fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(new_fd, fcntl.LOCK_EX)  # writers wait until the anchor is announced
            os.write(new_fd, anchor)
            os.fsync(new_fd)
            own(fresh)
            os.link(path, archive)
            os.replace(fresh, path)
            dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            announce(anchor)
        finally:
            os.close(new_fd)
    finally:
        os.close(fd)
    kept = archives(path)
    removed = tuple(kept[: max(0, len(kept) - keep)])
    for old in removed:
        old.unlink()
    return Rotated(archive, head.seq if chained else 0, anchor, removed)


def anchor_fields(line: bytes) -> dict[str, object] | None:
    """The anchor's fields when ``line`` is an anchor line, else None."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if isinstance(obj, dict) and obj.get("event") == ANCHOR_EVENT:
        return obj
    return None
