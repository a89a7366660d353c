"""The lockout's numbers for a test session (``zt lockout``), always put back.

Why the suites run with the lockout OFF: many tests send bad tokens with one
certificate on purpose, far past the default threshold (10 refused tokens in 60 s
lock a certificate out for 300 s). Counted on a full run (python-client's own
certificate, 401s of the token and binding checks):
``tests/integration/test_control_bytes.py`` ~250 in one sweep,
``tests/attacks/test_token_header_attacks.py`` and ``test_token_attacks.py`` dozens
within a minute, ``test_audit_completeness.py`` 300 mixed requests. With the
lockout on, every test after the tenth refusal would see ``locked_out`` instead of
the reason it checks, and python-client's good calls would be refused too. So the
session turns it off (the nginx hop still runs on every uncached decision: the whole
suite exercises it), and ``tests/attacks/test_lockout.py`` sets the default threshold
and window with a short period for its own tests, then puts the session's back.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

from scripts import cli
from scripts.services import lockout


def _apply(choice: dict[str, float]) -> None:
    if not choice:
        argv = ["lockout", "--default"]
    elif choice == {"threshold": 0.0}:
        argv = ["lockout", "--off"]
    else:
        argv = ["lockout", *(f"--{name}={value:g}" for name, value in sorted(choice.items()))]
    try:
        assert cli.main(argv) == 0, f"`zt {' '.join(argv)}` failed; see its output above"
    finally:
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # cli.main sets SIG_DFL


@contextlib.contextmanager
def lockout_numbers(**choice: float) -> Iterator[None]:
    """The lockout with ``choice`` (threshold, window, period; every count forgotten),
    then the numbers in force before (counts forgotten again)."""
    before = lockout.saved()
    _apply({name: float(value) for name, value in choice.items()})
    try:
        yield
    finally:
        _apply(before)


@contextlib.contextmanager
def lockout_off() -> Iterator[None]:
    """The lockout off for the session (see the module docstring); nothing to do when
    it is off already (another suite's session fixture turned it off)."""
    if lockout.saved().get("threshold") == 0:
        yield
        return
    with lockout_numbers(threshold=0):
        yield
