"""Every scenario at every concurrency level, on a stack other people are also using.

Interleaved slices: at each level, every scenario's measured time is split into
``SLICES`` slices run round-robin (ceiling, baseline, full chain, ... then again),
and a scenario's figures are those of its slices together (``load.merge``). A
ratio compares scenarios that ran through the same minutes of this shared,
noisy machine, not one block each that a slow moment may hit on one side only.

The shared verifier and API are restarted, reloaded and broken on purpose by
concurrent fault tests (stopped, audit log made unwritable, ...). A run during
such a moment measures the fault, not the gateway, so each run is guarded:

* before it: the shared services must be running and one request through the
  scenario must get its expected status, else we wait (bounded) until it does;
* around it (each slice): the process trees of our nginx, the verifier and the API are
  snapshotted; if any process appeared or vanished (restart, HUP reload), the
  run is *disturbed* and its CPU figures are dropped (a vanished process takes
  its CPU time with it);
* a disturbed slice, or one with errors, is run ONCE more; both attempts are
  kept in the JSON (``attempts``, ``discarded``), the run counts the last one,
  and the table marks a run that needed a second attempt.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import config as bench_config
from bench import handshake, hits, load, scenarios, servers, usage
from bench.stack import WaitBudget, running_pids, wait_for_stack
from client.token import TokenSource
from scripts import config
from scripts.steps import say

MAX_ATTEMPTS = 2


_SEEDS = itertools.count(1)  # 7, 9, 10: each run's own URI sequence (scenarios.many_uris)


def _attack(
    scenario: scenarios.Scenario, concurrency: int, duration: float, rate: float = 0.0
) -> load.Attack:
    cert, key = config.client_cert_paths(bench_config.CLIENT_IDENTITY)
    return load.Attack(
        urls=scenario.urls(next(_SEEDS)) if scenario.distinct_uris else (),
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
    handshakes: dict[str, Any] = field(default_factory=dict)

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
    slices: int = bench_config.SLICES,
    peer_binary: Path | None = None,
    levers: bool = True,
) -> LoadResults:
    """Start our nginx instances (and oauth2-proxy from ``peer_binary``, the granian
    verifier if ``levers``), run every scenario at every level, stop them."""
    results = LoadResults()
    closed, fixed_rate = scenarios.chosen(peer=peer_binary is not None, levers=levers)
    instances = tuple(i for i in servers.INSTANCES if levers or i not in servers.LEVER_INSTANCES)
    with servers.running(instances, peer_binary) as bench_pids:
        for scenario in closed:
            wait_for_stack(scenario, tokens, budget)
        results.idle = usage.measure(_memory_roots(bench_pids))
        guard = _Guard(vegeta, tokens, bench_pids, budget, results)
        for concurrency in levels:  # concurrency-major: a ratio's runs are seconds apart
            level = (concurrency, duration, warmup, 0.0)  # closed loop
            for record in _interleaved(guard, closed, level, slices):
                results.runs.append(record)
                _say_run(record, f"c={record['concurrency']:<3}")
        rate = half_of_full_chain_maximum(results.runs)
        say(f"    latency at a fixed {rate:.0f} req/s (half the full chain's maximum):")
        level = (bench_config.LATENCY_MAX_IN_FLIGHT, duration, warmup, rate)
        for record in _interleaved(guard, fixed_rate, level, slices):
            results.latency_runs.append(record)
            _say_run(record, "")
        say("    TLS handshakes, full vs resumed (openssl s_time, TLS 1.3):")
        results.handshakes = handshake.run()
    return results


def _say_run(record: dict[str, Any], level: str) -> None:
    marks = f"  (attempt {record['attempts']})" if record["attempts"] > 1 else ""
    by_slice = "/".join(f"{s['requests_per_second']:.0f}" for s in record["slices"])
    hits = record.get("authz_cache_hit_ratio")
    hit_text = f"  cache hits {hits:.0%}" if hits is not None else ""
    say(
        f"    {record['scenario_number']} {record['scenario']:24} {level}"
        f"{record['requests_per_second']:8.0f} req/s  p50 {record['p50_ms']:7.2f} ms"
        f"  p99 {record['p99_ms']:7.2f} ms  errors {record['errors']}  slices {by_slice}"
        f"{hit_text}{marks}"
    )


def half_of_full_chain_maximum(runs: list[dict[str, Any]]) -> float:
    """Half the best closed-loop req/s of scenario 3 (no decision cache), at least 1."""
    best = max((r["requests_per_second"] for r in runs if r["scenario_number"] == 3), default=2.0)
    return max(1.0, round(best / 2))


# Optional processes of ours (bench/servers.py `running`), by the name they have there.
_OPTIONAL = {
    "nginx-full-granian": "full-granian",
    "nginx-full-cached-tmpfs": "full-cached-tmpfs",
    "oauth2-proxy": "oauth2-proxy",
    "verifier-granian": "verifier-granian",
}


def _memory_roots(bench_pids: dict[str, int]) -> dict[str, int]:
    """Our nginx instances and whichever shared services run right now."""
    return {
        "nginx-bench-full": bench_pids["full"],
        "nginx-bench-full-cached": bench_pids["full-cached"],
        "nginx-bench-compare": bench_pids["compare"],
        "api-bench": bench_pids["api"],
        **{name: bench_pids[key] for name, key in _OPTIONAL.items() if key in bench_pids},
        **running_pids(),
    }


@dataclass
class _Guard:
    """What every guarded slice needs, and where it keeps the memory peaks."""

    vegeta: Path
    tokens: TokenSource
    bench_pids: dict[str, int]
    budget: WaitBudget
    results: LoadResults


@dataclass
class _Slice:
    """One measured slice of one scenario: its stats and the CPU each component spent."""

    stats: load.LoadStats
    cpu_seconds: dict[str, float | None]  # None: a process of it came or went meanwhile
    disturbed: list[str]
    attempts: int
    discarded: list[dict[str, Any]]
    cache_status: dict[str, int] = field(default_factory=dict)  # 7 and 10: nginx's log


# CPU is reported by component; a component is the sum of these process trees.
_COMPONENTS = {
    "nginx": (
        "nginx-compare",
        "nginx-full",
        "nginx-full-cached",
        "nginx-full-granian",
        "nginx-full-cached-tmpfs",
    ),
    "verifier": ("verifier", "verifier-granian"),  # the stack's (gunicorn), or scenario 8's
    "api": ("api", "api-bench"),  # the baseline's own API (bench/servers.py), or the stack's
    "peer": ("oauth2-proxy",),  # scenario 6's auth hop
}


def _interleaved(
    guard: _Guard,
    chosen: tuple[scenarios.Scenario, ...],
    level: tuple[int, float, float, float],
    slices: int,
) -> list[dict[str, Any]]:
    """``chosen`` at one level, ``slices`` round-robin slices each; a record per scenario.

    ``level`` is (concurrency, duration, warm-up, rate): the duration and the warm-up
    are split evenly over the slices, so slicing costs no extra time.
    """
    concurrency, duration, warmup, rate = level
    part = (concurrency, duration / slices, warmup / slices, rate)
    done: dict[int, list[_Slice]] = {scenario.number: [] for scenario in chosen}
    for _ in range(slices):
        for scenario in chosen:
            measured = _guarded_slice(guard, scenario, part)
            done[scenario.number].append(measured)
    return [_record(scenario, concurrency, rate, done[scenario.number]) for scenario in chosen]


def _guarded_slice(
    guard: _Guard, scenario: scenarios.Scenario, level: tuple[int, float, float, float]
) -> _Slice:
    """One measured slice (concurrency, duration, warm-up, rate), repeated once if
    disturbed or failing. Rate 0 is a closed loop at that concurrency; above 0 an
    open loop with at most that many requests in flight.
    """
    concurrency, duration, warmup, rate = level
    discarded: list[dict[str, Any]] = []
    workdir = bench_config.BENCH_WORK
    for attempt in range(1, MAX_ATTEMPTS + 1):
        wait_for_stack(scenario, guard.tokens, guard.budget)
        if warmup > 0:
            load.run(
                guard.vegeta,
                _attack(scenario, concurrency, warmup, rate),
                guard.tokens.get(),
                workdir,
            )
        shared = running_pids()
        cpu_roots = {  # -1: stopped right now (an empty tree counts as disturbed)
            "nginx-compare": guard.bench_pids["compare"],
            "nginx-full": guard.bench_pids["full"],
            "nginx-full-cached": guard.bench_pids["full-cached"],
            "verifier": shared.get("verifier", -1),
            "api": shared.get("api", -1),
            "api-bench": guard.bench_pids["api"],
            **{n: guard.bench_pids[k] for n, k in _OPTIONAL.items() if k in guard.bench_pids},
        }
        token = guard.tokens.get()
        log_from = _log_size(scenario)
        before = usage.cpu_snapshot(cpu_roots)
        with usage.PeakSampler(
            _memory_roots(guard.bench_pids), bench_config.MEMORY_SAMPLE_INTERVAL_SECONDS
        ) as sampler:
            stats = load.run(
                guard.vegeta, _attack(scenario, concurrency, duration, rate), token, workdir
            )
        after = usage.cpu_snapshot(cpu_roots)
        disturbed = sorted(
            name
            for name in cpu_roots
            if not before[name].pids or before[name].pids != after[name].pids
        )
        cpu_seconds = {
            component: None
            if any(name in disturbed for name in names) or not any(n in after for n in names)
            else sum(after[n].cpu_seconds - before[n].cpu_seconds for n in names if n in after)
            for component, names in _COMPONENTS.items()
        }
        cache_status = _cache_status(scenario, log_from)
        if (disturbed or stats.errors) and attempt < MAX_ATTEMPTS:
            why = f"disturbed ({', '.join(disturbed)} restarted)" if disturbed else "errors"
            say(
                f"    {scenario.name} c={concurrency}: {stats.errors} errors, {why}; "
                "running this slice once more"
            )
            discarded.append({**stats.asdict(), "disturbed": disturbed})
            continue
        # Memory under load: only the attempt that counts, closed loop, full chain.
        if scenario.number in (3, 4, 5) and rate == 0 and not disturbed:
            guard.results.keep_peaks(sampler.peaks)
        return _Slice(stats, cpu_seconds, disturbed, attempt, discarded, cache_status)
    raise AssertionError("unreachable: the last attempt always returns")


def _access_log(scenario: scenarios.Scenario) -> Path | None:
    """The access log whose decision-cache statuses a scenario reports (7 and 10)."""
    cached = {i.ports[0]: i for i in servers.INSTANCES if i.authz_cache}
    if not scenario.distinct_uris or scenario.port not in cached:
        return None
    return cached[scenario.port].logs / "nginx-access.log"


def _log_size(scenario: scenarios.Scenario) -> int:
    log = _access_log(scenario)
    return log.stat().st_size if log is not None and log.exists() else 0


def _cache_status(scenario: scenarios.Scenario, offset: int) -> dict[str, int]:
    """nginx's decision-cache status (HIT, MISS, EXPIRED ...) of the requests logged
    since ``offset`` (the measured slice) under the scenario's path."""
    log = _access_log(scenario)
    if log is None or not log.exists():
        return {}
    with log.open("rb") as fh:
        fh.seek(offset)
        return hits.cache_statuses(fh.read().decode(errors="replace"), scenario.path)


def _record(
    scenario: scenarios.Scenario, concurrency: int, rate: float, slices: list[_Slice]
) -> dict[str, Any]:
    """One run's row: its slices' stats together, plus CPU microseconds per request."""
    stats = load.merge([part.stats for part in slices])
    per_request = 1e6 / max(stats.requests, 1)

    def cpu(component: str) -> float | None:
        spent = [part.cpu_seconds.get(component) for part in slices]
        if None in spent:
            return None  # a process exited during a slice: its CPU time is gone
        return round(sum(seconds or 0.0 for seconds in spent) * per_request, 1)

    return {
        "scenario": scenario.name,
        "scenario_number": scenario.number,
        "title": scenario.title,
        "url": scenario.url,
        "keepalive": scenario.keepalive,
        "concurrency": concurrency,
        "target_rate": rate,
        **stats.asdict(),
        "disturbed": sorted({name for part in slices for name in part.disturbed}),
        "attempts": max(part.attempts for part in slices),
        "discarded": [run for part in slices for run in part.discarded],
        "slices": [
            {
                "requests": part.stats.requests,
                "requests_per_second": round(part.stats.requests_per_second, 1),
                "p99_ms": round(part.stats.p99_ms, 3),
                "attempts": part.attempts,
            }
            for part in slices
        ],
        **hits.summary([part.cache_status for part in slices]),
        "cpu_us_per_request": {
            **{component: cpu(component) for component in _COMPONENTS},
            "client": round(stats.client_cpu_seconds * per_request, 1),
        },
    }
