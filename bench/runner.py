"""Every scenario at every concurrency level, on a stack other people are also using.

The shared verifier and API are restarted, reloaded and broken on purpose by
concurrent fault tests (stopped, audit log made unwritable, ...). A run during
such a moment measures the fault, not the gateway, so each run is guarded:

* before it: the shared services must be running and one request through the
  scenario must get its expected status, else we wait (bounded) until it does;
* around it: the process trees of our nginx, the verifier and the API are
  snapshotted; if any process appeared or vanished (restart, HUP reload), the
  run is *disturbed* and its CPU figures are dropped (a vanished process takes
  its CPU time with it);
* a disturbed run, or one with errors, is run ONCE more; both attempts are
  kept in the JSON (``attempts``, ``discarded``), the table shows the last
  one, marked if it needed the second attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import config as bench_config
from bench import load, scenarios, servers, usage
from bench.stack import WaitBudget, running_pids, wait_for_stack
from client.token import TokenSource
from scripts import config
from scripts.steps import say

MAX_ATTEMPTS = 2


def _attack(
    scenario: scenarios.Scenario, concurrency: int, duration: float, rate: float = 0.0
) -> load.Attack:
    cert, key = config.client_cert_paths(bench_config.CLIENT_IDENTITY)
    return load.Attack(
        rate=rate,
        url=scenario.url,
        concurrency=concurrency,
        duration=duration,
        keepalive=scenario.keepalive,
        expected_status=scenario.expected_status,
        max_requests=bench_config.MAX_REQUESTS_PER_RUN,
        timeout=bench_config.REQUEST_TIMEOUT_SECONDS,
        cert_file=cert,
        key_file=key,
        server_ca_file=config.SERVER_CA_BUNDLE,
    )


@dataclass
class LoadResults:
    """What the load phase produced: one record per run, and memory samples."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    latency_runs: list[dict[str, Any]] = field(default_factory=list)
    idle: dict[str, usage.TreeUsage] = field(default_factory=dict)
    loaded: dict[str, usage.TreeUsage] = field(default_factory=dict)

    def keep_peaks(self, peaks: dict[str, usage.TreeUsage]) -> None:
        """Fold one run's memory peaks into the under-load maxima."""
        for name, peak in peaks.items():
            if name not in self.loaded or peak.rss_kib > self.loaded[name].rss_kib:
                self.loaded[name] = peak

    def memory(self) -> dict[str, Any]:
        return {
            "idle": {name: u.asdict() for name, u in self.idle.items()},
            "under_load": {name: u.asdict() for name, u in self.loaded.items()},
        }


def run_all(
    vegeta: Path,
    tokens: TokenSource,
    levels: tuple[int, ...],
    duration: float,
    warmup: float,
    budget: WaitBudget,
) -> LoadResults:
    """Start our nginx instances, run every scenario at every level, stop them."""
    results = LoadResults()
    with servers.running() as bench_pids:
        for scenario in scenarios.SCENARIOS:
            wait_for_stack(scenario, tokens, budget)
        results.idle = usage.measure(_memory_roots(bench_pids))
        for concurrency in levels:  # concurrency-major: a ratio's runs are seconds apart
            for scenario in scenarios.SCENARIOS:
                level = (concurrency, duration, warmup, 0.0)  # closed loop
                record, peaks = _guarded_run(vegeta, tokens, scenario, level, bench_pids, budget)
                if scenario.number in (3, 4, 5) and not record["disturbed"]:
                    results.keep_peaks(peaks)
                results.runs.append(record)
                marks = f"  (attempt {record['attempts']})" if record["attempts"] > 1 else ""
                say(
                    f"    {scenario.number} {scenario.name:24} c={concurrency:<3} "
                    f"{record['requests_per_second']:8.0f} req/s  p50 {record['p50_ms']:7.2f} ms"
                    f"  p99 {record['p99_ms']:7.2f} ms  errors {record['errors']}{marks}"
                )
        rate = half_of_full_chain_maximum(results.runs)
        say(f"    latency at a fixed {rate:.0f} req/s (half the full chain's maximum):")
        for scenario in scenarios.LATENCY_SCENARIOS:
            level = (bench_config.LATENCY_MAX_IN_FLIGHT, duration, warmup, rate)
            record, _ = _guarded_run(vegeta, tokens, scenario, level, bench_pids, budget)
            results.latency_runs.append(record)
            say(
                f"    {scenario.number} {scenario.name:24} {record['requests_per_second']:8.0f} "
                f"req/s  p50 {record['p50_ms']:7.2f} ms  p99 {record['p99_ms']:7.2f} ms  "
                f"errors {record['errors']}"
            )
    return results


def half_of_full_chain_maximum(runs: list[dict[str, Any]]) -> float:
    """Half the best closed-loop req/s of scenario 3 (no decision cache), at least 1."""
    best = max((r["requests_per_second"] for r in runs if r["scenario_number"] == 3), default=2.0)
    return max(1.0, round(best / 2))


def _memory_roots(bench_pids: dict[str, int]) -> dict[str, int]:
    """Our nginx instances and whichever shared services run right now."""
    return {
        "nginx-bench-full": bench_pids["full"],
        "nginx-bench-full-cached": bench_pids["full-cached"],
        "nginx-bench-compare": bench_pids["compare"],
        **running_pids(),
    }


def _guarded_run(
    vegeta: Path,
    tokens: TokenSource,
    scenario: scenarios.Scenario,
    level: tuple[int, float, float, float],
    bench_pids: dict[str, int],
    budget: WaitBudget,
) -> tuple[dict[str, Any], dict[str, usage.TreeUsage]]:
    """One measured run (concurrency, duration, warm-up, rate), repeated once if disturbed
    or failing. Rate 0 is a closed loop at that concurrency; above 0 an open loop with at
    most that many requests in flight.

    Returns the run's record and its memory peaks (the caller keeps those of
    undisturbed full-chain runs as "under load").
    """
    concurrency, duration, warmup, rate = level
    discarded: list[dict[str, Any]] = []
    workdir = bench_config.BENCH_WORK
    for attempt in range(1, MAX_ATTEMPTS + 1):
        wait_for_stack(scenario, tokens, budget)
        if warmup > 0:
            load.run(vegeta, _attack(scenario, concurrency, warmup, rate), tokens.get(), workdir)
        shared = running_pids()
        cpu_roots = {  # -1: stopped right now (an empty tree counts as disturbed)
            "nginx-compare": bench_pids["compare"],
            "nginx-full": bench_pids["full"],
            "nginx-full-cached": bench_pids["full-cached"],
            "verifier": shared.get("verifier", -1),
            "api": shared.get("api", -1),
        }
        token = tokens.get()
        before = usage.cpu_snapshot(cpu_roots)
        with usage.PeakSampler(
            _memory_roots(bench_pids), bench_config.MEMORY_SAMPLE_INTERVAL_SECONDS
        ) as sampler:
            stats = load.run(vegeta, _attack(scenario, concurrency, duration, rate), token, workdir)
        after = usage.cpu_snapshot(cpu_roots)
        disturbed = sorted(
            name
            for name in cpu_roots
            if not before[name].pids or before[name].pids != after[name].pids
        )
        record = _record(scenario, concurrency, stats, before, after, disturbed)
        record["target_rate"] = rate
        record["attempts"] = attempt
        if (disturbed or stats.errors) and attempt < MAX_ATTEMPTS:
            why = f"disturbed ({', '.join(disturbed)} restarted)" if disturbed else "errors"
            say(
                f"    {scenario.name} c={concurrency}: {stats.errors} errors, {why}; "
                "running it once more"
            )
            discarded.append(record)
            continue
        break
    record["discarded"] = discarded
    return record, sampler.peaks


def _record(
    scenario: scenarios.Scenario,
    concurrency: int,
    stats: load.LoadStats,
    before: dict[str, usage.TreeCpu],
    after: dict[str, usage.TreeCpu],
    disturbed: list[str],
) -> dict[str, Any]:
    """One run's row: its stats plus CPU microseconds per request by component."""
    per_request = 1e6 / max(stats.requests, 1)

    def cpu(*names: str) -> float | None:
        if any(name in disturbed for name in names):
            return None  # a process exited during the run: its CPU time is gone
        spent = sum(after[n].cpu_seconds - before[n].cpu_seconds for n in names)
        return round(spent * per_request, 1)

    return {
        "scenario": scenario.name,
        "scenario_number": scenario.number,
        "title": scenario.title,
        "url": scenario.url,
        "keepalive": scenario.keepalive,
        "concurrency": concurrency,
        **stats.asdict(),
        "disturbed": disturbed,
        "cpu_us_per_request": {
            "nginx": cpu("nginx-compare", "nginx-full", "nginx-full-cached"),
            "verifier": cpu("verifier"),
            "api": cpu("api"),
            "client": round(stats.client_cpu_seconds * per_request, 1),
        },
    }
