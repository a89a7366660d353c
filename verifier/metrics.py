"""The verifier's Prometheus metrics: every decision counted, timed and labelled.

Served as ``GET /metrics`` on the verifier's unix socket (nginx's loopback health
listener proxies ``/metrics/verifier`` to it; never the mTLS listener). Under
gunicorn the values of every worker are summed (``verifier.promexport``).

Why outside the core: ``verifier.decision`` stays one pure function that a Lambda
runtime can call, without a metrics library. The Flask adapter makes one call after
each decision (``observe``); everything else is read from objects the decision
already has (the response, the event, the policy, the caches, the key source).

Metrics (names are a contract with the alert rules; add, never rename):

* ``zt_verifier_decisions_total{decision,reason,status,route}`` — every decision,
  as in its audit line (``status`` is the audit line's: 200 for an allow, else the
  deny's 401/403/503/...). ``route`` is the ``pattern`` of the first policy rule
  covering the method and the canonical path (whether or not the decision got as
  far as the policy), ``none`` when no rule covers it: never the raw path, so the
  label has at most one value per rule.
* ``zt_verifier_denials_total{workload,source,reason}`` — every deny, by the
  certificate's CN (empty when none was proven) and the client address nginx saw.
  Both are bounded per process (``LABEL_VALUES_PER_PROCESS`` distinct values, then
  ``other``): only a client holding a certificate of ours reaches the verifier, and
  it chooses neither its CN nor (much) its address, but a bound costs nothing.
* ``zt_verifier_decision_seconds{decision}`` — the adapter's time per decision
  (event, decision, audit write), in ``DECISION_BUCKETS``.
* ``zt_verifier_jwks_keys`` — keys loaded, the lowest of the live workers
  (``livemin``: one worker without keys refuses every token it gets).
* ``zt_verifier_jwks_last_success_timestamp_seconds`` — the last successful JWKS
  fetch, the oldest of the live workers (``livemin``; 0: a worker never fetched).
* ``zt_verifier_jwks_age_seconds`` — computed at scrape time from the above: now
  minus the oldest worker's last success (``+Inf`` while a worker never fetched),
  so it keeps growing while fetches fail even if no request arrives.
* ``zt_verifier_jwks_fetch_failures_total`` — failed fetch attempts.
* ``zt_verifier_token_cache_total{result}`` — lookups in the verified-token cache
  (``hit``: signature check skipped; ``miss``); nothing when the cache is off.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Flask, Response, current_app
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from verifier.decision import Decider
from verifier.errors import VerifierError
from verifier.event import AuthorizerEvent
from verifier.jwks import JWKSKeySource
from verifier.lru import BoundedLRU
from verifier.paths import canonical_path
from verifier.policy import Policy
from verifier.promexport import CONTENT_TYPE, BoundedLabel, exposition, new_registry
from verifier.response import AuthorizerResponse

EXTENSION = "zt_verifier_metrics"
NO_ROUTE = "none"
LABEL_VALUES_PER_PROCESS = 256
"""Distinct ``workload`` and ``source`` values each worker keeps before ``other``."""
DECISION_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
"""Seconds: fine from 0.5 ms (a cached token) to 25 ms, coarser up to nginx's 3 s
timeout, so a p99 budget anywhere between 0.5 ms and 250 ms can be read from it."""
LAST_SUCCESS = "zt_verifier_jwks_last_success_timestamp_seconds"
AGE = "zt_verifier_jwks_age_seconds"
ROUTE_CACHE_SIZE = 1024

bp = Blueprint("verifier_metrics", __name__)


def route_label(policy: Policy, method: str, raw_path: str) -> str:
    """The pattern of the first rule covering ``method`` on the canonical path, else
    ``none`` (also for a path that is not canonical): bounded by the policy's size."""
    try:
        path = canonical_path(raw_path)
    except VerifierError:
        return NO_ROUTE
    for rule in policy.rules:
        if rule.match(method, path) is not None:
            return rule.pattern
    return NO_ROUTE


class VerifierMetrics:
    """The metric objects of one verifier app and what feeds them."""

    def __init__(self, decider: Decider, clock: Callable[[], float] = time.time) -> None:
        self.registry = new_registry()
        r = self.registry
        self.decisions = Counter(
            "zt_verifier_decisions",
            "Decisions of the verifier, as in the audit log.",
            ("decision", "reason", "status", "route"),
            registry=r,
        )
        self.denials = Counter(
            "zt_verifier_denials",
            "Denied requests by workload (certificate CN) and client address (bounded).",
            ("workload", "source", "reason"),
            registry=r,
        )
        self.seconds = Histogram(
            "zt_verifier_decision_seconds",
            "Time the verifier spent on one decision, audit write included.",
            ("decision",),
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self.jwks_keys = Gauge(
            "zt_verifier_jwks_keys",
            "Signing keys loaded (the lowest of the live workers).",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.jwks_last_success = Gauge(
            LAST_SUCCESS,
            "When the JWKS was last fetched successfully (the oldest of the live workers).",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.jwks_failures = Counter(
            "zt_verifier_jwks_fetch_failures", "Failed JWKS fetch attempts.", registry=r
        )
        token_cache = Counter(
            "zt_verifier_token_cache",
            "Lookups in the verifier's verified-token cache.",
            ("result",),
            registry=r,
        )
        self._token_hit = token_cache.labels("hit")
        self._token_miss = token_cache.labels("miss")
        self._timers = {d: self.seconds.labels(d) for d in ("allow", "deny")}
        # labels() validates and locks on every call (~4 µs); the children, once made,
        # are kept here: as bounded as the labels themselves.
        self._decided: dict[tuple[str, str, str, str], Any] = {}
        self._denied: dict[tuple[str, str, str], Any] = {}
        self._decider = decider
        self._clock = clock
        self._tokens: BoundedLRU | None = decider.caches.tokens
        self._seen_hits = self._seen_misses = 0
        self._lock = threading.Lock()
        self._workloads = BoundedLabel(LABEL_VALUES_PER_PROCESS)
        self._sources = BoundedLabel(LABEL_VALUES_PER_PROCESS)
        self._routes: BoundedLRU[tuple[str, str], str] = BoundedLRU(ROUTE_CACHE_SIZE)
        if isinstance(decider.keys, JWKSKeySource):
            decider.keys.subscribe(self._fetched)
        self.sync_keys()

    def observe(self, event: AuthorizerEvent, response: AuthorizerResponse, seconds: float) -> None:
        """Count one decision (after its audit line was written, or refused)."""
        decision, reason = response.decision, response.reason
        key = (decision, reason, str(response.status), self.route(event))
        counter = self._decided.get(key)
        if counter is None:
            counter = self._decided.setdefault(key, self.decisions.labels(*key))
        counter.inc()
        timer = self._timers.get(decision)
        (timer if timer is not None else self.seconds.labels(decision)).observe(seconds)
        if not response.allowed:
            denied = (
                self._workloads(response.identity.cert_cn),
                self._sources(event.source_ip),
                reason,
            )
            counter = self._denied.get(denied)
            if counter is None:
                counter = self._denied.setdefault(denied, self.denials.labels(*denied))
            counter.inc()
        self.sync_token_cache()

    def route(self, event: AuthorizerEvent) -> str:
        """``route_label`` of the event, remembered per (method, raw path)."""
        key = (event.http_method, event.path)
        label = self._routes.get(key)
        if label is None:
            label = route_label(self._decider.policy, *key)
            self._routes.put(key, label)
        return label

    def sync_token_cache(self) -> None:
        """Add the token cache's lookups since the last sync to the counters."""
        cache = self._tokens
        if cache is None:
            return
        with self._lock:
            hits, misses = cache.hits, cache.misses
            new_hits, new_misses = hits - self._seen_hits, misses - self._seen_misses
            self._seen_hits, self._seen_misses = hits, misses
        if new_hits:
            self._token_hit.inc(new_hits)
        if new_misses:
            self._token_miss.inc(new_misses)

    def sync_keys(self) -> None:
        """Key count and last success from the key source, as this worker sees them."""
        now = self._clock()
        status = self._decider.keys.status(now)
        self.jwks_keys.set(status.keys)
        if status.age_seconds is not None:
            self.jwks_last_success.set(now - status.age_seconds)

    def _fetched(self, succeeded: bool) -> None:
        """After every JWKS fetch attempt (on the refresh thread)."""
        if not succeeded:
            self.jwks_failures.inc()
        self.sync_keys()

    def exposition(self) -> bytes:
        """The scrape: this worker brought up to date, then every worker's values."""
        self.sync_keys()
        self.sync_token_cache()
        return exposition(self.registry, derive=lambda families: jwks_age(families, self._clock()))


def jwks_age(families: Iterable[Metric], now: float) -> list[Metric]:
    """``zt_verifier_jwks_age_seconds`` from the collected last-success gauge."""
    values = [
        sample.value
        for family in families
        if family.name == LAST_SUCCESS
        for sample in family.samples
    ]
    if not values:
        return []
    oldest = min(values)
    age = math.inf if oldest <= 0 else max(0.0, now - oldest)
    return [
        GaugeMetricFamily(
            AGE,
            "Seconds since the oldest live worker last fetched the JWKS successfully "
            "(+Inf while one never did).",
            value=age,
        )
    ]


def install(
    app: Flask, decider: Decider, clock: Callable[[], float] = time.time
) -> VerifierMetrics:
    """Metrics for ``app``'s decider, and its ``GET /metrics``; call before the first
    JWKS fetch so the boot fetch is counted."""
    metrics = VerifierMetrics(decider, clock)
    app.extensions[EXTENSION] = metrics
    app.register_blueprint(bp)
    return metrics


def observe(event: AuthorizerEvent, response: AuthorizerResponse, seconds: float) -> None:
    """Count one decision of the current app (the adapter's one call per decision)."""
    current_app.extensions[EXTENSION].observe(event, response, seconds)


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    """The Prometheus text exposition of every worker of this master."""
    body = current_app.extensions[EXTENSION].exposition()
    return Response(body, status=200, headers={"Content-Type": CONTENT_TYPE})
