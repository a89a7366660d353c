"""What the verifier's Prometheus metrics cost per decision, and per scrape.

Run with the stack up: ``python -m bench.metrics_cost``. Not part of ``make bench``
and never a test: it prints figures, asserts nothing.

The inputs are ``bench.core``'s (a real token, the real client certificate, the
production settings, Keycloak's keys fetched once). Each figure is CPU time of this
thread per call (``time.thread_time``: on a machine shared with other stacks, time
the core spent elsewhere is not counted), the best of several bounded rounds:

* ``observe`` alone, for an allow and for a deny (``verifier.metrics``): two
  counters, one histogram, the route label, the token-cache sync;
* the Flask adapter's ``/_authz`` (WSGI, audit line) with the metrics call and
  with it replaced by a no-op, in alternating rounds: the difference is what a
  decision pays for being counted;
* one scrape (``/metrics``: every worker's files read and rendered).

``prometheus-client`` picks its value class when first imported, so each mode runs
in a child process: ``multiprocess`` (``PROMETHEUS_MULTIPROC_DIR`` set, as under the
stack's gunicorn: values in memory-mapped files) and ``single`` (in-memory values).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from bench import config as bench_config
from bench.core import CoreInputs, build_inputs
from bench.sinkdrain import SinkDrain
from verifier import metrics as verifier_metrics
from verifier.app import create_app
from verifier.decision import Decider
from verifier.event import AuthorizerEvent
from verifier.promexport import MULTIPROC_ENV
from verifier.response import AuthorizerResponse

CALLS = 20_000
ADAPTER_CALLS = 500
ROUNDS = 8
"""The adapter's with/without rounds alternate: the shared machine's load moves from
second to second; the best of many short rounds on each side is the figure."""
MODES = ("multiprocess", "single")


def _noop(*_args: object) -> None:
    """Stands in for ``verifier.metrics.observe`` in the uncounted rounds."""


def _adapter(inputs: CoreInputs) -> Callable[[], object]:
    """The Flask adapter's ``/_authz``, production settings, the audit line to a bench file."""
    drain = SinkDrain(bench_config.BENCH_WORK / "metrics-cost-sink.sock")
    app = create_app(
        {
            **{
                k.removeprefix("ZT_VERIFIER_"): v
                for k, v in bench_config.verifier_env(
                    bench_config.BENCH_WORK / "metrics-cost-audit.log", drain.path
                ).items()
            },
            "KEY_SOURCE": inputs.keys,
            "CLOCK": lambda: inputs.now,
        }
    )
    client = app.test_client()
    return lambda drain=drain: client.get("/_authz", headers=inputs.headers).status_code


def cpu_us(fn: Callable[[], object], calls: int, rounds: int = ROUNDS) -> float:
    """The best round's CPU microseconds per call of ``fn`` (``calls`` per round)."""
    fn()  # warm: parsed certificate, issuer verdict, label children
    best = float("inf")
    for _ in range(rounds):
        start = time.thread_time()
        for _ in range(calls):
            fn()
        best = min(best, (time.thread_time() - start) / calls * 1e6)
    return best


def run_mode() -> dict[str, float]:
    """Every figure of this process's mode, in microseconds."""
    bench_config.BENCH_WORK.mkdir(parents=True, exist_ok=True)
    inputs = build_inputs()
    decider = Decider.from_settings(inputs.settings, keys=inputs.keys, revocation=inputs.revocation)
    counted = verifier_metrics.VerifierMetrics(decider, clock=lambda: inputs.now)
    event = AuthorizerEvent(inputs.event)
    allow = decider.decide(event, inputs.now)
    deny = AuthorizerResponse(decision="deny", status=401, reason="token_expired")
    figures = {
        "observe allow": cpu_us(lambda: counted.observe(event, allow, 0.001), CALLS),
        "observe deny": cpu_us(lambda: counted.observe(event, deny, 0.001), CALLS),
        "scrape (/metrics)": cpu_us(counted.exposition, 50),
    }
    call = _adapter(inputs)
    real = verifier_metrics.observe
    with_metrics = without = float("inf")
    try:
        for _ in range(ROUNDS):  # alternate: a busy second hits both sides
            verifier_metrics.observe = real
            with_metrics = min(with_metrics, cpu_us(call, ADAPTER_CALLS, rounds=1))
            verifier_metrics.observe = _noop
            without = min(without, cpu_us(call, ADAPTER_CALLS, rounds=1))
    finally:
        verifier_metrics.observe = real
    figures["/_authz with metrics"] = with_metrics
    figures["/_authz without metrics"] = without
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_cost", description=__doc__)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mode:
        print(json.dumps(run_mode()))
        return 0
    results: dict[str, dict[str, float]] = {}
    for mode in MODES:
        env = {k: v for k, v in os.environ.items() if k != MULTIPROC_ENV}
        with tempfile.TemporaryDirectory(prefix="zt-metrics-bench-") as folder:
            if mode == "multiprocess":
                env[MULTIPROC_ENV] = folder
            child = subprocess.run(
                [sys.executable, "-m", "bench.metrics_cost", "--mode", mode],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
        if child.returncode != 0:
            print(child.stdout + child.stderr, file=sys.stderr)
            return 1
        results[mode] = json.loads(child.stdout.strip().splitlines()[-1])
    names = list(results[MODES[0]])
    print(f"{'CPU µs per call (best round)':<32}" + "".join(f"{m:>14}" for m in MODES))
    for name in names:
        print(f"{name:<32}" + "".join(f"{results[m][name]:>14.1f}" for m in MODES))
    for mode in MODES:
        r = results[mode]
        added = r["/_authz with metrics"] - r["/_authz without metrics"]
        share = added / r["/_authz with metrics"]
        print(f"{mode}: metrics add {added:.1f} µs per decision ({share:.1%} of the adapter's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
