"""The benchmark's arithmetic: vegeta's results into figures, slices into one run, ratios.

No load is generated here: the inputs are vegeta CSV rows and run records written
by hand, so each figure can be checked against a value worked out on paper.
"""

from __future__ import annotations

import pytest

from bench import load, report, runner, scenarios

MS = 1_000_000  # nanoseconds


def _csv(rows: list[tuple[int, int, int, str]]) -> str:
    """vegeta's CSV columns: timestamp ns, code, latency ns, bytes out, bytes in, error, ..."""
    return "".join(f"{t},{c},{lat},0,0,{err},,,0,GET,https://x/,\n" for t, c, lat, err in rows)


def _slice(start_s: float, latencies_ms: list[int], code: int = 200) -> load.LoadStats:
    """A slice whose requests start 10 ms apart from ``start_s``."""
    rows = [
        (int((start_s + i * 0.01) * 1e9), code, lat * MS, "") for i, lat in enumerate(latencies_ms)
    ]
    return load.summarise(_csv(rows), expected_status=200, client_cpu_seconds=0.5)


def test_summarise_counts_rates_and_nearest_rank_percentiles():
    rows = [(i * 10 * MS, 200, (i + 1) * MS, "") for i in range(100)]  # 1..100 ms
    rows.append((5 * MS, 0, 0, "no targets to attack"))  # vegeta's end marker: not a request
    rows.append((6 * MS, 503, 2 * MS, ""))  # a wrong status is an error
    stats = load.summarise(_csv(rows), expected_status=200)
    assert (stats.requests, stats.ok, stats.errors) == (101, 100, 1)
    assert stats.status_codes == {"200": 100, "503": 1}
    assert stats.error_samples == {"status 503": 1}
    # first start 0, last end 990 ms + 100 ms
    assert stats.seconds == pytest.approx(1.09)
    assert stats.requests_per_second == pytest.approx(101 / 1.09)
    assert (stats.p50_ms, stats.p99_ms, stats.max_ms) == (50.0, 99.0, 100.0)


def test_merged_slices_add_counts_and_seconds_and_rank_every_latency():
    fast = _slice(0.0, [1] * 90)  # 90 requests in 0.891 s
    slow = _slice(100.0, [10] * 10)  # 10 requests in 0.1 s, a minute later
    merged = load.merge([fast, slow])
    assert merged.requests == 100 and merged.errors == 0
    assert merged.seconds == pytest.approx(fast.seconds + slow.seconds)
    # all requests over all measured seconds, not the mean of the two rates
    assert merged.requests_per_second == pytest.approx(100 / (fast.seconds + slow.seconds))
    assert merged.requests_per_second != pytest.approx(
        (fast.requests_per_second + slow.requests_per_second) / 2
    )
    assert (merged.p50_ms, merged.p90_ms, merged.p99_ms) == (1.0, 1.0, 10.0)
    assert merged.client_cpu_seconds == pytest.approx(1.0)
    assert merged.status_codes == {"200": 100}


def test_merge_keeps_errors_and_refuses_nothing_to_merge():
    merged = load.merge([_slice(0.0, [1, 1]), _slice(9.0, [1], code=502)])
    assert (merged.requests, merged.ok, merged.errors) == (3, 2, 1)
    assert merged.error_samples == {"status 502": 1}
    with pytest.raises(ValueError):
        load.merge([])


def _part(rps_slice: load.LoadStats, verifier_cpu: float | None) -> runner._Slice:
    cpu = {"nginx": 0.1, "verifier": verifier_cpu, "api": 0.2}
    return runner._Slice(rps_slice, cpu, [] if verifier_cpu is not None else ["verifier"], 1, [])


def test_a_record_sums_its_slices_cpu_and_drops_a_component_disturbed_in_any_slice():
    clean = runner._record(scenarios.FULL_CHAIN, 8, 0.0, [_part(_slice(0, [1] * 50), 0.05)] * 2)
    assert clean["requests"] == 100
    assert clean["cpu_us_per_request"]["verifier"] == pytest.approx(0.1 / 100 * 1e6)
    assert clean["cpu_us_per_request"]["api"] == pytest.approx(0.4 / 100 * 1e6)
    assert [s["requests"] for s in clean["slices"]] == [50, 50]
    hit = runner._record(
        scenarios.FULL_CHAIN,
        8,
        0.0,
        [_part(_slice(0, [1] * 50), 0.05), _part(_slice(9, [1] * 50), None)],
    )
    assert hit["cpu_us_per_request"]["verifier"] is None  # its CPU time left with a process
    assert hit["cpu_us_per_request"]["api"] is not None
    assert hit["disturbed"] == ["verifier"]


def _run(number: int, rps: float, by_slice: list[float]) -> dict:
    return {
        "scenario_number": number,
        "concurrency": 8,
        "requests_per_second": rps,
        "p50_ms": 1.0,
        "p99_ms": 2.0,
        "slices": [{"requests_per_second": r} for r in by_slice],
    }


def test_ratios_pair_the_slices_that_ran_in_the_same_round():
    (row,) = report.ratios([_run(2, 1000, [800, 1000, 1200]), _run(3, 500, [480, 500, 540])])
    assert row["requests_per_second_3_over_2"] == 0.5
    assert row["requests_per_second_3_over_2_by_slice"] == [0.6, 0.5, 0.45]
