"""The cost model of docs/benchmarks.md: what 10 000 req/s needs, from measured CPU.

``python -m bench.costs`` (after ``make bench``; needs the stack up) reads the last
run's CPU per request (``.state/bench/results.json``), measures Keycloak's CPU per
``client_credentials`` token (a bounded number of fresh token requests, python-client's
certificate, Keycloak's process tree from ``/proc``), and prints the model:

* verifier cores = rate x verifier CPU per request (uncached 3, on granian 8, and with
  the decision cache at scenario 7's measured hit ratio: only misses reach it);
* Keycloak vCPUs = token requests/s x CPU per token, where a client process reuses
  its token until ``refresh margin`` before its expiry (client/token.py: 300 s tokens,
  30 s margin: one token per 270 s per client process), so tokens/s depends on the
  number of clients, not on the request rate;
* OpenBao issuance rate = client processes / (certificate lifetime x 2/3), the
  renewer's point of renewal.

Figures measured on a shared 2-vCPU machine include contention: an upper bound.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from typing import Any

from bench import config as bench_config
from bench.stack import shared_pids
from bench.tokens import token_source
from bench.usage import cpu_snapshot

RATE = 10_000  # requests/s the model is for
TOKEN_LIFETIME_SECONDS = 300  # Keycloak's access-token lifespan (terraform/identity)
CLIENT_REFRESH_MARGIN_SECONDS = 30  # client/token.py's default
CERT_LIFETIME_SECONDS = 24 * 3600  # client_cert_ttl_seconds default
RENEW_AT = 2 / 3  # the renewer renews past 2/3 of a lifetime
MAX_TOKENS = 200


def token_cpu_us(count: int) -> dict[str, float]:
    """Keycloak's CPU (us) and wall time (ms) per fresh client_credentials token."""
    tokens = token_source()
    keycloak = {"keycloak": shared_pids()["keycloak"]}
    tokens.get()  # warm: TLS session, Keycloak's caches
    before = cpu_snapshot(keycloak)["keycloak"].cpu_seconds
    started = time.monotonic()
    for _ in range(count):
        tokens.invalidate()
        tokens.get()
    wall = time.monotonic() - started
    after = cpu_snapshot(keycloak)["keycloak"].cpu_seconds
    return {
        "tokens": count,
        "keycloak_cpu_us_per_token": round((after - before) / count * 1e6, 1),
        "wall_ms_per_token": round(wall / count * 1e3, 2),
    }


def _cpu(results: Mapping[str, Any], number: int, component: str) -> float | None:
    """The median over levels of a scenario's CPU us/req for ``component``."""
    values = sorted(
        r["cpu_us_per_request"][component]
        for r in results["runs"]
        if r["scenario_number"] == number and r["cpu_us_per_request"].get(component) is not None
    )
    return values[len(values) // 2] if values else None


def model(results: Mapping[str, Any], token: Mapping[str, float], clients: int) -> list[str]:
    """The cost model as Markdown lines."""
    hit_ratios = [
        r["authz_cache_hit_ratio"]
        for r in results["runs"]
        if r["scenario_number"] == 7 and r.get("authz_cache_hit_ratio") is not None
    ]
    hit = sum(hit_ratios) / len(hit_ratios) if hit_ratios else 0.0
    rows = []
    for label, number, component, share in (
        ("verifier, gunicorn, no decision cache (3)", 3, "verifier", 1.0),
        ("verifier, granian, no decision cache (8)", 8, "verifier", 1.0),
        (f"verifier, gunicorn, decision cache at {hit:.0%} hits (7)", 3, "verifier", 1 - hit),
        ("oauth2-proxy in the same slot (6)", 6, "peer", 1.0),
        ("nginx, full chain (3)", 3, "nginx", 1.0),
        ("API behind the full chain (3)", 3, "api", 1.0),
    ):
        us = _cpu(results, number, component)
        if us is not None:
            rows.append(f"| {label} | {us:.0f} | {RATE * us * share / 1e6:.1f} |")
    tokens_per_second = clients / (TOKEN_LIFETIME_SECONDS - CLIENT_REFRESH_MARGIN_SECONDS)
    keycloak_vcpu = tokens_per_second * token["keycloak_cpu_us_per_token"] / 1e6
    certs_per_hour = clients / (CERT_LIFETIME_SECONDS * RENEW_AT) * 3600
    return [
        f"# Cost model for {RATE} req/s ({results['started_at']} run, {clients} client processes)",
        "",
        "| what | CPU us per request | cores at 10 000 req/s |",
        "|---|---:|---:|",
        *rows,
        "",
        f"Keycloak: {token['keycloak_cpu_us_per_token']:.0f} us CPU per client_credentials "
        f"token ({token['tokens']:.0f} fresh tokens, {token['wall_ms_per_token']:.1f} ms "
        f"each); {clients} clients reusing a token for "
        f"{TOKEN_LIFETIME_SECONDS - CLIENT_REFRESH_MARGIN_SECONDS} s ask "
        f"{tokens_per_second:.2f} tokens/s: {keycloak_vcpu:.3f} vCPU, whatever the request "
        f"rate (one token per {RATE / tokens_per_second:,.0f} requests).",
        "",
        f"OpenBao: {clients} client certificates renewed at 2/3 of 24 h: "
        f"{certs_per_hour:.1f} issuances per hour.",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.costs", description=__doc__)
    parser.add_argument("--clients", type=int, default=100, help="client processes (100)")
    parser.add_argument("--tokens", type=int, default=50, help=f"fresh tokens, max {MAX_TOKENS}")
    args = parser.parse_args(argv)
    results = json.loads(bench_config.RESULTS_JSON.read_text())
    token = token_cpu_us(max(1, min(args.tokens, MAX_TOKENS)))
    print("\n".join(model(results, token, max(1, args.clients))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
