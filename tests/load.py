"""A bounded request loop through the gateway, for tests that change the stack under load.

Two ways to send, both one keep-alive connection pool per thread (and the client's
retry of idempotent requests on a connection nginx closed, as every client of ours
does):

* ``Load.as_workload("python-client")``: each thread runs the client library as a
  workload does (``client.api.GatewayClient`` on the identity's ``bundle.pem``):
  a rotation is picked up on the next request, and the token is fetched again,
  bound to the new certificate (RFC 8705), before it is sent over a connection
  made with it;
* ``Load.with_token(token, cert)``: one fixed token and certificate files, for
  tests that take Keycloak or the certificate's source away.

``threads`` threads send ``GET path`` for ``seconds`` seconds, ``interval`` seconds
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
from tests.tokens import gateway_client

# A sender: GET of a path (query included) through the gateway.
Send = Callable[[str], requests.Response]


class Load:
    def __init__(
        self,
        sender: Callable[[], Send],
        *,
        path: str = "/api/resource",
        seconds: float = 10.0,
        threads: int = 4,
        interval: float = 0.0,
        unique: bool = False,
    ) -> None:
        """``sender`` makes each thread's sender. ``unique``: a distinct query string
        per request, so nginx's decision cache never answers and every request
        reaches the verifier."""
        self.sender, self.path = sender, path
        self.seconds, self.interval, self.unique = seconds, interval, unique
        self._sent = itertools.count()
        self.results: Counter[str] = Counter()
        self.errors: list[str] = []
        self.latencies: list[float] = []
        self.failed_at: list[float] = []  # time.monotonic() when each failed request ended
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    @classmethod
    def as_workload(cls, workload: str, **kwargs) -> Load:
        """Each thread: the client library on ``workload``'s bundle.pem."""

        def sender() -> Send:
            client = gateway_client(workload)
            return lambda path: client.request("GET", path)

        return cls(sender, **kwargs)

    @classmethod
    def with_token(cls, token: Callable[[], str], cert: str | tuple[str, str], **kwargs) -> Load:
        """Each thread: its own session presenting ``cert`` with ``token()``."""

        def sender() -> Send:
            session = requests.Session()
            session.mount("https://", reload_safe_adapter())
            return lambda path: session.get(
                f"{config.GATEWAY_URL}{path}",
                cert=cert,
                headers={"Authorization": f"Bearer {token()}"},
                verify=str(config.SERVER_CA_BUNDLE),
                timeout=10,
            )

        return cls(sender, **kwargs)

    def _run(self) -> None:
        send = self.sender()
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline and not self._stop.is_set():
            started = time.monotonic()
            try:
                query = f"?load={next(self._sent)}" if self.unique else ""
                r = send(f"{self.path}{query}")
                outcome = str(r.status_code)
                detail = "" if r.status_code == 200 else f"{r.status_code} {r.text[:100]}"
            except Exception as e:  # every failure (a refused token too) is an outcome
                outcome, detail = "exception", repr(e)[:200]
            ended = time.monotonic()
            with self._lock:
                self.results[outcome] += 1
                self.latencies.append(ended - started)
                if detail:
                    self.errors.append(detail)
                    self.failed_at.append(ended)
            if self.interval:
                time.sleep(self.interval)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """End the run now (the threads finish the request they are sending)."""
        self._stop.set()

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
