"""The benchmark's own facts: load tool pin, ports, durations, bounds.

Everything the stack already knows (paths, sockets, certificates, Keycloak
outputs) is read from ``scripts.config``; only what exists for measuring lives
here. Every load run is bounded twice: by time (``DURATION_SECONDS``) and by
count (``MAX_REQUESTS_PER_RUN`` targets, after which vegeta stops).
"""

from __future__ import annotations

from pathlib import Path

from scripts import config
from scripts.services import apps

# --- the load generator (Go module proxy, `go install`, pinned) --------------
VEGETA_MODULE = "github.com/tsenart/vegeta/v12"
VEGETA_VERSION = "v12.13.0"
VEGETA = config.BIN / f"vegeta-{VEGETA_VERSION}"  # versioned: a new pin installs next to it
VEGETA_LINK = config.BIN / "vegeta"  # for humans after `. .state/env.sh`

# --- the peer in the same auth_request slot (bench/peer.py), pinned the same way --
OAUTH2_PROXY_MODULE = "github.com/oauth2-proxy/oauth2-proxy/v7"
OAUTH2_PROXY_VERSION = "v7.15.6"
OAUTH2_PROXY = config.BIN / f"oauth2-proxy-{OAUTH2_PROXY_VERSION}"

# --- where a run writes (git-ignored state folder) ---------------------------
BENCH_DIR = config.STATE / "bench"
BENCH_WORK = BENCH_DIR / "work"  # vegeta targets and raw results of the last run
RESULTS_JSON = BENCH_DIR / "results.json"  # the last run; history/ keeps every run
RESULTS_MD = BENCH_DIR / "results.md"
HISTORY = BENCH_DIR / "history"
PEER_DIR = BENCH_DIR / "peer"  # oauth2-proxy's settings (0600, secrets per run), socket, log

# --- our own nginx instances (loopback; the shared stack's :8444 is not touched) --
CEILING_PORT = 8450  # mTLS + static 204
BASELINE_PORT = 8451  # mTLS -> API, no auth_request
FULL_CHAIN_PORT = 8452  # nginx/nginx.conf.tmpl rendered verbatim: mTLS -> verifier -> API
FULL_CHAIN_CACHED_PORT = 8453  # the same with nginx's decision cache on
RESUMABLE_PORT = 8454  # the ceiling with TLS session resumption on (bench/handshake.py)
PEER_PORT = 8455  # the baseline behind oauth2-proxy in the auth_request slot (bench/peer.py)
FULL_CHAIN_GRANIAN_PORT = 8457  # the full chain, verifier app on granian (bench/levers.py)
FULL_CHAIN_CACHED_TMPFS_PORT = 8458  # the decision cache's files in memory (tmpfs), a lever
# tmpfs for that cache: a folder made per run with a random name (mkdtemp), removed after.
TMPFS = Path("/dev/shm")  # noqa: S108 -- only ever a fresh mkdtemp folder inside it
HEALTH_PORT_OFFSET = 10  # a production-template instance's /healthz: its port + this (8462, 8463)
COMPARE_TEMPLATE = Path(__file__).with_name("nginx.conf.tmpl")

# --- what a run does -----------------------------------------------------------
CLIENT_IDENTITY = "python-client"
TARGET_PATH = "/api/resource"
# Scenario 7: one token, many resources of its tenant (python-client's org is acme;
# the policy's /api/tenants/{org}/** rule, the API's tenant route).
MANY_URIS_PATH = "/api/tenants/acme/resource"
DISTINCT_URIS = 10_000
CONCURRENCY = (1, 8, 32)
DURATION_SECONDS = 5.0
WARMUP_SECONDS = 1.0
# Each scenario's duration and warm-up are split into this many slices, run
# round-robin across the scenarios of a level (bench/runner.py), so a ratio's two
# sides share the machine's slow and fast moments.
SLICES = 3
MAX_SLICES = 10
MAX_REQUESTS_PER_RUN = 100_000
REQUEST_TIMEOUT_SECONDS = 5.0
LATENCY_MAX_IN_FLIGHT = 64  # open-loop runs: vegeta's cap on concurrent requests
LATENCY_CONNECTIONS = 8  # open-loop runs: the client's keep-alive pool (bench/load.py)
# A token must outlive a whole run (warm-up + measurement); Keycloak's live 300 s.
TOKEN_REFRESH_MARGIN_SECONDS = 60.0
RUN_SLACK_SECONDS = 30.0  # a vegeta process is killed this long after its duration
# Concurrent fault tests restart the shared verifier/Keycloak: a run waits for them,
# each time at most STACK_WAIT_SECONDS and in all at most TOTAL_WAIT_SECONDS.
STACK_WAIT_SECONDS = 60.0
TOTAL_WAIT_SECONDS = 120.0

# --- the core micro-benchmark ---------------------------------------------------
CORE_SECONDS = 3.0  # decide() loop in all, as much as openssl gets
CORE_ROUNDS = 5  # the time is split into rounds; the best round counts
CORE_LAYER_SECONDS = 1.0  # each other layer (PyJWT, cryptography, the adapter)
CORE_MAX_CALLS = 500_000
OPENSSL_ROUND_SECONDS = 1  # `openssl speed -seconds 1 rsa2048`, once per round
PROFILE_CALLS = 3_000
PROFILE_TOP = 10

# --- TLS handshakes: full vs resumed (openssl s_time, bench/handshake.py) --------
HANDSHAKE_ROUNDS = 3  # alternating rounds; the median counts
HANDSHAKE_SECONDS = 2  # per s_time run

MEMORY_SAMPLE_INTERVAL_SECONDS = 0.5


def verifier_env(audit_log: Path, sink_socket: Path) -> dict[str, str]:
    """The production verifier's ``ZT_VERIFIER_*`` settings for a verifier the bench runs
    itself (in-process or its own server): its audit lines go to ``audit_log`` and their
    copies to ``sink_socket`` (a ``bench.sinkdrain.SinkDrain``), never to the stack's
    second audit sink, whose copy must hold the stack's chain only (a foreign chain there
    made `zt audit verify` report thousands of differences after one `make bench`)."""
    return {
        **apps.verifier_env(),
        "ZT_VERIFIER_AUDIT_LOG": str(audit_log),
        "ZT_VERIFIER_AUDIT_SINK_SOCKET": str(sink_socket),
    }
