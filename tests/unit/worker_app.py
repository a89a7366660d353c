"""A tiny WSGI app for tests/unit/test_worker.py: ``/slow?<seconds>`` sleeps first."""

from __future__ import annotations

import os
import time


def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(float(environ.get("QUERY_STRING") or "0"))
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
