"""The API's Prometheus metrics: requests by status and by nginx's decision-cache status.

A WSGI middleware around the Flask app, so it times and counts every request the API
receives — those the app refuses (no valid assertion: 401) too — and answers
``GET /metrics`` itself, before the app's hooks: a scrape is neither authenticated
(it comes from nginx's loopback health listener, which sends no identity) nor written
to the request log (a scrape every few seconds would drown it, and tests read that
log to prove what reached the API).

Defence in depth: a request that carries the verifier's ``X-Auth-Assertion`` came
through the public mTLS listener (nginx always sends it there, and only there);
such a request is never answered with metrics, even if a policy rule one day
allowed ``/metrics``: it goes to the app like any other (which has no such route).

* ``zt_api_requests_total{status,decision_cache}`` — ``decision_cache`` is nginx's
  ``$upstream_cache_status`` of the auth subrequest (``X-ZT-Decision-Cache``, set by
  nginx/snippets/identity-headers.conf): ``HIT`` (the verifier was not asked),
  ``MISS``, ``EXPIRED``, ``BYPASS`` (a method never cached), ``none`` (cache off, or
  the header absent). A label only, never trusted for anything else; any other
  value is ``none``.
* ``zt_api_request_seconds`` — the API's own time per request (histogram).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import Counter, Histogram

from verifier.promexport import CONTENT_TYPE, exposition, new_registry

METRICS_PATH = "/metrics"
DECISION_CACHE_ENVIRON = "HTTP_X_ZT_DECISION_CACHE"
ASSERTION_ENVIRON = "HTTP_X_AUTH_ASSERTION"
NO_CACHE_STATUS = "none"
CACHE_STATUSES = frozenset({"HIT", "MISS", "EXPIRED", "BYPASS", "STALE", "UPDATING", "REVALIDATED"})
"""Every ``$upstream_cache_status`` nginx can write; the label takes no other value."""
REQUEST_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def cache_label(value: str | None) -> str:
    """The ``decision_cache`` label of a header value: bounded to nginx's statuses."""
    return value if value in CACHE_STATUSES else NO_CACHE_STATUS


class APIMetrics:
    """The API's metric objects, and the middleware that feeds them."""

    def __init__(self) -> None:
        self.registry = new_registry()
        self.requests = Counter(
            "zt_api_requests",
            "Requests the API received, by status and nginx's decision-cache status.",
            ("status", "decision_cache"),
            registry=self.registry,
        )
        self.seconds = Histogram(
            "zt_api_request_seconds",
            "Time the API spent on one request.",
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )

    def wrap(self, app: WSGIApp) -> WSGIApp:
        """``app`` with every request counted and ``GET /metrics`` answered."""

        def middleware(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            if self._is_scrape(environ):
                body = exposition(self.registry)
                headers = [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))]
                start_response("200 OK", headers)
                return [body]
            started = time.perf_counter()
            seen: list[str] = []

            def recording_start_response(status: str, *args: Any) -> Any:
                seen.append(status.split(" ", 1)[0])
                return start_response(status, *args)

            try:
                return app(environ, recording_start_response)
            finally:
                self.seconds.observe(time.perf_counter() - started)
                status = seen[-1] if seen else "500"
                cache = cache_label(environ.get(DECISION_CACHE_ENVIRON))
                self.requests.labels(status, cache).inc()

        return middleware

    @staticmethod
    def _is_scrape(environ: dict[str, Any]) -> bool:
        return (
            environ.get("PATH_INFO") == METRICS_PATH
            and environ.get("REQUEST_METHOD") == "GET"
            and not environ.get(ASSERTION_ENVIRON)
        )
