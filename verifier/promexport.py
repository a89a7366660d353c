"""Prometheus exposition shared by the verifier and the API: one process or many.

Why a module of its own: both services run under gunicorn with several worker
processes, and a scrape lands on ONE worker. ``prometheus-client``'s multiprocess
mode makes every worker write its values to memory-mapped files in one folder
(``PROMETHEUS_MULTIPROC_DIR``, one per gunicorn master: the bring-up sets it,
``verifier.gunicorn_conf`` wipes it when the master starts and drops a dead
worker's live gauges); whichever worker answers ``/metrics`` reads the whole
folder (``MultiProcessCollector``), so a scrape sums every worker. Without that
variable (unit tests, the Lambda adapter, a bare ``flask run``) the process's own
registry is the answer.

``BoundedLabel`` keeps an attacker-influenced label (a client address) from growing
a series per value: a fixed number of distinct values per process, then ``other``.

Nothing here is imported by the pure core (``verifier.decision`` and what it
imports, ``verifier.lambda_handler``): ``tests/unit/test_metrics.py`` checks it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
OTHER = "other"
"""The label value every value past a ``BoundedLabel``'s limit is counted under."""


def multiprocess_dir(environ: Mapping[str, str] = os.environ) -> str | None:
    """The shared folder of this gunicorn master's workers, or None (one process)."""
    return environ.get(MULTIPROC_ENV) or None


def new_registry() -> CollectorRegistry | None:
    """Where a service's metric objects register: None in multiprocess mode (their
    values live in the shared files, read at scrape time), else a registry of
    their own (never the global default: two apps in one test process share nothing)."""
    return None if multiprocess_dir() else CollectorRegistry(auto_describe=True)


Derive = Callable[[list[Metric]], Iterable[Metric]]
"""Families computed at scrape time from the collected ones (a JWKS age from the
last-success timestamp)."""


def exposition(own: CollectorRegistry | None, derive: Derive | None = None) -> bytes:
    """The text a scrape gets: every worker's values (multiprocess) or this process's
    (``own``), plus what ``derive`` computes from them. A fresh registry per scrape,
    so concurrent scrapes on gunicorn's threads share nothing."""
    folder = multiprocess_dir()
    base: Collector
    if folder is not None:
        base = MultiProcessCollector(None, path=folder)
    elif own is not None:
        base = own
    else:
        raise ValueError("no registry and no multiprocess folder: nothing to expose")
    registry = CollectorRegistry()
    registry.register(_Derived(base, derive))
    return generate_latest(registry)


class _Derived(Collector):
    """``base``'s families, then ``derive``'s from them, collected once."""

    def __init__(self, base: Collector, derive: Derive | None) -> None:
        self._base = base
        self._derive = derive

    def collect(self) -> Iterable[Metric]:
        families = list(self._base.collect())
        yield from families
        if self._derive is not None:
            yield from self._derive(families)


class BoundedLabel:
    """At most ``limit`` distinct values of one label per process; later ones are
    ``OTHER``. Thread-safe; the set only grows (a value seen stays itself)."""

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("limit must be positive")
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:  # the common case, no lock: a set lookup is atomic
            return value
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(value)
            return value

    def __len__(self) -> int:
        return len(self._seen)
