"""A bounded request loop through the gateway, for tests that change the stack under load.

``cert`` is a (certificate, key) pair or one file holding both — the identity's
``bundle.pem``, which a rotation replaces in one rename, so a new connection can
never pair a new certificate with an old key.

``threads`` threads, each with its own keep-alive session (and the client's retry of
idempotent requests on a connection nginx closed, as every client of ours does),
send ``GET path`` as one workload for ``seconds`` seconds, ``interval`` seconds
apart; every outcome is counted by status and every latency kept. Bounded in time
(and so in count); never asserts speed — it reports figures the test prints.
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable

import requests

from client.api import reload_safe_adapter
from scripts import config


class Load:
    def __init__(
        self,
        token: Callable[[], str],
        cert: str | tuple[str, str],
        *,
        path: str = "/api/resource",
        seconds: float = 10.0,
        threads: int = 4,
        interval: float = 0.0,
        unique: bool = False,
    ) -> None:
        """``unique``: a distinct query string per request, so nginx's decision cache
        never answers and every request reaches the verifier."""
        self.token, self.cert, self.path = token, cert, path
        self.seconds, self.interval, self.unique = seconds, interval, unique
        self._sent = itertools.count()
        self.results: Counter[str] = Counter()
        self.errors: list[str] = []
        self.latencies: list[float] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        session = requests.Session()
        session.mount("https://", reload_safe_adapter())
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                query = f"?load={next(self._sent)}" if self.unique else ""
                r = session.get(
                    f"{config.GATEWAY_URL}{self.path}{query}",
                    cert=self.cert,
                    headers={"Authorization": f"Bearer {self.token()}"},
                    verify=str(config.SERVER_CA_BUNDLE),
                    timeout=10,
                )
                outcome = str(r.status_code)
                detail = "" if r.status_code == 200 else f"{r.status_code} {r.text[:100]}"
            except requests.RequestException as e:
                outcome, detail = "exception", repr(e)[:200]
            elapsed = time.monotonic() - started
            with self._lock:
                self.results[outcome] += 1
                self.latencies.append(elapsed)
                if detail:
                    self.errors.append(detail)
            if self.interval:
                time.sleep(self.interval)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for t in self._threads:
            t.join(timeout=self.seconds + 30)

    @property
    def total(self) -> int:
        return sum(self.results.values())

    @property
    def failed(self) -> int:
        return sum(n for k, n in self.results.items() if k != "200")

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile latency (0..100) in milliseconds."""
        if len(self.latencies) < 2:
            return 1000 * (self.latencies[0] if self.latencies else 0.0)
        return 1000 * statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1]

    def summary(self) -> str:
        rate = self.total / self.seconds if self.seconds else 0.0
        return (
            f"{self.total} requests (~{rate:.0f}/s), {dict(self.results)}, "
            f"p50 {self.percentile_ms(50):.1f} ms, p99 {self.percentile_ms(99):.1f} ms, "
            f"max {1000 * max(self.latencies, default=0):.1f} ms"
        )
