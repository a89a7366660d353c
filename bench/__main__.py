"""``python -m bench`` (``make bench``): the cost of zero trust against its own baseline.

One invocation measures everything it compares, on this machine, now:

1. installs the pinned load generator (vegeta) and the peer (oauth2-proxy) into the
   tool cache if missing;
2. starts the benchmark's own nginx instances on 127.0.0.1:8450-8457
   (``bench.servers``; the shared stack's nginx is never touched), oauth2-proxy
   (``bench.peer``) and a second verifier on granian (``bench.levers``);
3. runs every scenario (``bench.scenarios``) at each concurrency level
   (``bench.runner``: concurrency-major so the runs compared in a ratio are
   seconds apart; CPU and memory of every process tree around each run; a run
   the shared stack's restarts disturbed is repeated once), then baseline,
   full chain and cached full chain at one fixed rate (half the full chain's
   maximum) to compare latency;
4. stops its nginx instances, then times the verifier core alone
   (``bench.core``) against ``openssl speed rsa2048``;
5. writes JSON + Markdown under ``.state/bench/`` (with the targets,
   each met or not, with its figure) and prints the Markdown.

Needs the stack up (``make up``). Speed is measured here only, never asserted
in tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from typing import Any

from bench import config as bench_config
from bench import core, install, levers, report, runner, scenarios, servers, stack
from bench.tokens import token_source
from scripts.steps import StepFailed, say, step


def _version(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return (proc.stdout + proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else "?"


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text}"
        ) from None
    if not levels or any(level < 1 or level > 256 for level in levels):
        raise argparse.ArgumentTypeError("each concurrency level must be 1..256")
    return levels


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 30:
        raise argparse.ArgumentTypeError("durations are bounded to 0..30 s per run")
    return value


def _slices(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= bench_config.MAX_SLICES:
        raise argparse.ArgumentTypeError(f"slices are bounded to 1..{bench_config.MAX_SLICES}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="The cost of zero trust against its own baseline (bench/README.md).",
    )
    parser.add_argument(
        "--concurrency",
        type=_levels,
        default=bench_config.CONCURRENCY,
        help="comma-separated closed-loop concurrency levels (default %(default)s)",
    )
    parser.add_argument(
        "--duration",
        type=_seconds,
        default=bench_config.DURATION_SECONDS,
        help="seconds measured per scenario and level (default %(default)s, max 30)",
    )
    parser.add_argument(
        "--warmup",
        type=_seconds,
        default=bench_config.WARMUP_SECONDS,
        help="unmeasured seconds before each run (default %(default)s)",
    )
    parser.add_argument(
        "--slices",
        type=_slices,
        default=bench_config.SLICES,
        help="slices each run is split into, run round-robin across the scenarios "
        "(default %(default)s, 1 = one block per scenario)",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile of decide()")
    parser.add_argument(
        "--no-peer",
        action="store_true",
        help="skip scenario 6, oauth2-proxy in the auth_request slot (and its go install)",
    )
    parser.add_argument(
        "--no-levers",
        action="store_true",
        help="skip scenario 8, the verifier app served by granian",
    )
    args = parser.parse_args(argv)

    started = time.monotonic()
    loadavg = [round(x, 2) for x in os.getloadavg()]  # others' work on this shared machine
    started_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        with step(f"load generator: vegeta {bench_config.VEGETA_VERSION} (go install, cached)"):
            vegeta = install.install_vegeta()
        peer_binary = None
        if not args.no_peer:
            with step(
                f"peer: oauth2-proxy {bench_config.OAUTH2_PROXY_VERSION} (go install, cached)"
            ):
                peer_binary = install.install_oauth2_proxy()
        budget = stack.WaitBudget()
        with step("stack and token"):
            stack.shared_pids()  # fails at once, naming what is down, if the stack is not up
            tokens = token_source()
            budget.wait(
                "shared services running and Keycloak issuing tokens",
                lambda: stack.services_ready(tokens),
                "`make status`",
            )
            shared = stack.shared_pids()
            say(f"    running: {', '.join(f'{n}={p}' for n, p in shared.items())}")
        closed, _ = scenarios.chosen(peer=not args.no_peer, levers=not args.no_levers)
        total = len(args.concurrency) * len(closed)
        with step(
            f"load: {total} runs x ({args.warmup:g} s warm-up + {args.duration:g} s) "
            f"in {args.slices} interleaved slices, "
            f"concurrency {','.join(map(str, args.concurrency))}"
        ):
            loaded = runner.run_all(
                vegeta,
                tokens,
                args.concurrency,
                args.duration,
                args.warmup,
                budget,
                args.slices,
                peer_binary=peer_binary,
                levers=not args.no_levers,
            )
        with step("verifier core vs openssl speed rsa2048"):
            core_result = core.run_core(budget, profile=not args.no_profile)
    except StepFailed as e:
        say(f"bench failed: {e}")
        return 1
    results: dict[str, Any] = {
        "started_at": started_at,
        "runtime_seconds": round(time.monotonic() - started, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_at_start": loadavg,
            "kernel": platform.release(),
            "python": sys.version.split()[0],
            "nginx": _version(["nginx", "-v"]),
            "openssl": _version(["openssl", "version"]),
        },
        "peer": None
        if args.no_peer
        else {
            "name": "oauth2-proxy",
            "version": bench_config.OAUTH2_PROXY_VERSION,
            "module": bench_config.OAUTH2_PROXY_MODULE,
            "binary": str(bench_config.OAUTH2_PROXY),
        },
        "load_tool": {
            "name": "vegeta",
            "version": bench_config.VEGETA_VERSION,
            "module": bench_config.VEGETA_MODULE,
            "binary": str(bench_config.VEGETA),
        },
        "settings": {
            "concurrency": list(args.concurrency),
            "duration_seconds": args.duration,
            "warmup_seconds": args.warmup,
            "slices": args.slices,
            "max_requests_per_run": bench_config.MAX_REQUESTS_PER_RUN,
            "path": bench_config.TARGET_PATH,
            "client_identity": bench_config.CLIENT_IDENTITY,
            "many_uris": {
                "path": bench_config.MANY_URIS_PATH,
                "distinct": bench_config.DISTINCT_URIS,
                "distribution": "Zipf s=1",
            },
            "levers": None
            if args.no_levers
            else {"granian_argv": levers.granian_argv(levers.GRANIAN_SOCKET)},
        },
        "parity_gaps": servers.parity_gaps(),
        "runs": loaded.runs,
        "ratios": report.ratios(loaded.runs),
        "latency_runs": loaded.latency_runs,
        "handshakes": loaded.handshakes,
        "core": core_result,
        "memory": loaded.memory(),
    }
    results["targets"] = report.targets(results)
    text = report.write(results)
    say("")
    say(text)
    say(f"written: {bench_config.RESULTS_JSON}, {bench_config.RESULTS_MD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
