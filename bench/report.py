"""Results of one run as JSON (every number) and Markdown (the tables people read).

Both go to ``.state/bench/results.{json,md}`` (the last run) and to
``.state/bench/history/<UTC time>.{json,md}`` (every run, for comparisons over
time). Ratios are computed here, from runs of the same invocation only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bench import config as bench_config
from scripts.files import write_atomic

MEMORY_LABELS = {
    "nginx-full-granian": "nginx (bench, full chain on granian :8457)",
    "nginx-full-cached-tmpfs": "nginx (bench, decision cache on tmpfs :8458)",
    "oauth2-proxy": "oauth2-proxy (peer)",
    "verifier-granian": "verifier (granian, lever)",
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


# (scenario, against): 3-8 against the baseline; ours against the peer (6); the lever (8/3).
PAIRS = (
    (3, 2),
    (4, 2),
    (5, 2),
    (6, 2),
    (7, 2),
    (8, 2),
    (9, 2),
    (3, 6),
    (5, 6),
    (8, 6),
    (8, 3),
    (7, 9),
    (10, 7),
    (10, 9),
)


def ratios(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every pair of ``PAIRS`` both of whose runs this invocation made, per level."""
    by_key = {(r["scenario_number"], r["concurrency"]): r for r in runs}
    out = []
    for concurrency in sorted({r["concurrency"] for r in runs}):
        row: dict[str, Any] = {"concurrency": concurrency}
        for number, against in PAIRS:
            run = by_key.get((number, concurrency))
            base = by_key.get((against, concurrency))
            if run is None or base is None:
                continue
            for metric in ("requests_per_second", "p50_ms", "p99_ms"):
                row[f"{metric}_{number}_over_{against}"] = _ratio(run[metric], base[metric])
            row[f"requests_per_second_{number}_over_{against}_by_slice"] = _by_slice(run, base)
        if len(row) > 1:
            out.append(row)
    return out


def _by_slice(run: Mapping[str, Any], base: Mapping[str, Any]) -> list[float | None]:
    """The req/s ratio of each pair of slices that ran in the same round: the spread
    of these is how much the machine moved during the run."""
    pairs = zip(run.get("slices", []), base.get("slices", []), strict=False)
    return [_ratio(r["requests_per_second"], b["requests_per_second"]) for r, b in pairs]


# The targets of issue 20: (key, what, goal, direction). Throughput is judged at each
# level named and counts at the worst; latency at half the full chain's own maximum.
THROUGHPUT_LEVELS = (1, 8, 32)
SATURATION_LEVELS = (8, 32)
TARGETS = (
    (
        "uncached_vs_peer_rps",
        "full chain, no decision cache, >= 1.0x oauth2-proxy req/s at c=1, 8, 32 (3/6)",
        1.0,
        ">=",
    ),
    ("uncached_vs_peer_p99_c8", "its p99 at c=8 <= oauth2-proxy's (p99 3/6)", 1.0, "<="),
    (
        "cached_throughput",
        "decision cache on >= 0.95x baseline req/s at c=8 and 32 (5/2)",
        0.95,
        ">=",
    ),
    (
        "added_p99_cached_ms",
        "added p99 at half the full chain's max rate, decision cache on: <= 2 ms (5-2)",
        2.0,
        "<=",
    ),
    (
        "added_p99_uncached_vs_peer_ms",
        "added p99 at half the full chain's max rate, no decision cache: <= oauth2-proxy's "
        "(ms ours minus peer's)",
        0.0,
        "<=",
    ),
    (
        "cpu_vs_peer",
        "verifier CPU per uncached decision <= oauth2-proxy's per request (us, 3 vs 6)",
        1.0,
        "<=",
    ),
    ("core_ratio", "verifier core >= 0.5x openssl rsa2048 verify/s (one core)", 0.5, ">="),
)


def targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target with the figure this run measured, a line of detail, and whether it
    is met (None: not measured in this run, e.g. ``--no-peer``)."""
    rows = results["ratios"]
    runs = results["runs"]
    latency = results.get("latency_runs", [])
    measured: dict[str, tuple[float | None, str]] = {
        "uncached_vs_peer_rps": _worst_at(rows, "requests_per_second_3_over_6", THROUGHPUT_LEVELS),
        "uncached_vs_peer_p99_c8": _worst_at(rows, "p99_ms_3_over_6", (8,), worst=max),
        "cached_throughput": _worst_at(rows, "requests_per_second_5_over_2", SATURATION_LEVELS),
        "added_p99_cached_ms": _added(latency, 5),
        "added_p99_uncached_vs_peer_ms": _added_vs_peer(latency),
        "cpu_vs_peer": _cpu_vs_peer(runs),
        "core_ratio": ((results.get("core") or {}).get("core_vs_openssl_ratio"), ""),
    }
    out = []
    for key, text, goal, direction in TARGETS:
        value, detail = measured[key]
        met = None if value is None else (value >= goal if direction == ">=" else value <= goal)
        out.append(
            {
                "target": key,
                "text": text,
                "goal": goal,
                "measured": value,
                "detail": detail,
                "met": met,
            }
        )
    return out


def _worst_at(
    rows: Sequence[Mapping[str, Any]],
    key: str,
    levels: Sequence[int],
    worst: Callable[[list[float]], float] = min,
) -> tuple[float | None, str]:
    """The worst value of ``key`` over ``levels`` (those measured), with each level's."""
    found = [
        (row["concurrency"], row[key])
        for row in rows
        if row["concurrency"] in levels and row.get(key) is not None
    ]
    if not found:
        return None, ""
    return worst([v for _, v in found]), ", ".join(f"c={c} {v:.2f}" for c, v in found)


def _added_p99(runs: Sequence[Mapping[str, Any]], number: int) -> float | None:
    by_number = {r["scenario_number"]: r for r in runs}
    if 2 not in by_number or number not in by_number:
        return None
    return round(by_number[number]["p99_ms"] - by_number[2]["p99_ms"], 3)


def _added(runs: Sequence[Mapping[str, Any]], number: int) -> tuple[float | None, str]:
    value = _added_p99(runs, number)
    return value, "" if value is None else f"{value:+.2f} ms"


def _added_vs_peer(runs: Sequence[Mapping[str, Any]]) -> tuple[float | None, str]:
    ours, peer = _added_p99(runs, 3), _added_p99(runs, 6)
    if ours is None or peer is None:
        return None, ""
    return round(ours - peer, 3), f"ours {ours:+.2f} ms, oauth2-proxy {peer:+.2f} ms"


def _cpu_vs_peer(runs: Sequence[Mapping[str, Any]]) -> tuple[float | None, str]:
    """The verifier's CPU us per request in 3 over oauth2-proxy's in 6, worst level."""
    by_key = {(r["scenario_number"], r["concurrency"]): r for r in runs}
    found = []
    for (number, concurrency), run in sorted(by_key.items()):
        peer = by_key.get((6, concurrency))
        if number != 3 or peer is None:
            continue
        ours = run["cpu_us_per_request"].get("verifier")
        theirs = peer["cpu_us_per_request"].get("peer")
        if ours is not None and theirs:
            found.append((concurrency, ours, theirs))
    if not found:
        return None, ""
    detail = ", ".join(f"c={c} {a:.0f} vs {b:.0f} us" for c, a, b in found)
    return max(round(a / b, 3) for _, a, b in found), detail


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
        "| CPU us/req nginx | verifier | API | oauth2-proxy | client |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
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
            f"| {_us(cpu.get('peer'))} | {_us(cpu['client'])} |"
        )
    if notes:
        lines += ["", *sorted(notes)]
    lines += [
        "",
        "## Ratios against the baseline (2), same concurrency",
        "",
        "req/s below 1 and latency above 1 are the price of the step; "
        "3/2 = per-request verifier decision, 4/2 = that plus a TLS handshake per request, "
        "5/2 = decision cache on; 3/6 = ours (no decision cache) over oauth2-proxy in the "
        "same slot (req/s above 1, p99 below 1: ours is ahead).",
        "",
        "| conc | req/s 3/2 | req/s 4/2 | req/s 5/2 | p50 3/2 | p50 4/2 | p50 5/2 "
        "| p99 3/2 | p99 4/2 | p99 5/2 | ours / oauth2-proxy req/s (3/6) | p99 (3/6) "
        "| req/s 3/2 by slice | req/s 5/2 by slice |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in results["ratios"]:
        cells = [
            _fmt(row.get(f"{metric}_{n}_over_2"))
            for metric in ("requests_per_second", "p50_ms", "p99_ms")
            for n in (3, 4, 5)
        ]
        cells += [_fmt(row.get("requests_per_second_3_over_6")), _fmt(row.get("p99_ms_3_over_6"))]
        cells += [
            " ".join(_fmt(v) for v in row.get(f"requests_per_second_{n}_over_2_by_slice", []))
            for n in (3, 5)
        ]
        lines.append(f"| {row['concurrency']} | " + " | ".join(cells) + " |")
    lines += _peer_tables(results)
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
        lines += [
            "",
            "## Targets",
            "",
            "Interleaved ratios are what counts on this shared machine: absolute figures "
            "move with the other work on it, both sides of a ratio move together.",
            "",
            "| target | measured | figures | met |",
            "|---|---:|---|---|",
        ]
        for t in results["targets"]:
            met = {True: "MET", False: "**NOT MET**", None: "- (not measured)"}[t["met"]]
            lines.append(f"| {t['text']} | {_fmt(t['measured'])} | {t.get('detail', '')} | {met} |")
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


def _peer_tables(results: Mapping[str, Any]) -> list[str]:
    """Ours against oauth2-proxy (6), the lever (8/3), and the many-URI run (7)."""
    rows = results["ratios"]
    by_key = {(r["scenario_number"], r["concurrency"]): r for r in results["runs"]}
    lines: list[str] = []
    if any("requests_per_second_3_over_6" in row for row in rows):
        lines += [
            "",
            "## Ours against oauth2-proxy (6) in the same auth_request slot, same concurrency",
            "",
            "Above 1 (req/s) / below 1 (p99): ours is ahead. 3 = no decision cache, "
            "5 = decision cache on, 8 = 3 with the verifier on granian.",
            "",
            "| conc | req/s 6/2 | req/s 3/6 | p99 3/6 | req/s 5/6 | p99 5/6 | req/s 8/6 "
            "| p99 8/6 | req/s 3/6 by slice | CPU us/req verifier (3) | oauth2-proxy (6) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
        for row in rows:
            c = row["concurrency"]
            ours = (by_key.get((3, c)) or {}).get("cpu_us_per_request", {}).get("verifier")
            theirs = (by_key.get((6, c)) or {}).get("cpu_us_per_request", {}).get("peer")
            cells = [
                _fmt(row.get(key))
                for key in (
                    "requests_per_second_6_over_2",
                    "requests_per_second_3_over_6",
                    "p99_ms_3_over_6",
                    "requests_per_second_5_over_6",
                    "p99_ms_5_over_6",
                    "requests_per_second_8_over_6",
                    "p99_ms_8_over_6",
                )
            ]
            by_slice = row.get("requests_per_second_3_over_6_by_slice", [])
            cells += [" ".join(_fmt(v) for v in by_slice), _us(ours), _us(theirs)]
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
    if any("requests_per_second_8_over_3" in row for row in rows):
        lines += [
            "",
            "## Lever: the verifier app on granian (8) against gunicorn (3)",
            "",
            "| conc | req/s 8/3 | p50 8/3 | p99 8/3 | by slice | CPU us/req verifier (3) "
            "| verifier (8) |",
            "|---:|---:|---:|---:|---|---:|---:|",
        ]
        for row in rows:
            c = row["concurrency"]
            if "requests_per_second_8_over_3" not in row:
                continue
            gunicorn = (by_key.get((3, c)) or {}).get("cpu_us_per_request", {})
            granian = (by_key.get((8, c)) or {}).get("cpu_us_per_request", {})
            by_slice = row.get("requests_per_second_8_over_3_by_slice", [])
            lines.append(
                f"| {c} | {_fmt(row['requests_per_second_8_over_3'])} "
                f"| {_fmt(row['p50_ms_8_over_3'])} | {_fmt(row['p99_ms_8_over_3'])} "
                f"| {' '.join(_fmt(v) for v in by_slice)} | {_us(gunicorn.get('verifier'))} "
                f"| {_us(granian.get('verifier'))} |"
            )
    many = [r for r in results["runs"] if r["scenario_number"] in (7, 9, 10)]
    if many:
        setting = results["settings"].get("many_uris", {})
        lines += [
            "",
            f"## Decision cache, many URIs per token ({setting.get('distinct', '?')} "
            f"resources, {setting.get('distribution', '?')})",
            "",
            "7 = decision cache on, 9 = off, 10 = on with its files on tmpfs (lever). "
            "x/9 above 1: the cache pays on this workload. Hit ratio from nginx's "
            "access log (`auth_cache` of each measured request).",
            "",
            "| # | scenario | conc | req/s | x/2 | x/9 | p50 ms | p99 ms | hit ratio | statuses |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in sorted(many, key=lambda r: (r["concurrency"], r["scenario_number"])):
            c = r["concurrency"]
            ratio = {
                n: _ratio(r["requests_per_second"], by_key[(n, c)]["requests_per_second"])
                if (n, c) in by_key
                else None
                for n in (2, 9)
            }
            hit = r.get("authz_cache_hit_ratio")
            statuses = " ".join(f"{k} {v}" for k, v in r.get("authz_cache_status", {}).items())
            lines.append(
                f"| {r['scenario_number']} | {r['scenario']} | {c} "
                f"| {r['requests_per_second']:.0f} | {_fmt(ratio[2])} | {_fmt(ratio[9])} "
                f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
                f"| {'-' if hit is None else f'{hit:.1%}'} | {statuses} |"
            )
    return lines


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
