"""Long fuzz run of the verifier's pure core: ``python -m tests.fuzz.long_run`` (``make fuzz``).

``tests/unit/test_fuzz.py`` is the short run inside ``make test`` (a few hundred
examples of the same inputs and invariant, ``tests.fuzz.inputs``). This is the
bounded long run: hypothesis generates up to ``--max-inputs`` (100 000)
authorizer events within ``--seconds`` (180), in batches of fresh hypothesis
runs, against ``verifier.decision.decide`` with a throw-away PKI and signing key
built in memory (``inputs.World``).

Printed at the end: inputs run, allowed count split into (a) genuine-key
signatures bound to the presented certificate (the control and harmless
re-encodings of it), (b) anything NOT signed by the key and (c) signed but not
bound to the presented certificate (``cnf.x5t#S256``), which must both be 0; the
reason-code histogram. Exit status 1 if (b) or (c) > 0 or any decision was
``internal_error``.
"""

from __future__ import annotations

import argparse
import sys
import time

from hypothesis import HealthCheck, Phase, given, settings

from tests.fuzz.inputs import FuzzRequest, Tally, World, requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz.long_run", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--max-inputs", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--batch", type=int, default=2_000, help="examples per hypothesis run")
    args = parser.parse_args(argv)

    world = World.build()
    tally = Tally()

    def one_input(request: FuzzRequest) -> None:
        tally.record(world, request, world.decide(request))

    started = time.monotonic()
    deadline = started + args.seconds
    runs = 0
    while tally.inputs < args.max_inputs and time.monotonic() < deadline:
        batch = min(args.batch, args.max_inputs - tally.inputs)
        run = given(request=requests(world))(one_input)
        settings(
            max_examples=batch,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(run)()
        runs += 1
        rate = tally.inputs / (time.monotonic() - started)
        print(f"  run {runs}: {tally.inputs} inputs, {rate:.0f}/s", flush=True)

    elapsed = time.monotonic() - started
    allowed = tally.allowed_genuine + tally.allowed_unsigned + tally.allowed_unbound
    print(f"\nfuzz: {tally.inputs} inputs in {elapsed:.1f}s ({runs} hypothesis runs)")
    print(
        f"allowed: {allowed} (signed by the key and bound to the certificate: "
        f"{tally.allowed_genuine}; NOT signed by the key: {tally.allowed_unsigned}, must be 0; "
        f"NOT bound to the presented certificate: {tally.allowed_unbound}, must be 0)"
    )
    print("reasons:")
    for reason, n in tally.reasons.most_common():
        print(f"  {reason:32s} {n:7d}")
    for example in tally.examples:
        print(f"  ALLOWED UNSIGNED OR UNBOUND: {example}")
    if tally.reasons["internal_error"]:
        print("internal_error decisions are verifier bugs (denied, but unexplained)")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
