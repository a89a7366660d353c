"""The second audit sink: ``zt audit-sink``, a copy of every audit line kept by
another user.

Why this sink (issue 18, item 3): the primary audit file is written by the
verifier's user (``config.SERVICE_USER``), who could therefore also rewrite it,
hashes included. This service runs as ``config.AUDIT_USER`` and appends every line
it receives to ``config.AUDIT_SINK_LOG`` in a folder only that user can open
(0700; the file 0600), so once a line is copied the verifier's user cannot change
it; ``zt audit verify`` compares the two copies. A syslog daemon would do the same
job on a host that runs one; this stack runs none, and a unix datagram socket
gives the one property syslog would not: the kernel tells us the sender's uid.

* Started as root by the supervisor: it creates its folder, binds
  ``config.AUDIT_SINK_SOCKET`` (owner ``AUDIT_USER``, group ``GATEWAY_GROUP``,
  0620: the verifier's workers run in that group), turns on ``SO_PASSCRED``, then
  drops to ``AUDIT_USER`` for good. Not root (a developer's machine): everything
  runs as the invoking user, socket 0600.
* Each datagram is accepted only from ``SERVICE_USER``'s uid or root's (the
  kernel's ``SCM_CREDENTIALS``; nginx's workers share the socket's group and are
  refused; root is ``zt audit rotate``, which sends the anchor it wrote)
  and only when it is one chain line (``verifier.auditchain``); anything else is
  counted and dropped.
* A rotation anchor (``"event":"audit_rotated"``) rotates the copy too: the
  current file is renamed to the anchor's ``previous_file`` (the name the primary's
  archive got) and the anchor starts the new one, so both keep the same files;
  ``config.AUDIT_KEEP`` archives are kept.

The verifier sends without blocking and never waits for this service
(``verifier.auditsink``): when it is down, lines are only in the primary file and
the verifier's ``/healthz`` says so.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import socket
import struct
import time
from pathlib import Path

from scripts import config
from scripts.files import write_atomic
from scripts.services import accounts, procs
from verifier.auditchain import parse_chain_fields
from verifier.auditrotate import anchor_fields, archives, is_stamp

UCRED = struct.Struct("iII")  # struct ucred: pid, uid, gid
MAX_LINE_BYTES = 256 * 1024


def argv() -> list[str]:
    return [str(config.REPO / ".venv" / "bin" / "python"), "-m", "scripts.zt", "audit-sink"]


def start() -> None:
    """Start the sink unless it runs; wait until its socket is bound."""
    procs.start_loop(config.AUDIT_SINK, argv(), config.AUDIT_SINK_STATUS, "socket bound", 30)


def allowed_uids() -> frozenset[int]:
    """The senders the sink accepts: the verifier's workers' user, and root (``zt audit
    rotate`` sends the anchor it writes; root could write the sink's file anyway)."""
    if accounts.privileged():
        return frozenset({pwd.getpwnam(config.SERVICE_USER).pw_uid, 0})
    return frozenset({os.geteuid()})


def bind(path: Path) -> socket.socket:
    """The receiving socket at ``path``, writable by the verifier's workers only
    (and by its owner); credentials passed with every datagram."""
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.bind(str(path))
    if accounts.privileged():
        audit = pwd.getpwnam(config.AUDIT_USER)
        os.chown(path, audit.pw_uid, grp.getgrnam(config.GATEWAY_GROUP).gr_gid)
        os.chmod(path, 0o620)
    else:
        os.chmod(path, 0o600)
    return sock


def drop_privileges(folder: Path) -> None:
    """Make ``folder`` the audit user's (0700) and become that user (root only)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not accounts.privileged():
        folder.chmod(0o700)
        return
    audit = pwd.getpwnam(config.AUDIT_USER)
    os.chown(folder, audit.pw_uid, audit.pw_gid)
    for path in folder.iterdir():
        os.chown(path, audit.pw_uid, audit.pw_gid)
    folder.chmod(0o700)
    os.setgroups([])
    os.setgid(audit.pw_gid)
    os.setuid(audit.pw_uid)


class SinkFile:
    """The sink's copy: appended line by line, rotated when an anchor arrives."""

    def __init__(self, path: Path, keep: int) -> None:
        self.path = path
        self.keep = keep
        self._fd = self._open()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def append(self, line: bytes) -> None:
        anchor = anchor_fields(line)
        if anchor is not None:
            self._rotate(str(anchor.get("previous_file", "")))
        os.write(self._fd, line)

    def _rotate(self, previous: str) -> None:
        prefix = self.path.name + "."
        if not previous.startswith(prefix) or not is_stamp(previous[len(prefix) :]):
            previous = prefix + time.strftime("%Y%m%dT%H%M%S.000000Z", time.gmtime())
        os.close(self._fd)
        if self.path.exists() and not (self.path.parent / previous).exists():
            os.replace(self.path, self.path.parent / previous)
        self._fd = self._open()
        kept = archives(self.path)
        for old in kept[: max(0, len(kept) - self.keep)]:
            old.unlink()


def _sender_uid(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            return UCRED.unpack(data[: UCRED.size])[1]
    return None


def run(rounds: int | None = None) -> int:
    """Receive and keep lines until killed (``rounds``: stop after that many datagrams)."""
    uids = allowed_uids()
    sock = bind(config.AUDIT_SINK_SOCKET)
    write_status({"pid": os.getpid(), "started_at": time.time()})  # as root: in RUN
    drop_privileges(config.AUDIT_SINK_DIR)
    sink = SinkFile(config.AUDIT_SINK_LOG, config.AUDIT_KEEP)
    refused = received = 0
    while rounds is None or received < rounds:
        data, ancdata, _flags, _addr = sock.recvmsg(MAX_LINE_BYTES, socket.CMSG_SPACE(UCRED.size))
        received += 1
        if not data:
            continue  # a writer's probe (verifier.auditsink.SinkSender.problem)
        why = _refusal(data, _sender_uid(ancdata), uids)
        if why is not None:
            refused += 1
            print(json.dumps({"refused": why, "bytes": len(data), "refused_total": refused}))
            continue
        sink.append(data)
    return 0


def _refusal(data: bytes, sender: int | None, allowed: frozenset[int]) -> str | None:
    if sender not in allowed:
        return f"sender uid {sender} is not the verifier's"
    if not data.endswith(b"\n") or data.count(b"\n") != 1 or parse_chain_fields(data) is None:
        return "not one audit chain line"
    return None


def write_status(status: dict[str, object]) -> None:
    """``config.AUDIT_SINK_STATUS``: the sink is bound (``zt status`` reads it)."""
    write_atomic(config.AUDIT_SINK_STATUS, json.dumps(status) + "\n")


def health() -> tuple[bool, str]:
    """For ``zt status``: bound (its socket exists) and started."""
    sock = config.AUDIT_SINK_SOCKET
    if not sock.is_socket():
        return False, f"no socket {sock}"
    return True, f"receiving on {sock.name}, copy in {config.AUDIT_SINK_LOG.parent.name}/"
