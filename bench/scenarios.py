"""The four load scenarios: what each one adds to the one before it.

Every scenario sends the same request (``GET /api/resource`` with the
python-client certificate and a real bearer token) to a different nginx
server, so the differences between them are the differences in the server
path, not in the client's work:

1. ``ceiling``      mTLS handshake + HTTP, nginx answers 204 itself;
2. ``baseline``     + proxy to the API (gunicorn, unix socket), no auth_request;
3. ``full_chain``   + auth_request to the verifier: the production config;
4. ``full_chain_no_keepalive``  the same, but every request is a new TCP
                    connection and a full TLS handshake with the client cert;
5. ``full_chain_cached``  scenario 3 with nginx's decision cache on: after the
                    first request of a (token, cert, method, URI) the verifier
                    is not asked again until the cached allow expires.

3/2 is the cost of zero trust's per-request decision (no decision cache; the
verifier's own memo of verified token signatures is on, as in production);
4/2 adds the cost of per-request transport authentication (a client that does
not reuse connections); 5/2 is what a client reusing its token costs.
"""

from __future__ import annotations

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

    @property
    def url(self) -> str:
        # "localhost" (not 127.0.0.1) because that is the server certificate's
        # name and how every client of the stack addresses it.
        return f"https://localhost:{self.port}{bench_config.TARGET_PATH}"


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
SCENARIOS = (
    CEILING,
    BASELINE,
    FULL_CHAIN,
    FULL_CHAIN_NO_KEEPALIVE,
    FULL_CHAIN_CACHED,
)
# Compared at a fixed request rate (half the full chain's maximum): the auth hop's latency.
LATENCY_SCENARIOS = (BASELINE, FULL_CHAIN, FULL_CHAIN_CACHED)
