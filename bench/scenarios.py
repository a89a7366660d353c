"""The load scenarios: what each one adds to the one before it.

Every scenario sends the same request (``GET /api/resource`` with the
python-client certificate and a real bearer token) to a different nginx
server, so the differences between them are the differences in the server
path, not in the client's work (7 varies the URI, on purpose):

1. ``ceiling``      mTLS handshake + HTTP, nginx answers 204 itself;
2. ``baseline``     + proxy to the API (gunicorn, unix socket), no auth_request;
3. ``full_chain``   + auth_request to the verifier: the production config;
4. ``full_chain_no_keepalive``  the same, but every request is a new TCP
                    connection and a full TLS handshake with the client cert;
5. ``full_chain_cached``  scenario 3 with nginx's decision cache on: after the
                    first request of a (token, cert, method, URI) the verifier
                    is not asked again until the cached allow expires;
6. ``peer_oauth2_proxy``  the baseline behind oauth2-proxy in the same
                    auth_request slot, validating the same token (bench/peer.py);
7. ``full_chain_cached_many_uris``  scenario 5 with many distinct URIs for one
                    token (a tenant's resources, Zipf-distributed): the decision
                    cache's hit ratio on a workload that does not repeat one URI;
8. ``full_chain_granian``  scenario 3 with the same verifier app served by
                    granian (Rust HTTP server, WSGI) instead of gunicorn: a lever,
                    measured, not the production setup (bench/levers.py);
9. ``full_chain_many_uris``  scenario 7's URIs without the decision cache: 7/9 is
                    what the cache gives on that workload;
10. ``full_chain_cached_many_uris_tmpfs``  scenario 7 with the cache's files on
                    tmpfs: a miss stores a file from nginx's event loop (a lever).

3/2 is the cost of zero trust's per-request decision (no decision cache; the
verifier's own memo of verified token signatures is on, as in production);
4/2 adds the cost of per-request transport authentication (a client that does
not reuse connections); 5/2 is what a client reusing its token costs; 3/6 is
ours against the peer (above 1: faster); 8/3 is granian against gunicorn.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bench import config as bench_config


@dataclass(frozen=True)
class Scenario:
    """One server path under load and the status a correct answer carries."""

    number: int
    name: str
    title: str
    port: int
    keepalive: bool
    expected_status: int
    path: str = bench_config.TARGET_PATH
    distinct_uris: int = 0  # > 0: this many resources under ``path`` (see ``urls``)

    @property
    def url(self) -> str:
        # "localhost" (not 127.0.0.1) because that is the server certificate's
        # name and how every client of the stack addresses it.
        return f"https://localhost:{self.port}{self.path}"

    def urls(self, seed: int = 0) -> Iterable[str]:
        """The URIs a run sends, in order (one URI repeated unless ``distinct_uris``)."""
        if not self.distinct_uris:
            return (self.url,)
        return many_uris(self.url, self.distinct_uris, seed)


def many_uris(base: str, distinct: int, seed: int = 0) -> Iterator[str]:
    """URIs over ``distinct`` resources, without end, Zipf-distributed (s = 1: resource
    k is asked 1/k as often as the first), drawn as they are sent. The runner gives
    every run the next seed, so a run does not replay the previous one's sequence
    (whose allows are still cached) and a whole ``make bench`` sends the same ones.

    The resource is a query parameter (``?item=<k>``): nginx's decision cache is keyed
    by the raw request URI, query included, and the API's tenant route answers it.
    """
    rng = random.Random(seed)  # noqa: S311 -- a reproducible load pattern, not a secret
    population = range(distinct)
    cumulative = list(itertools.accumulate(1.0 / (k + 1) for k in population))
    while True:
        for k in rng.choices(population, cum_weights=cumulative, k=_DRAW):
            yield f"{base}?item={k}"


_DRAW = 1024  # URIs drawn at a time


CEILING = Scenario(1, "ceiling", "mTLS, static 204", bench_config.CEILING_PORT, True, 204)
BASELINE = Scenario(
    2, "baseline", "mTLS -> API (no auth_request)", bench_config.BASELINE_PORT, True, 200
)
FULL_CHAIN = Scenario(
    3, "full_chain", "mTLS -> verifier -> API", bench_config.FULL_CHAIN_PORT, True, 200
)
FULL_CHAIN_NO_KEEPALIVE = Scenario(
    4,
    "full_chain_no_keepalive",
    "same, keep-alive off (TLS handshake per request)",
    bench_config.FULL_CHAIN_PORT,
    False,
    200,
)
FULL_CHAIN_CACHED = Scenario(
    5,
    "full_chain_cached",
    "same as 3, nginx decision cache on",
    bench_config.FULL_CHAIN_CACHED_PORT,
    True,
    200,
)
PEER = Scenario(
    6,
    "peer_oauth2_proxy",
    f"mTLS -> oauth2-proxy {bench_config.OAUTH2_PROXY_VERSION} -> API",
    bench_config.PEER_PORT,
    True,
    200,
)
FULL_CHAIN_CACHED_MANY_URIS = Scenario(
    7,
    "full_chain_cached_many_uris",
    f"same as 5, {bench_config.DISTINCT_URIS} distinct URIs (Zipf)",
    bench_config.FULL_CHAIN_CACHED_PORT,
    True,
    200,
    path=bench_config.MANY_URIS_PATH,
    distinct_uris=bench_config.DISTINCT_URIS,
)
FULL_CHAIN_GRANIAN = Scenario(
    8,
    "full_chain_granian",
    "same as 3, verifier app on granian (lever)",
    bench_config.FULL_CHAIN_GRANIAN_PORT,
    True,
    200,
)
FULL_CHAIN_MANY_URIS = Scenario(
    9,
    "full_chain_many_uris",
    "same as 7, no decision cache",
    bench_config.FULL_CHAIN_PORT,
    True,
    200,
    path=bench_config.MANY_URIS_PATH,
    distinct_uris=bench_config.DISTINCT_URIS,
)
FULL_CHAIN_CACHED_MANY_URIS_TMPFS = Scenario(
    10,
    "full_chain_cached_many_uris_tmpfs",
    "same as 7, the cache's files on tmpfs (lever)",
    bench_config.FULL_CHAIN_CACHED_TMPFS_PORT,
    True,
    200,
    path=bench_config.MANY_URIS_PATH,
    distinct_uris=bench_config.DISTINCT_URIS,
)
SCENARIOS = (
    CEILING,
    BASELINE,
    FULL_CHAIN,
    FULL_CHAIN_NO_KEEPALIVE,
    FULL_CHAIN_CACHED,
    PEER,
    FULL_CHAIN_CACHED_MANY_URIS,
    FULL_CHAIN_MANY_URIS,
    FULL_CHAIN_CACHED_MANY_URIS_TMPFS,
    FULL_CHAIN_GRANIAN,
)
# Compared at a fixed request rate (half the full chain's maximum): the auth hop's latency.
LATENCY_SCENARIOS = (BASELINE, FULL_CHAIN, FULL_CHAIN_CACHED, PEER)


def chosen(peer: bool, levers: bool) -> tuple[tuple[Scenario, ...], tuple[Scenario, ...]]:
    """The closed-loop and fixed-rate scenarios of a run (``--no-peer``, ``--no-levers``)."""
    lever = (FULL_CHAIN_GRANIAN.number, FULL_CHAIN_CACHED_MANY_URIS_TMPFS.number)
    skip = ({PEER.number} if not peer else set()) | (set(lever) if not levers else set())
    return (
        tuple(s for s in SCENARIOS if s.number not in skip),
        tuple(s for s in LATENCY_SCENARIOS if s.number not in skip),
    )
