"""Lockout: a certificate that keeps presenting refused tokens is refused early for a while.

Why per certificate: nginx has verified the client certificate (our client CA, not
revoked) before the verifier is asked, so its serial names one workload credential
for sure. Someone who holds a certificate but no valid token for it (a stolen key,
a disabled client, a forger) can only try tokens; after ``LOCKOUT_THRESHOLD``
refused tokens within ``LOCKOUT_WINDOW_SECONDS`` every request with that
certificate is refused for ``LOCKOUT_SECONDS`` (429 ``locked_out``) before its
token is even read. Another certificate is never affected, and neither is the same
workload after ``zt rotate`` (a new certificate has a new serial). Not per source
address: every workload behind one NAT (or, here, on loopback) shares one, so a
lockout by address would lock honest workloads out with the attacker.

What counts (``COUNTED_REASONS``): the 401s of the token and binding checks — the
caller presented a token that is not a valid token of this certificate. Not:

* ``jwks_unavailable``, ``jwks_stale``: our fault (Keycloak unreachable), not the
  caller's; counting them would lock every workload out during an outage;
* ``token_key_unknown``: also what honest tokens get right after Keycloak rotated
  its signing key, until the verifier's rate-limited refetch; a token with an
  unknown ``kid`` is never checked against anything, so counting it buys nothing;
* 403s (the route, a role, a tenant): the token is valid and proves the workload;
  locking it out of the routes it may use would turn a policy mistake into an
  outage (privilege-escalation attempts are for the alerts);
* transport refusals (no parsable certificate, no serial to count) and 503s.

How, across gunicorn's worker processes: one folder (``LOCKOUT_DIR``), per serial

* ``<serial>.denials``: one ``O_APPEND`` line of epoch seconds per counted refusal
  (a write of a few bytes on an ``O_APPEND`` descriptor is never interleaved with
  another). Only the deny path writes or reads it, so honest traffic pays nothing
  there. When it holds more than ``2 x threshold`` lines, the lines still in the
  window are written back by rename (appends racing that rewrite may be lost: the
  count can only come out lower, never lock anyone early);
* ``<serial>.lock``: an empty file whose mtime is the end of the lockout, made by
  rename (a reader sees none or a whole one); reaching the threshold creates it and
  removes the count, so a lockout shorter than the window starts clean. Every
  request pays one ``stat`` of this path (``locked_until``; ~2 µs, a miss).

Bounded: only certificates of our client CA reach the verifier, every count file
holds at most ``2 x threshold + 1`` lines, and at most once per window each worker
removes the count files not written for a window and the lock files that ended
(``prune``). An I/O error is logged and never changes a decision: the lockout
slows attackers down, the checks decide.

nginx keeps the verifier's ``locked_out`` answer per serial for as long as its
``Cache-Control: max-age`` says (nginx/snippets/lockout-hop.conf), so while a
certificate is locked out nginx refuses it without asking the verifier; the
verifier's own check here is the defence in depth (nginx's cache evicted, reloaded
with a new generation, or a request that raced the first lockout answer).
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
from pathlib import Path
from typing import Final, Protocol

from verifier import errors
from verifier.errors import LockedOut, VerifierError
from verifier.response import AuthorizerResponse
from verifier.settings import Settings

log = logging.getLogger(__name__)

COMPACT_FACTOR: Final = 2
"""A count file is rewritten (only its lines in the window kept) past this many
times the threshold."""
STALE_TMP_SECONDS: Final = 60.0
"""A temporary file of a rewrite or a lock older than this was left by a killed worker."""
_SERIAL: Final = re.compile(r"[0-9A-F]{1,128}")
"""``transport.serial_hex``: the only names this module builds paths from."""


def _leaf_reasons(*categories: type[VerifierError]) -> frozenset[str]:
    found: set[str] = set()
    pending = list(categories)
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not cls.__subclasses__():
            found.add(cls.reason)
    return frozenset(found)


NOT_COUNTED: Final = frozenset(
    {
        errors.JwksUnavailable.reason,
        errors.JwksStale.reason,
        errors.TokenKeyUnknown.reason,
    }
)
COUNTED_REASONS: Final = _leaf_reasons(errors.TokenError, errors.BindingError) - NOT_COUNTED
"""The refusals that count toward a lockout (see the module docstring)."""


class LockoutSource(Protocol):
    """Where ``decide`` asks whether a certificate is locked out, and the adapter
    records each refusal."""

    def locked_until(self, serial: str, now: float) -> float:
        """Epoch seconds the lockout of ``serial`` ends; at or before ``now``: none."""
        ...

    def record(self, response: AuthorizerResponse, now: float) -> None:
        """Count ``response`` if it is a counted refusal of a certificate."""
        ...


class NoLockouts:
    """No lockout at all: ``LOCKOUT_THRESHOLD`` 0, no ``LOCKOUT_DIR`` (the Lambda), tests."""

    def locked_until(self, serial: str, now: float) -> float:
        return 0.0

    def record(self, response: AuthorizerResponse, now: float) -> None:
        return None


NO_LOCKOUTS: Final = NoLockouts()


def check_not_locked_out(serial: str, lockouts: LockoutSource, now: float) -> None:
    """Raise ``LockedOut`` while ``serial`` is locked out (before its token is read)."""
    until = lockouts.locked_until(serial, now)
    if until > now:
        raise LockedOut(f"certificate {serial} locked out for {until - now:.0f}s", until=until)


def lockout_from_settings(settings: Settings) -> LockoutSource:
    """The folder-backed lockout of ``settings``, or none when it is off."""
    if settings.lockout_dir is None or settings.lockout_threshold <= 0:
        return NO_LOCKOUTS
    return FolderLockouts(
        Path(settings.lockout_dir),
        threshold=settings.lockout_threshold,
        window=settings.lockout_window_seconds,
        period=settings.lockout_seconds,
    )


def answer_headers(response: AuthorizerResponse, now: float) -> list[tuple[str, str]]:
    """The lockout's answer headers: ``Retry-After`` for the client and ``Cache-Control:
    max-age`` for nginx's lockout cache, both the seconds left; none for any other answer.

    From nginx's cache, ``Retry-After`` is the value when the lockout was answered: at
    most ``LOCKOUT_SECONDS``, never shorter than what is left.
    """
    if response.reason != LockedOut.reason:
        return []
    seconds = str(max(1, math.ceil(response.valid_until - now)))
    return [("Retry-After", seconds), ("Cache-Control", f"max-age={seconds}")]


class FolderLockouts:
    """Counts and lockouts in one folder, shared by every worker process (module docstring)."""

    def __init__(self, folder: Path, *, threshold: int, window: float, period: float) -> None:
        self.folder = folder
        self._prefix = f"{folder}{os.sep}"
        self.threshold = threshold
        self.window = window
        self.period = period
        self._next_prune = 0.0
        self._prune_lock = threading.Lock()

    def _path(self, serial: str, suffix: str) -> Path:
        return Path(self._name(serial, suffix))

    def _name(self, serial: str, suffix: str) -> str:
        """The file's path as a str: the request path's stat builds no ``Path``."""
        if not _SERIAL.fullmatch(serial):
            raise ValueError(f"not a certificate serial: {serial[:32]!r}")
        return f"{self._prefix}{serial}{suffix}"

    # --- the request path: one stat ------------------------------------------------

    def locked_until(self, serial: str, now: float) -> float:
        """The lock file's mtime; 0 when there is none (or it cannot be read: logged).

        A lock ending more than ``period`` from now (the clock was set back) is
        ignored rather than trusted for longer than a lockout lasts.
        """
        try:
            until = os.stat(self._name(serial, ".lock")).st_mtime
        except FileNotFoundError:
            return 0.0
        except (OSError, ValueError) as e:
            log.warning("lockout: cannot read the lock of %s: %s", serial[:32], e)
            return 0.0
        return until if until - now <= self.period else 0.0

    # --- the deny path ---------------------------------------------------------------

    def record(self, response: AuthorizerResponse, now: float) -> None:
        serial = response.identity.cert_serial
        if response.allowed or response.reason not in COUNTED_REASONS or not serial:
            return
        try:
            self.count(serial, now)
            self.prune_now_and_then(now)
        except (OSError, ValueError) as e:
            log.warning("lockout: could not count a refusal of %s: %s", serial[:32], e)

    def count(self, serial: str, now: float) -> int:
        """Add one refusal of ``serial`` at ``now``; lock it out when that makes
        ``threshold`` within the window. Returns the refusals in the window."""
        path = self._path(serial, ".denials")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, f"{now:.6f}\n".encode("ascii"))
            os.utime(fd, (now, now))  # its last refusal, on the clock ``prune`` reads
        finally:
            os.close(fd)
        times = _times(path.read_bytes())
        recent = [t for t in times if t > now - self.window]
        if len(recent) >= self.threshold:
            self.lock(serial, now + self.period)
            path.unlink(missing_ok=True)
            log.warning(
                "lockout: certificate %s locked out for %gs after %d refused tokens in %gs",
                serial,
                self.period,
                len(recent),
                self.window,
            )
        elif len(times) > COMPACT_FACTOR * self.threshold:
            self._rewrite(path, recent)
        return len(recent)

    def lock(self, serial: str, until: float) -> None:
        """Lock ``serial`` out until ``until``: an empty file with that mtime, by rename."""
        tmp = self._tmp(serial)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        os.utime(tmp, (until, until))
        os.replace(tmp, self._path(serial, ".lock"))

    def _rewrite(self, path: Path, recent: list[float]) -> None:
        tmp = self._tmp(path.stem)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, "".join(f"{t:.6f}\n" for t in recent).encode("ascii"))
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def _tmp(self, stem: str) -> Path:
        return self.folder / f".{stem}.{os.getpid()}.{threading.get_ident()}.tmp"

    def prune_now_and_then(self, now: float) -> None:
        """``prune`` at most once per window per process (on the deny path only)."""
        with self._prune_lock:
            if now < self._next_prune:
                return
            self._next_prune = now + self.window
        self.prune(now)

    def prune(self, now: float) -> int:
        """Remove count files not written for a window, locks that ended, temporary
        files a killed worker left; returns how many."""
        removed = 0
        with os.scandir(self.folder) as entries:
            for entry in entries:
                try:
                    removed += self._prune_one(entry, now)
                except OSError:
                    continue  # another worker pruned or rewrote it meanwhile
        return removed

    def _prune_one(self, entry: os.DirEntry[str], now: float) -> int:
        name, stat = entry.name, entry.stat()
        if name.endswith(".tmp"):
            if stat.st_ctime < now - STALE_TMP_SECONDS:
                os.unlink(entry.path)
                return 1
        elif name.endswith(".denials"):
            if stat.st_mtime <= now - self.window:
                os.unlink(entry.path)
                return 1
        elif name.endswith(".lock") and stat.st_mtime <= now:
            # Move it aside first: a new lock of the same serial renamed in after
            # the scan must survive (put back when what was moved is not over).
            aside = self._tmp(name.removesuffix(".lock") + ".expired")
            os.rename(entry.path, aside)
            if os.stat(aside).st_mtime > now:
                os.replace(aside, entry.path)
                return 0
            os.unlink(aside)
            return 1
        return 0


def _times(data: bytes) -> list[float]:
    """The epoch seconds in a count file; a line that does not parse is skipped."""
    found = []
    for line in data.split(b"\n"):
        try:
            value = float(line)
        except ValueError:
            continue
        if math.isfinite(value):
            found.append(value)
    return found
