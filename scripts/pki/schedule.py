"""The renewer: ``renew`` on a schedule, so nothing with a lifetime lapses unattended.

``zt renew --every auto`` (the stack service ``config.RENEWER``; a supervisor runs
exactly that command line) runs ``rotation.renew`` — every workload and serving
certificate past 2/3 of its life is rotated (nginx, OpenBao and Keycloak reload and
the new serial is served before the run ends), the client CRLs are rebuilt once a
third of their validity has passed — under the same lock as the one-shot
``zt renew`` (cron-safe: the two never interleave, and a run finds nothing to do
when the other just did it).

The interval follows the shortest lifetime in play: ``auto`` is a tenth
(``config.RENEW_INTERVAL_FRACTION``) of the shortest of the certificates on disk and
the installed CRL, bounded to [``RENEW_INTERVAL_MIN_SECONDS``,
``RENEW_INTERVAL_MAX_SECONDS``]; it is re-read every ``RENEW_TICK_SECONDS``, so a
switch of lifetimes (``zt lifetimes``) takes effect without a restart. A certificate
becomes due at 2/3 of its life and is renewed within one interval plus one run, so
with at least ``1 - 2/3 - 1/10`` (23 %) of its life left; a failed run is retried at
the next interval, so two failed runs in a row still leave about 3 % (default profile: the
10-minute cap against 24 h certificates, hours to spare).

A failed run (OpenBao sealed or down, Keycloak slow) never stops the loop and never
touches a current file (``certs.write_pair`` writes only what OpenBao issued); it is
logged and retried at the next interval. Every run is ONE JSON line in the log
(``config.RENEWER.log_file``) and its record in ``config.RENEW_STATUS`` (time,
ok, actions, error, next run) is what ``zt status`` reads (``last_run``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import sys
import time
from collections.abc import Callable
from typing import TypedDict

from scripts import audit, config
from scripts.files import read_json, write_atomic
from scripts.pki import certs, crl, rotation
from scripts.services import procs
from scripts.steps import StepFailed

AUTO = "auto"  # `--every auto`: follow the shortest lifetime in play


class RunRecord(TypedDict):
    """One run, as logged and as kept in ``config.RENEW_STATUS``."""

    at: str  # ISO 8601 UTC start of the run
    started_at: float  # the same, epoch seconds
    seconds: float  # how long it took
    ok: bool
    actions: list[str]  # what it renewed (also on failure: what succeeded first)
    error: str | None
    interval_seconds: float
    next_run: str  # ISO 8601 UTC


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lifetimes_in_play() -> list[dt.timedelta]:
    """The full lifetime of every certificate on disk and of every installed CRL."""
    found = [
        c.not_valid_after_utc - c.not_valid_before_utc
        for path in sorted(config.PKI_DIR.glob("*/*/cert.pem"))
        for c in [certs.load(path)]
    ]
    for one in crl.load():
        if one.next_update_utc is not None:
            found.append(one.next_update_utc - one.last_update_utc)
    return found


def interval_for(lifetimes: list[dt.timedelta]) -> float:
    """A tenth of the shortest lifetime, bounded; the maximum when nothing is in play."""
    if not lifetimes:
        return config.RENEW_INTERVAL_MAX_SECONDS
    wanted = min(lifetimes).total_seconds() / config.RENEW_INTERVAL_FRACTION
    return min(config.RENEW_INTERVAL_MAX_SECONDS, max(config.RENEW_INTERVAL_MIN_SECONDS, wanted))


def auto_interval() -> float:
    """``interval_for`` what is in play now; unreadable files count as nothing in play
    (the run itself reports them)."""
    try:
        return interval_for(lifetimes_in_play())
    except (OSError, ValueError):
        return config.RENEW_INTERVAL_MIN_SECONDS


def run_once(interval: float, renew: Callable[[list[str]], object] = rotation.renew) -> RunRecord:
    """One run under the rotation lock. Never raises for a failed renewal: the record
    says what failed. Progress lines of the steps are kept out of the log (it holds
    one JSON line per run)."""
    started = time.time()
    actions: list[str] = []
    error: str | None = None
    try:
        with contextlib.redirect_stdout(io.StringIO()), rotation.locked():
            renew(actions)
        audit.rotate_if_larger(actions)  # the audit file, past its size (scripts/audit.py)
    # The loop must outlive anything a run raises; the record names it.
    except StepFailed as e:
        error = str(e).splitlines()[0][:1000]
    except Exception as e:
        error = f"{type(e).__name__}: {e}"[:1000]
    return RunRecord(
        at=_iso(started),
        started_at=started,
        seconds=round(time.time() - started, 3),
        ok=error is None,
        actions=actions,
        error=error,
        interval_seconds=interval,
        next_run=_iso(started + interval),
    )


def _record(record: RunRecord) -> None:
    write_atomic(config.RENEW_STATUS, json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def run(
    every: float | None,
    runs: int | None = None,
    renew: Callable[[list[str]], object] = rotation.renew,
) -> int:
    """Run ``renew`` every ``every`` seconds (None: ``auto_interval``), forever or
    ``runs`` times (bounded, for tests). The first run starts at once."""
    done = 0
    last_start: float | None = None
    while runs is None or done < runs:
        interval = every if every is not None else auto_interval()
        now = time.monotonic()
        if last_start is None or now - last_start >= interval:
            last_start = now
            _record(run_once(interval, renew))
            done += 1
            continue
        wait = interval - (now - last_start)
        time.sleep(min(wait, config.RENEW_TICK_SECONDS) if every is None else wait)
    return 0


def last_run() -> RunRecord | None:
    """The last run's record (``at``, ``ok``, ``actions``, ``error``, ``next_run``…), or None."""
    try:
        return read_json(config.RENEW_STATUS)  # type: ignore[return-value]
    except (OSError, ValueError):
        return None


def command() -> list[str]:
    """The renewer's command line (what a supervisor or systemd unit runs, from the repo)."""
    return [sys.executable, "-m", "scripts.zt", "renew", "--every", AUTO]


def start() -> None:
    """Start the renewer unless it runs; wait for its first run to be recorded."""
    procs.start_loop(config.RENEWER, command(), config.RENEW_STATUS, "first run done", 120)
