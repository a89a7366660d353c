"""One bounded, closed-loop load run with vegeta, and the numbers it produced.

``run`` starts ``vegeta attack`` with N workers that each send a request,
wait for its answer and send the next (``-rate=0 -workers=N -max-workers=N``),
so N is the concurrency and requests/s is what the server path sustains at
that concurrency. With ``rate`` set it is an open loop instead: that many
requests per second whatever the answers take (up to N in flight), which is
how latency is compared at a fixed load. The run ends at ``duration`` or when
the ``max_requests`` targets fed to it are used up, whichever comes first.

The results are decoded from vegeta's CSV encoding and summarised here (not by
``vegeta report``) so that vegeta's end-of-targets marker results are not
counted as errors and a wrong status (e.g. a 401 where 200 was expected)
counts as an error.

The targets, each with its ``Authorization: Bearer`` header, are written to
vegeta's stdin (``-lazy``) by a thread of ours, so the token is never on a
command line (``ps``) nor on disk.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import resource
import subprocess
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import config as bench_config
from scripts.steps import StepFailed

# vegeta records this (not a request) for each worker when the targets run out.
_NO_TARGETS = "no targets to attack"


@dataclass(frozen=True)
class Attack:
    """What one load run sends, to where, how hard and for how long."""

    url: str
    concurrency: int
    duration: float
    keepalive: bool
    expected_status: int
    max_requests: int
    timeout: float
    cert_file: Path
    key_file: Path
    server_ca_file: Path
    rate: float = 0.0  # requests/s (open loop); 0 = closed loop at `concurrency`
    urls: Iterable[str] = ()  # sent in this order (cycled); empty: ``url`` every time


@dataclass(frozen=True)
class LoadStats:
    """The summary of one run: throughput, latency percentiles, failures."""

    requests: int
    ok: int
    errors: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    status_codes: dict[str, int]
    error_samples: dict[str, int]
    client_cpu_seconds: float
    latencies_ns: tuple[int, ...] = field(default=(), repr=False, compare=False)
    """Every latency, ascending (for ``merge``; not in ``asdict``)."""

    def asdict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "requests_per_second": round(self.requests_per_second, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "mean_ms": round(self.mean_ms, 3),
            "status_codes": self.status_codes,
            "error_samples": self.error_samples,
            "client_cpu_seconds": round(self.client_cpu_seconds, 2),
        }


def run(vegeta: Path, attack: Attack, token: str, workdir: Path) -> LoadStats:
    """Run ``attack`` to completion and summarise it (raises if vegeta fails)."""
    workdir.mkdir(parents=True, exist_ok=True)
    results = workdir / "results.bin"
    pacing = (
        [
            f"-rate={attack.rate:g}/s",
            "-workers=4",
            # A service client's fixed keep-alive pool (requests.Session keeps 10):
            # a burst waits for a pooled connection (the wait counts in its latency)
            # instead of opening new ones, so a slow moment is not turned into a
            # storm of client-certificate handshakes on the same 2 cores.
            f"-max-connections={bench_config.LATENCY_CONNECTIONS}",
        ]
        if attack.rate > 0
        else ["-rate=0", f"-workers={attack.concurrency}"]
    )
    argv = [
        str(vegeta),
        "attack",
        "-lazy",  # targets from stdin, read as needed
        *pacing,
        f"-max-workers={attack.concurrency}",
        f"-duration={attack.duration}s",
        f"-timeout={attack.timeout}s",
        f"-keepalive={str(attack.keepalive).lower()}",
        "-http2=false",  # the gateway speaks HTTP/1.1 (no http2 on its listener)
        "-max-body=0",  # bodies are not needed, and not kept
        f"-cert={attack.cert_file}",
        f"-key={attack.key_file}",
        f"-root-certs={attack.server_ca_file}",
        f"-output={results}",
    ]
    # vegeta is our only child that exits during a run: the change in our
    # children's rusage is its CPU time (the load generator shares the 2 cores).
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with (workdir / "vegeta.stderr").open("w+") as stderr:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=stderr)
        feeder = threading.Thread(
            target=_feed,
            args=(proc, attack.urls or (attack.url,), token, attack.max_requests),
            daemon=True,
        )
        feeder.start()
        try:
            returncode = proc.wait(timeout=attack.duration + bench_config.RUN_SLACK_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise StepFailed(f"vegeta ran past {attack.duration:g} s + slack; killed") from None
        feeder.join(timeout=5)
        stderr.seek(0)
        errors = stderr.read()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if returncode != 0:
        raise StepFailed(f"vegeta attack failed (exit {returncode}): {errors[-800:]}")
    client_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    encoded = subprocess.run(
        [str(vegeta), "encode", "-to=csv", str(results)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if encoded.returncode != 0:
        raise StepFailed(f"vegeta encode failed: {encoded.stderr[-800:]}")
    return summarise(encoded.stdout, attack.expected_status, client_cpu)


_FEED_BATCH = 256  # targets per write


def targets(urls: Iterable[str], token: str, count: int) -> Iterator[bytes]:
    """``count`` vegeta targets (HTTP format) over ``urls`` in order, cycled, in batches.

    Encoded as they are written (a target carries the ~1.5 KB token): encoding
    100 000 up front took CPU and memory from the run being measured.
    """
    if isinstance(urls, tuple) and len(urls) == 1:
        target = f"GET {urls[0]}\nAuthorization: Bearer {token}\n\n".encode()
        left = count
        while left > 0:
            batch = min(left, _FEED_BATCH)
            yield target * batch
            left -= batch
        return
    header = f"\nAuthorization: Bearer {token}\n\n"
    chosen = itertools.islice(itertools.cycle(urls), count)
    while batch := list(itertools.islice(chosen, _FEED_BATCH)):
        yield "".join(f"GET {url}{header}" for url in batch).encode()


def _feed(proc: subprocess.Popen[bytes], urls: Iterable[str], token: str, count: int) -> None:
    """Write ``count`` targets to vegeta's stdin, then close it (vegeta stops at the end).

    The pipe blocks us while vegeta is busy; when vegeta stops at its duration
    the write fails with a broken pipe, which ends the feed.
    """
    stdin = proc.stdin
    assert stdin is not None  # Popen(stdin=PIPE)
    with contextlib.suppress(BrokenPipeError, OSError, ValueError):
        # a failure means vegeta has stopped reading (its duration is over)
        for batch in targets(urls, token, count):
            stdin.write(batch)
    with contextlib.suppress(BrokenPipeError, OSError, ValueError):
        stdin.close()


def summarise(csv_text: str, expected_status: int, client_cpu_seconds: float = 0.0) -> LoadStats:
    """Stats of vegeta CSV results (columns: timestamp ns, code, latency ns, ..., error)."""
    latencies: list[int] = []
    codes: Counter[str] = Counter()
    error_samples: Counter[str] = Counter()
    first_start: int | None = None
    last_end = 0
    ok = 0
    for row in csv.reader(io.StringIO(csv_text)):
        timestamp, code, latency, error = int(row[0]), row[1], int(row[2]), row[5]
        if error == _NO_TARGETS:
            continue
        latencies.append(latency)
        codes[code] += 1
        first_start = timestamp if first_start is None else min(first_start, timestamp)
        last_end = max(last_end, timestamp + latency)
        if not error and int(code) == expected_status:
            ok += 1
        else:
            error_samples[(error or f"status {code}")[:120]] += 1
    if not latencies or first_start is None:
        raise StepFailed("vegeta recorded no requests")
    return _stats(
        latencies, ok, (last_end - first_start) / 1e9, codes, error_samples, client_cpu_seconds
    )


def merge(parts: Sequence[LoadStats]) -> LoadStats:
    """One run's stats from its slices: counts and seconds add up, percentiles are
    taken over every latency, req/s is all requests over all measured seconds."""
    if not parts:
        raise ValueError("nothing to merge")
    codes: Counter[str] = Counter()
    samples: Counter[str] = Counter()
    for part in parts:
        codes.update(part.status_codes)
        samples.update(part.error_samples)
    return _stats(
        [latency for part in parts for latency in part.latencies_ns],
        sum(part.ok for part in parts),
        sum(part.seconds for part in parts),
        codes,
        samples,
        sum(part.client_cpu_seconds for part in parts),
    )


def _stats(
    latencies: list[int],
    ok: int,
    seconds: float,
    codes: Counter[str],
    error_samples: Counter[str],
    client_cpu_seconds: float,
) -> LoadStats:
    latencies.sort()
    return LoadStats(
        requests=len(latencies),
        ok=ok,
        errors=len(latencies) - ok,
        seconds=seconds,
        requests_per_second=len(latencies) / seconds if seconds > 0 else 0.0,
        p50_ms=_percentile(latencies, 50) / 1e6,
        p90_ms=_percentile(latencies, 90) / 1e6,
        p99_ms=_percentile(latencies, 99) / 1e6,
        max_ms=latencies[-1] / 1e6,
        mean_ms=sum(latencies) / len(latencies) / 1e6,
        status_codes=dict(sorted(codes.items())),
        error_samples=dict(error_samples.most_common(5)),
        client_cpu_seconds=client_cpu_seconds,
        latencies_ns=tuple(latencies),
    )


def _percentile(ordered: list[int], pct: float) -> int:
    """Nearest-rank percentile of an ascending list (the value at rank ceil(p/100 * n))."""
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]
