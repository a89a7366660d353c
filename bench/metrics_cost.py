"""What the verifier's Prometheus metrics cost per decision, and per scrape.

Run with the stack up: ``python -m bench.metrics_cost``. Not part of ``make bench``
and never a test: it prints figures, asserts nothing.

The inputs are ``bench.core``'s (a real token, the real client certificate, the
production settings, Keycloak's keys fetched once). Each figure is the best of
``bench_config.CORE_ROUNDS`` bounded loops (``bench.core.measure``):

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
from collections.abc import Callable

from bench import config as bench_config
from bench.core import CoreInputs, Rate, build_inputs, measure
from scripts.services import apps
from verifier import metrics as verifier_metrics
from verifier.app import create_app
from verifier.decision import Decider
from verifier.event import AuthorizerEvent
from verifier.promexport import MULTIPROC_ENV
from verifier.response import AuthorizerResponse

SECONDS = 3.0
MAX_CALLS = 200_000
MODES = ("multiprocess", "single")
AB_ROUNDS = 8
"""Alternating with/without rounds of the adapter: the shared machine's load moves
from second to second; the best of many short rounds on each side is the figure."""


def _noop(*_args: object) -> None:
    """Stands in for ``verifier.metrics.observe`` in the uncounted rounds."""


def _adapter(inputs: CoreInputs) -> Callable[[], object]:
    """The Flask adapter's ``/_authz``, production settings, the audit line to a bench file."""
    app = create_app(
        {
            **{k.removeprefix("ZT_VERIFIER_"): v for k, v in apps.verifier_env().items()},
            "AUDIT_LOG": str(bench_config.BENCH_WORK / "metrics-cost-audit.log"),
            "KEY_SOURCE": inputs.keys,
            "CLOCK": lambda: inputs.now,
        }
    )
    client = app.test_client()
    return lambda: client.get("/_authz", headers=inputs.headers).status_code


def _faster(best: Rate | None, rate: Rate) -> Rate:
    return rate if best is None or rate.microseconds < best.microseconds else best


def run_mode() -> dict[str, float]:
    """Every figure of this process's mode, in microseconds."""
    bench_config.BENCH_WORK.mkdir(parents=True, exist_ok=True)
    inputs = build_inputs()
    decider = Decider.from_settings(inputs.settings, keys=inputs.keys, revocation=inputs.revocation)
    counted = verifier_metrics.VerifierMetrics(decider, clock=lambda: inputs.now)
    event = AuthorizerEvent(inputs.event)
    allow = decider.decide(event, inputs.now)
    deny = AuthorizerResponse(decision="deny", status=401, reason="token_expired")
    out = {
        "observe allow": measure(lambda: counted.observe(event, allow, 0.001), SECONDS, MAX_CALLS),
        "observe deny": measure(lambda: counted.observe(event, deny, 0.001), SECONDS, MAX_CALLS),
        "scrape (/metrics)": measure(counted.exposition, SECONDS, 2_000),
    }
    call = _adapter(inputs)
    real = verifier_metrics.observe
    with_metrics: Rate | None = None
    without: Rate | None = None
    try:
        for _ in range(AB_ROUNDS):  # alternate: a busy second hits both sides
            verifier_metrics.observe = real
            with_metrics = _faster(with_metrics, measure(call, SECONDS / 4, MAX_CALLS))
            verifier_metrics.observe = _noop
            without = _faster(without, measure(call, SECONDS / 4, MAX_CALLS))
    finally:
        verifier_metrics.observe = real
    assert with_metrics is not None and without is not None
    figures = {name: rate.microseconds for name, rate in out.items()}
    figures["/_authz with metrics"] = with_metrics.microseconds
    figures["/_authz without metrics"] = without.microseconds
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
    print(f"{'µs per call (best of rounds)':<32}" + "".join(f"{m:>14}" for m in MODES))
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
