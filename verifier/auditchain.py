"""The audit file's hash chain: what each line carries, and where a chain stands.

Why a chain: the audit file is the record of every decision; an operator (or an
intruder with the file's owner's rights) could otherwise edit, delete or insert a
line without a trace. Each line names the one before it, so any such change breaks
a link that ``verifier.auditverify`` finds and names.

The definition (docs/operations.md "Audit trail"):

* every line is one JSON object ending in ``"\\n"`` whose last two members are
  ``"seq"`` (an integer, +1 per line along the chain, 1 for the first line ever)
  and ``"prev"`` (64 lower-case hex digits);
* ``prev`` is the SHA-256 of the previous line's exact bytes, its ``"\\n"``
  included (``line_hash``); the first line of a chain has ``prev`` =
  ``GENESIS`` (64 zeros) and ``seq`` = 1;
* a rotation (``verifier.auditrotate``) starts the new file with an *anchor*
  line (``"event":"audit_rotated"``, ``"previous_file"``: the renamed file's
  name) whose ``seq``/``prev`` continue the chain from the old file's last line,
  so the chain runs on across files.

What it does not prove: whoever can write the file can also recompute every hash
after an edit (there is no key) and can cut lines off its end. The second sink
(``verifier.auditsink``, a copy in a file the verifier's user cannot modify) is
what catches a rewritten or shortened primary file.

This module reads only the end of a file (``chain_head``); the writer caches its
answer per process, so a record costs one tail read only when another process
wrote since (``verifier.auditlog``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Final

GENESIS: Final = "0" * 64
"""``prev`` of the first line of a chain (no line before it)."""
ANCHOR_EVENT: Final = "audit_rotated"
"""``event`` of the first line of a file started by a rotation."""
TAIL_READ_BYTES: Final = 8192
"""First read at the file's end when looking for its last line (doubled until found)."""


class ChainError(Exception):
    """The file's end is not a chain record the next line can link to."""


def line_hash(line: bytes) -> str:
    """The ``prev`` a line following ``line`` (its bytes, ``"\\n"`` included) carries."""
    return hashlib.sha256(line).hexdigest()


def chained_line(record: dict[str, Any], seq: int, prev: str) -> bytes:
    """``record`` as one chain line: compact ASCII JSON, ``seq`` and ``prev`` last."""
    return chain_line_from_body(record_body(record), seq, prev)


def record_body(record: dict[str, Any]) -> str:
    """``record``'s part of its chain line: the JSON object without its closing brace.

    Why split: the writer serialises the record before it takes the file's lock and
    adds ``seq`` and ``prev`` under it, so no other writer waits for ``json.dumps``.
    The bytes are the same as ``json.dumps({**record, "seq": ..., "prev": ...})``
    (compact separators, ASCII)."""
    if "seq" in record or "prev" in record:
        raise ValueError("a record may not carry seq or prev itself")
    text = json.dumps(record, separators=(",", ":"), ensure_ascii=True)
    return text[:-1] + "," if record else "{"


def chain_line_from_body(body: str, seq: int, prev: str) -> bytes:
    """The chain line of a ``record_body``: ``seq`` and ``prev`` added last, ``"\\n"`` ended."""
    if type(seq) is not int or not _is_digest(prev):
        raise ValueError("seq must be an integer and prev a SHA-256 hex digest")
    return f'{body}"seq":{seq},"prev":"{prev}"}}\n'.encode("ascii")


@dataclass(frozen=True)
class Head:
    """Where the chain stands at the end of one file: what the next line carries."""

    seq: int
    """``seq`` of the last line (0 for an empty file)."""
    digest: str
    """``line_hash`` of the last line (``GENESIS`` for an empty file)."""

    @property
    def next_seq(self) -> int:
        return self.seq + 1


EMPTY: Final = Head(0, GENESIS)


def parse_chain_fields(line: bytes) -> tuple[int, str] | None:
    """(``seq``, ``prev``) of a chain line, or None when it is not one."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    seq, prev = obj.get("seq"), obj.get("prev")
    if type(seq) is not int or seq < 1 or not _is_digest(prev):
        return None
    return seq, prev


_DIGEST = re.compile(r"[0-9a-f]{64}")


def _is_digest(value: object) -> bool:
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def last_line(fd: int, size: int) -> bytes:
    """The bytes of the file's last line (``"\\n"`` included), read from its end.

    Raises ``ChainError`` when the file does not end with ``"\\n"`` (a torn write:
    the next line would be glued to it)."""
    if size == 0:
        return b""
    want = TAIL_READ_BYTES
    while True:
        start = max(0, size - want)
        data = os.pread(fd, size - start, start)
        if len(data) != size - start:
            raise ChainError(f"short read at the end of the file ({len(data)}/{size - start})")
        if not data.endswith(b"\n"):
            raise ChainError("the file ends with an incomplete line (no newline)")
        cut = data.rfind(b"\n", 0, len(data) - 1)
        if cut >= 0 or start == 0:
            return data[cut + 1 :]
        want *= 2


def chain_head(fd: int, size: int) -> Head:
    """Where the chain stands after the first ``size`` bytes of ``fd``.

    Raises ``ChainError`` when the last line is no chain line (a file written
    before the chain existed, or an edited end): the writer fails closed then,
    and ``zt audit rotate`` starts a new file anchored to it."""
    line = last_line(fd, size)
    if not line:
        return EMPTY
    fields = parse_chain_fields(line)
    if fields is None:
        raise ChainError("the last line is not a chain record (no valid seq/prev)")
    return Head(fields[0], line_hash(line))


def raw_head(fd: int, size: int) -> tuple[Head, bool]:
    """Like ``chain_head`` but never refusing (for a rotation, which must always be
    able to start a clean file): (head, True) for a chain end; otherwise the hash of
    whatever bytes follow the last newline (or of the last line) and seq 0, False."""
    try:
        return chain_head(fd, size), True
    except ChainError:
        pass
    start = max(0, size - TAIL_READ_BYTES)
    data = os.pread(fd, size - start, start)
    cut = data.rstrip(b"\n").rfind(b"\n")
    return Head(0, line_hash(data[cut + 1 :])), False
