"""Progress and timing for long steps: every step prints what it does and how long it took."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class StepFailed(RuntimeError):
    """A bring-up step failed; the message names the cause and the fix."""


def say(msg: str) -> None:
    print(msg, flush=True)


@contextmanager
def step(title: str) -> Iterator[None]:
    """Print ``==> title`` then ``    done in Ns`` (or ``FAILED after Ns``)."""
    say(f"==> {title}")
    t0 = time.monotonic()
    try:
        yield
    except BaseException:
        say(f"    FAILED after {time.monotonic() - t0:.1f}s")
        raise
    say(f"    done in {time.monotonic() - t0:.1f}s")


def wait_until(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    hint: str,
    interval: float = 0.5,
) -> None:
    """Poll ``check`` (never a fixed sleep) with a progress indicator.

    Raises StepFailed naming ``hint`` (usually the log file) on timeout.
    """
    t0 = time.monotonic()
    dots = 0
    while True:
        if check():
            if dots and sys.stdout.isatty():
                sys.stdout.write("\n")
            say(f"    {what}: ready after {time.monotonic() - t0:.1f}s")
            return
        elapsed = time.monotonic() - t0
        if elapsed > timeout:
            if dots and sys.stdout.isatty():
                sys.stdout.write("\n")
            raise StepFailed(f"{what} not ready after {timeout:.0f}s; see {hint}")
        if int(elapsed) // 5 > dots:
            dots += 1
            end = "\r" if sys.stdout.isatty() else "\n"
            sys.stdout.write(f"    waiting for {what}... {elapsed:.0f}s{end}")
            sys.stdout.flush()
        time.sleep(interval)
