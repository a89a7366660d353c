"""nginx reloads (SIGHUP, new workers, old ones drain) under a bounded request loop.

Expected: 0 failed requests. ``scripts.services.nginx.reload_nginx()`` re-renders and
``nginx -t``-checks the config, signals the master and returns once the old
workers are gone; requests in flight on an old worker finish there, new
connections go to the new workers.
"""

from __future__ import annotations

import time

from scripts.services import nginx
from tests.faults.conftest import load

LOAD_SECONDS = 10
RELOADS = 4


def test_nginx_reloads_under_load_fail_no_request(stack, token_for):
    token = token_for("python-client")
    with load(token, seconds=LOAD_SECONDS) as running:
        for _ in range(RELOADS):
            time.sleep(LOAD_SECONDS / (RELOADS + 1))
            nginx.reload_nginx()
    print(
        f"\n{RELOADS} nginx reloads under load: {running.total} requests, {dict(running.results)}"
    )
    assert running.total > LOAD_SECONDS * 10
    assert running.failed == 0, running.errors[:5]
