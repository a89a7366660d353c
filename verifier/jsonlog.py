"""gunicorn's logs as JSON lines, for machines (issue 18, item 5).

Why a logger class: gunicorn writes its error log (boot, worker exits, timeouts)
and its access log through ``gunicorn.glogging.Logger``; replacing the
formatters there turns both into one JSON object per line without touching the
applications. ``--logger-class verifier.jsonlog.JsonLogger`` (the verifier's and
the API's gunicorn, ``scripts/services/apps.py``).

* Error log, and our own modules' warnings (``verifier.*``, ``api``: they reach
  the root logger, which gets the same handler at WARNING, the level Python's
  last-resort handler printed before): ``{"time", "level", "logger", "message",
  "pid"}`` plus ``"exception"`` when there is one.
* Access log: ``{"time", "type":"access", "method", "path", "status", "bytes",
  "duration_ms", "request_id", "traceparent", "pid"}``. ``path`` is the raw
  request target as sent (the verifier's is ``/_authz``: the decided URI is in the
  audit line, joined by ``request_id``); every value is JSON-escaped, so no
  client byte can forge a field or a line.

What stays plain text: anything a process writes to stderr outside logging (a
crash's traceback printed by the interpreter itself).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from gunicorn.glogging import Logger

MAX_FIELD_CHARS = 512


def _time(created: float) -> str:
    return datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="milliseconds")


def _cut(value: str) -> str:
    return value if len(value) <= MAX_FIELD_CHARS else value[:MAX_FIELD_CHARS] + "..."


class JsonFormatter(logging.Formatter):
    """One JSON object per record; an access record's fields come in ``record.args``."""

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.args, dict) and record.args.get("type") == "access":
            body: dict[str, Any] = {"time": _time(record.created), **record.args}
        else:
            body = {
                "time": _time(record.created),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
                "pid": record.process,
            }
            if record.exc_info:
                body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, separators=(",", ":"), ensure_ascii=True)


class JsonLogger(Logger):
    """gunicorn's logger with JSON formatters on every handler it installs."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = JsonFormatter()
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)
        root = logging.getLogger()
        for handler in list(root.handlers):
            if getattr(handler, "_zt_json", False):
                root.removeHandler(handler)  # a config reload runs setup again
        ours = logging.StreamHandler(sys.stderr)
        ours.setLevel(logging.WARNING)
        ours.setFormatter(formatter)
        ours._zt_json = True  # type: ignore[attr-defined]
        root.addHandler(ours)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        headers = dict((name.lower(), value) for name, value in req.headers)
        status = getattr(resp, "status_code", None) or str(resp.status).split(None, 1)[0]
        fields = {
            "type": "access",
            "method": _cut(req.method or ""),
            "path": _cut(environ.get("RAW_URI") or req.uri or ""),
            "status": int(status) if str(status).isdigit() else str(status),
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "request_id": _cut(headers.get("x-request-id", "")),
            "traceparent": _cut(headers.get("traceparent", "")),
            "pid": os.getpid(),
        }
        try:
            self.access_log.info("access", fields)
        except Exception:  # a log line must never fail a request
            self.error_log.exception("access log failed at %s", time.time())
