"""``python -m scripts.zt``: the ops tool (``scripts/cli.py``); ``make`` targets call it."""

from __future__ import annotations

import signal
import sys

from scripts.cli import main

if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head` ends quietly (CLI only)
    sys.exit(main())
