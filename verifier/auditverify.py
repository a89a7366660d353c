"""Walk the audit chain across files and name the first broken link.

Why each check (the chain is defined in ``verifier.auditchain``):

* a line without a final ``"\\n"`` at the end of a file: the file was
  **truncated** (or a write was torn);
* a line that is not a JSON object with a valid ``seq`` and ``prev``: it was
  **edited** (or is not a chain line at all);
* ``seq`` higher than expected: lines were **deleted** before it (their numbers
  are named);
* ``seq`` not higher than the line before: a line was **inserted** before it;
* ``prev`` is not the hash of the line before: **the line before was edited**
  (its bytes are not the ones the next line linked to); on a file's first line,
  the previous file is not the one this file was rotated from, or its end changed.

The first file walked may start with a rotation anchor whose predecessor is not
given (archives beyond the kept number are deleted): its ``prev`` is taken as
given and the report says so. Any later file must start with an anchor.

The last line of the last file has no successor, so an edit of it alone (or
lines cut off the end) is only seen by comparing with the second sink's copy
(``compare``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from verifier.auditchain import GENESIS, line_hash, parse_chain_fields
from verifier.auditrotate import anchor_fields


@dataclass(frozen=True)
class Broken:
    """The first broken link: where, and what is wrong."""

    file: str
    line: int
    """1-based line number in ``file``."""
    problem: str

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}: {self.problem}"


@dataclass(frozen=True)
class Report:
    """The walk's outcome: ``broken`` is None when the chain is intact."""

    lines: int
    files: int
    broken: Broken | None
    starts_at: str
    """How the chain starts: at genesis, or at an anchor whose predecessor was not given."""

    @property
    def intact(self) -> bool:
        return self.broken is None

    def __str__(self) -> str:
        if self.broken is not None:
            return f"broken: {self.broken}"
        return f"intact, {self.lines} lines in {self.files} file(s) ({self.starts_at})"


def _lines(data: bytes) -> Iterator[bytes]:
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        if end < 0:
            yield data[start:]
            return
        yield data[start : end + 1]
        start = end + 1


def verify(files: Sequence[Path]) -> Report:
    """Walk ``files`` (oldest first) as one chain."""
    expected_prev: str | None = None
    expected_seq: int | None = None
    before: tuple[str, int] | None = None  # (file, line number) of the last line walked
    total = 0
    starts_at = "empty"

    def broken(name: str, number: int, problem: str, files_seen: int) -> Report:
        return Report(total, files_seen, Broken(name, number, problem), "")

    skipped = _before_the_chain(files)
    for index, path in enumerate(files):
        if index < skipped:
            continue
        name = str(path)
        for number, line in enumerate(_lines(path.read_bytes()), start=1):
            if not line.endswith(b"\n"):
                return broken(name, number, "truncated: incomplete last line", index + 1)
            fields = parse_chain_fields(line)
            if fields is None:
                problem = "edited: not a JSON chain line (no valid seq/prev)"
                return broken(name, number, problem, index + 1)
            seq, prev = fields
            anchor = anchor_fields(line) if number == 1 else None
            if number == 1 and index > 0 and anchor is None:
                return broken(name, number, "does not start with a rotation anchor", index + 1)
            if expected_seq is None:
                if anchor is not None and skipped:
                    starts_at = (
                        f"from the anchor of {name}; {skipped} earlier file(s) from before "
                        "the chain not checked"
                    )
                elif anchor is not None:
                    starts_at = f"from the anchor of {name}; earlier files not checked"
                elif seq != 1 or prev != GENESIS:
                    return broken(name, number, _start_problem(seq), index + 1)
                else:
                    starts_at = "from genesis"
            elif not (anchor is not None and anchor.get("previous_chained") is False):
                # (an anchor after an unchained end restarts the chain, and says so)
                if seq > expected_seq:
                    return broken(name, number, _deleted(seq, expected_seq), index + 1)
                if seq < expected_seq:
                    problem = (
                        f"inserted: a line was added before it (its seq {seq} was "
                        f"expected to be {expected_seq})"
                    )
                    return broken(name, number, problem, index + 1)
                if prev != expected_prev and before is not None:
                    problem = (
                        f"edited: its hash is not the prev of the next line ({name}, line {number})"
                    )
                    return broken(before[0], before[1], problem, index + 1)
            if anchor is not None and before is not None:
                named = anchor.get("previous_file")
                if named != Path(before[0]).name:
                    problem = f"the anchor names {named!r}, not the file before it ({before[0]})"
                    return broken(name, number, problem, index + 1)
            expected_seq, expected_prev = seq + 1, line_hash(line)
            before = (name, number)
            total += 1
    return Report(total, len(files), None, starts_at)


def _before_the_chain(files: Sequence[Path]) -> int:
    """How many of ``files`` (oldest first) come before the last anchor that says the
    file before it was not chained (``"previous_chained": false``) when that file is
    from before the hash chain (its first line is no chain line: `make up` archived it
    on the upgrade). Those files have no chain to walk; the
    anchor itself is walked, and the next line's ``prev`` covers its bytes, so a forged
    anchor is named as an edit."""
    start = 0
    for index, path in enumerate(files):
        if index == 0:
            continue
        try:
            with path.open("rb") as f:
                first = f.readline()
        except OSError:
            continue  # walked (and reported) below
        anchor = anchor_fields(first) if first.endswith(b"\n") else None
        unchained = anchor is not None and anchor.get("previous_chained") is False
        if unchained and not _starts_chained(files[index - 1]):  # a torn one stays checked
            start = index
    return start


def _starts_chained(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return parse_chain_fields(f.readline()) is not None
    except OSError:
        return True  # walked (and reported) below


def _deleted(seq: int, expected: int) -> str:
    missing = f"seq {expected}" if seq == expected + 1 else f"seq {expected}..{seq - 1}"
    return f"deleted: {seq - expected} line(s) ({missing}) missing before it"


def _start_problem(seq: int) -> str:
    if seq > 1:
        return f"deleted: lines with seq 1..{seq - 1} are missing before it (chain starts at {seq})"
    return "edited: the first line's prev is not the genesis value"


@dataclass(frozen=True)
class Difference:
    """A line of the primary chain that differs from the sink's copy."""

    file: str
    line: int
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"{self.file}, line {self.line} (seq {self.seq}): {self.problem}"


def _by_seq(files: Iterable[Path]) -> Iterator[tuple[str, int, int, bytes]]:
    for path in files:
        for number, line in enumerate(_lines(path.read_bytes()), start=1):
            fields = parse_chain_fields(line)
            yield str(path), number, fields[0] if fields else -1, line


def compare(primary: Sequence[Path], sink: Sequence[Path]) -> tuple[int, list[Difference]]:
    """Compare the primary files with the sink's copy, line by ``seq``.

    Returns (lines compared, differences): a sink line whose ``seq`` the primary
    lacks (deleted or cut off the primary), or whose bytes differ (edited). Lines
    only in the primary are not differences: the sink is best effort and may have
    missed them (``verifier.auditsink``)."""
    mine: dict[int, tuple[str, int, bytes]] = {}
    for name, number, seq, line in _by_seq(primary):
        if seq > 0:
            mine.setdefault(seq, (name, number, line))
    differences: list[Difference] = []
    compared = 0
    last = primary[-1] if primary else Path("<none>")
    for sink_name, sink_number, seq, line in _by_seq(sink):
        if seq <= 0:
            continue
        compared += 1
        found = mine.get(seq)
        if found is None:
            differences.append(
                Difference(
                    str(last),
                    0,
                    seq,
                    f"missing from the primary (deleted or cut off); the sink has it at "
                    f"{sink_name}, line {sink_number}",
                )
            )
        elif found[2] != line:
            differences.append(
                Difference(found[0], found[1], seq, "edited: differs from the sink's copy")
            )
    return compared, differences
