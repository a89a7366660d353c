"""``zt audit rotate`` and ``zt audit verify``: the audit trail's operations.

Why rotation is driven from here and not by the writer: the verifier's workers
run as ``config.SERVICE_USER`` and cannot rename files in the logs folder (root's),
and a decision should never pay for a rotation. The renewer (``zt renew --every
auto``, at most ``RENEW_INTERVAL_MAX_SECONDS`` apart) calls ``rotate_if_larger``
after each run, so a stack left alone for a month rotates its audit file once it
passes ``config.AUDIT_ROTATE_BYTES`` and keeps ``config.AUDIT_KEEP`` archives
(the sink mirrors both). The chain itself is in ``verifier.auditchain``,
the rotation under the writers' lock in ``verifier.auditrotate``, the walk in
``verifier.auditverify``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from scripts import config
from scripts.services import accounts
from scripts.steps import StepFailed, say
from verifier.auditchain import raw_head
from verifier.auditrotate import Rotated, archives, rotate
from verifier.auditsink import SinkSender
from verifier.auditverify import compare, verify


def rotate_now(path: Path = config.AUDIT_LOG, keep: int = config.AUDIT_KEEP) -> Rotated:
    """Rotate ``path``; the new file is the verifier's user's, 0600."""
    if not path.exists():
        raise StepFailed(f"{path} does not exist; nothing to rotate")
    # The anchor is the writers' next link but no writer wrote it: copy it to the sink
    # too, so the sink rotates its copy with the primary (best effort, as every line).
    sink = SinkSender(str(config.AUDIT_SINK_SOCKET)) if path == config.AUDIT_LOG else None
    try:
        return rotate(
            path,
            keep,
            now=time.time(),
            own=lambda p: accounts.give_to_service(p, 0o600),
            announce=sink.send if sink is not None else lambda _line: None,
        )
    except OSError as e:
        raise StepFailed(f"rotating {path} failed: {e}") from e


def rotate_if_larger(actions: list[str], limit: int = config.AUDIT_ROTATE_BYTES) -> None:
    """The renewer's hook: rotate the audit file once it is past ``limit`` bytes."""
    path = config.AUDIT_LOG
    if path.exists() and path.stat().st_size > limit:
        done = rotate_now(path)
        actions.append(f"audit log rotated to {done.archive.name} ({done.lines_before} lines)")


def chain_files(path: Path) -> list[Path]:
    """``path``'s archives (oldest first), then ``path``: the order the chain runs."""
    return [*archives(path), *([path] if path.exists() else [])]


def verify_command(files: Sequence[Path], sink: Sequence[Path] | None) -> int:
    """Print the walk's outcome (and the comparison with the sink's copy); 0 when intact.

    No ``files``: the live audit file and its archives, compared with the sink's
    copy when this user can read it (root: the sink's folder is 0700)."""
    if not files:
        files = chain_files(config.AUDIT_LOG)
        if sink is None and _readable(config.AUDIT_SINK_DIR):
            sink = chain_files(config.AUDIT_SINK_LOG)
    if not files:
        raise StepFailed(f"no audit file found ({config.AUDIT_LOG})")
    report = verify(files)
    say(str(report))
    failed = not report.intact
    if sink:
        compared, differences = compare(files, sink)
        for difference in differences[:20]:
            say(f"differs from the sink: {difference}")
        if len(differences) > 20:
            say(f"... and {len(differences) - 20} more")
        say(
            f"sink copy: {compared} lines compared, {len(differences)} difference(s)"
            + ("" if differences else ", identical")
        )
        failed = failed or bool(differences)
    return 1 if failed else 0


def _readable(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.R_OK | os.X_OK)


def rotate_if_unchained(path: Path = config.AUDIT_LOG) -> str:
    """A file written before the hash chain existed ends in a line with no ``seq``/``prev``,
    and the writer refuses to continue it (fail closed): rotate it so the new file
    starts with an anchor. Run by ``make up`` after the verifier was replaced (a
    one-off on upgrade; until then its workers deny with ``audit_unavailable``)."""
    if not path.exists() or path.stat().st_size == 0:
        return "nothing to do (no file or empty)"
    with path.open("rb") as fh:
        _head, chained = raw_head(fh.fileno(), os.fstat(fh.fileno()).st_size)
    if chained:
        return "chained; nothing to do"
    done = rotate_now(path)
    return f"rotated to {done.archive.name}: its end was no chain line"
