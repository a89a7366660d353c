"""The fault suites restore the stack in-process with ``scripts.cli.main(["up"])``.

That call must not change process-wide state the test process relies on.
``scripts/zt.py`` sets ``SIGPIPE`` to ``SIG_DFL`` inside ``main()`` (meant for
``python -m scripts.zt status | head``); in a pytest process that means the next
write to a socket whose peer has gone (a test server answering a client that
timed out, a request to a restarting nginx) kills pytest with exit 141 and no
report. Expected: after ``main()`` returns, SIGPIPE is still Python's default,
ignored. (The suites' autouse fixture works around it meanwhile.)
"""

from __future__ import annotations

import signal

from scripts import cli


def test_scripts_zt_main_leaves_sigpipe_ignored_in_the_calling_process(stack):
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # Python's default
    try:
        assert cli.main(["up"]) == 0
        after = signal.getsignal(signal.SIGPIPE)
    finally:
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    assert after == signal.SIG_IGN, "scripts.cli.main() set SIGPIPE to SIG_DFL process-wide"
