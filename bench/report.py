"""Results of one run as JSON (every number) and Markdown (the tables people read).

Both go to ``.state/bench/results.{json,md}`` (the last run) and to
``.state/bench/history/<UTC time>.{json,md}`` (every run, for comparisons over
time). Ratios are computed here, from runs of the same invocation only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from bench import config as bench_config
from scripts.files import write_atomic

MEMORY_LABELS = {
    "nginx-bench-full": "nginx (bench, full chain :8452)",
    "nginx-bench-full-cached": "nginx (bench, decision cache :8453)",
    "nginx-bench-compare": "nginx (bench, ceiling/baseline)",
    "nginx": "nginx (shared stack :8444)",
    "verifier": "verifier (gunicorn)",
    "api": "API (gunicorn)",
    "api-bench": "API (bench baseline, gunicorn)",
    "keycloak": "Keycloak (java)",
    "vault": "OpenBao",
}


def ratios(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Scenarios 3, 4 and 5 against scenario 2, at each concurrency level of this run."""
    by_key = {(r["scenario_number"], r["concurrency"]): r for r in runs}
    out = []
    for concurrency in sorted({r["concurrency"] for r in runs}):
        base = by_key.get((2, concurrency))
        if base is None:
            continue
        row: dict[str, Any] = {"concurrency": concurrency}
        for number in (3, 4, 5):
            run = by_key.get((number, concurrency))
            if run is None:
                continue
            for metric in ("requests_per_second", "p50_ms", "p99_ms"):
                row[f"{metric}_{number}_over_2"] = _ratio(run[metric], base[metric])
            row[f"requests_per_second_{number}_over_2_by_slice"] = _by_slice(run, base)
        out.append(row)
    return out


def _by_slice(run: Mapping[str, Any], base: Mapping[str, Any]) -> list[float | None]:
    """The req/s ratio of each pair of slices that ran in the same round: the spread
    of these is how much the machine moved during the run."""
    pairs = zip(run.get("slices", []), base.get("slices", []), strict=False)
    return [_ratio(r["requests_per_second"], b["requests_per_second"]) for r, b in pairs]


# The targets: (key, what, comparison, goal).
TARGETS = (
    ("uncached_throughput", "full chain >= 0.5x baseline req/s, no decision cache (3/2)", 0.5),
    ("cached_throughput", "full chain >= 0.8x baseline req/s, decision cache on (5/2)", 0.8),
    ("added_p99_ms", "auth hop adds <= 2 ms p99 at half the full chain's max rate (3-2)", 2.0),
    ("core_ratio", "verifier core >= 0.5x openssl rsa2048 verify/s (one core)", 0.5),
)


def targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target with the figure this run measured and whether it is met.

    Throughput ratios count at their WORST concurrency level; latency compares
    the fixed-rate runs; the core ratio is the steady state (token signature
    memo warm, as for a client reusing its token).
    """
    figures: dict[str, float | None] = {
        "uncached_throughput": _worst(results["ratios"], "requests_per_second_3_over_2"),
        "cached_throughput": _worst(results["ratios"], "requests_per_second_5_over_2"),
        "added_p99_ms": _added_p99(results.get("latency_runs", []), 3),
        "core_ratio": (results.get("core") or {}).get("core_vs_openssl_ratio"),
    }
    out = []
    for key, text, goal in TARGETS:
        value = figures[key]
        if value is None:
            met = None
        elif key == "added_p99_ms":
            met = value <= goal
        else:
            met = value >= goal
        out.append({"target": key, "text": text, "goal": goal, "measured": value, "met": met})
    return out


def _worst(rows: Sequence[Mapping[str, Any]], key: str) -> float | None:
    values = [row[key] for row in rows if row.get(key) is not None]
    return min(values) if values else None


def _added_p99(runs: Sequence[Mapping[str, Any]], number: int) -> float | None:
    by_number = {r["scenario_number"]: r for r in runs}
    if 2 not in by_number or number not in by_number:
        return None
    return round(by_number[number]["p99_ms"] - by_number[2]["p99_ms"], 3)


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def markdown(results: Mapping[str, Any]) -> str:
    """The tables ``make bench`` prints."""
    tool = results["load_tool"]
    setup = results["settings"]
    lines = [
        f"# Benchmark {results['started_at']}",
        "",
        f"{results['machine']['cpus']} CPUs (load average at start "
        f"{results['machine']['loadavg_at_start'][0]:g}), {results['machine']['nginx']}, "
        f"load from {tool['name']} {tool['version']} on the same machine "
        f"(closed loop, {setup['duration_seconds']:g} s per run after "
        f"{setup['warmup_seconds']:g} s warm-up, each split into {setup.get('slices', 1)} "
        "slices run round-robin across the scenarios of a level, at most "
        f"{setup['max_requests_per_run']} requests per slice). "
        f"Total runtime {results['runtime_seconds']:.0f} s.",
        "",
        "## Load: GET /api/resource with client certificate + bearer token",
        "",
        "| # | scenario | conc | req/s | p50 ms | p90 ms | p99 ms | errors | requests "
        "| CPU us/req nginx | verifier | API | client |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = set()
    for r in sorted(results["runs"], key=lambda r: (r["scenario_number"], r["concurrency"])):
        cpu = r["cpu_us_per_request"]
        mark = ""
        if r["attempts"] > 1:
            mark += " (2nd)"
            notes.add(_RETRIED)
        if r["disturbed"]:
            mark += " (disturbed)"
            notes.add(_DISTURBED)
        lines.append(
            f"| {r['scenario_number']} | {r['scenario']}{mark} | {r['concurrency']} "
            f"| {r['requests_per_second']:.0f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['errors']} | {r['requests']} "
            f"| {_us(cpu['nginx'])} | {_us(cpu['verifier'])} | {_us(cpu['api'])} "
            f"| {_us(cpu['client'])} |"
        )
    if notes:
        lines += ["", *sorted(notes)]
    lines += [
        "",
        "## Ratios against the baseline (2), same concurrency",
        "",
        "req/s below 1 and latency above 1 are the price of the step; "
        "3/2 = per-request verifier decision, 4/2 = that plus a TLS handshake per request, "
        "5/2 = decision cache on.",
        "",
        "| conc | req/s 3/2 | req/s 4/2 | req/s 5/2 | p50 3/2 | p50 4/2 | p50 5/2 "
        "| p99 3/2 | p99 4/2 | p99 5/2 | req/s 3/2 by slice | req/s 5/2 by slice |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in results["ratios"]:
        cells = [
            _fmt(row.get(f"{metric}_{n}_over_2"))
            for metric in ("requests_per_second", "p50_ms", "p99_ms")
            for n in (3, 4, 5)
        ]
        cells += [
            " ".join(_fmt(v) for v in row.get(f"requests_per_second_{n}_over_2_by_slice", []))
            for n in (3, 5)
        ]
        lines.append(f"| {row['concurrency']} | " + " | ".join(cells) + " |")
    latency = results.get("latency_runs") or []
    if latency:
        base = next((r for r in latency if r["scenario_number"] == 2), None)
        lines += [
            "",
            f"## Latency at a fixed {latency[0]['target_rate']:.0f} req/s "
            "(half the full chain's maximum; open loop)",
            "",
            "| # | scenario | req/s | p50 ms | p90 ms | p99 ms | added p99 ms | errors |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in latency:
            added = r["p99_ms"] - base["p99_ms"] if base and r is not base else None
            lines.append(
                f"| {r['scenario_number']} | {r['scenario']} | {r['requests_per_second']:.0f} "
                f"| {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['p99_ms']:.2f} "
                f"| {_fmt(added)} | {r['errors']} |"
            )
    handshakes = results.get("handshakes")
    if handshakes:
        modes = handshakes["modes"]
        lines += [
            "",
            f"## TLS handshakes: full vs resumed ({handshakes['tls']}, openssl s_time, "
            "GET per connection, medians)",
            "",
            "The mTLS listener resumes no session (a resumed session skips the CRL); "
            "`resumable` is the same server with nginx's session cache, as it was before. "
            f"Full / resumed = **{_fmt(handshakes['full_over_resumed'])}**: the share of "
            "connections per second a client that reconnects for every request keeps.",
            "",
            "| server | s_time mode | connections/s | resumed | by round |",
            "|---|---|---:|---:|---|",
        ]
        for key, m in modes.items():
            server, mode = key.split(" ", 1)
            lines.append(
                f"| {server} | `{mode}` | {m['connections_per_second']:.0f} "
                f"| {m['resumed_share']:.0%} | {' '.join(f'{x:.0f}' for x in m['rounds'])} |"
            )
    if results.get("targets"):
        lines += ["", "## Targets", "", "| target | measured | met |", "|---|---:|---|"]
        for t in results["targets"]:
            met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
            lines.append(f"| {t['text']} | {_fmt(t['measured'])} | {met} |")
    core = results.get("core")
    if core:
        lines += [
            "",
            "## Verifier core, in-process, one core",
            "",
            f"`decide()` {core['decisions_per_second']:.0f}/s vs `openssl speed rsa2048` "
            f"verify {core['openssl_rsa2048_verify_per_second']:.0f}/s: "
            f"**ratio {core['core_vs_openssl_ratio']:.3f}** (token alg {core['token_alg']}).",
            "",
            "| layer | us/call | calls/s |",
            "|---|---:|---:|",
        ]
        for name, layer in sorted(core["layers"].items(), key=lambda i: i[1]["microseconds"]):
            lines.append(f"| {name} | {layer['microseconds']:.1f} | {layer['per_second']:.0f} |")
        if core.get("profile"):
            lines += [
                "",
                f"cProfile, {bench_config.PROFILE_CALLS} decisions, top own time:",
                "",
                "| own | cumulative | calls/decision | function |",
                "|---:|---:|---:|---|",
            ]
            for p in core["profile"]:
                lines.append(
                    f"| {p['own_time_share']:.1%} | {p['cumulative_share']:.1%} "
                    f"| {p['calls_per_decision']:g} | `{p['function']}` |"
                )
    memory = results["memory"]
    lines += [
        "",
        "## Memory (MiB; process trees: master + workers)",
        "",
        "Under load = the largest sample during the full-chain runs (3, 4 and 5). "
        "RSS counts pages shared by forked workers once per process; PSS splits them.",
        "",
        "| service | processes | RSS idle | RSS load | PSS idle | PSS load |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, idle in memory["idle"].items():
        load = memory["under_load"].get(name, idle)
        lines.append(
            f"| {MEMORY_LABELS.get(name, name)} | {len(idle['pids'])} "
            f"| {idle['rss_mib']:.0f} | {load['rss_mib']:.0f} "
            f"| {idle['pss_mib']:.0f} | {load['pss_mib']:.0f} |"
        )
    if results["parity_gaps"]:
        lines += ["", "**Warning**: bench/nginx.conf.tmpl lacks these production lines:", ""]
        lines += [f"- `{gap}`" for gap in results["parity_gaps"]]
    return "\n".join(lines) + "\n"


_RETRIED = (
    "(2nd): the first attempt was disturbed (a shared service restarted or reloaded "
    "during it) or had errors; it is kept in results.json under `discarded`."
)
_DISTURBED = (
    "(disturbed): a shared service restarted during this run too; its CPU figures are "
    "dropped (-) and its numbers measure the restart as much as the nginx."
)


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def write(results: Mapping[str, Any]) -> str:
    """Write JSON + Markdown (latest and history); return the Markdown."""
    text = markdown(results)
    body = json.dumps(results, indent=2, sort_keys=True) + "\n"
    stamp = results["started_at"].replace(":", "").replace("-", "")
    write_atomic(bench_config.RESULTS_JSON, body)
    write_atomic(bench_config.RESULTS_MD, text)
    write_atomic(bench_config.HISTORY / f"{stamp}.json", body)
    write_atomic(bench_config.HISTORY / f"{stamp}.md", text)
    return text
