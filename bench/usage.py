"""Memory and CPU of process trees, read from /proc.

A service is its recorded pid plus every descendant (gunicorn master + workers,
nginx master + workers, kc.sh's java). Two memory figures per tree:

* RSS, summed: what the issue asks for; it counts pages shared between a
  forked master and its workers once per process, so it overstates forks;
* PSS, summed (``/proc/<pid>/smaps_rollup``): shared pages split between the
  processes that map them, so the sum is the tree's real share of RAM.

CPU is utime + stime of the live tree (clock ticks), so the difference across
a load run, divided by the requests served, is CPU time per request.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class TreeUsage:
    """One sample of one process tree."""

    pids: tuple[int, ...]
    rss_kib: int
    pss_kib: int
    cpu_seconds: float

    def asdict(self) -> dict[str, object]:
        return {
            "pids": list(self.pids),
            "rss_mib": round(self.rss_kib / 1024, 1),
            "pss_mib": round(self.pss_kib / 1024, 1),
            "cpu_seconds": round(self.cpu_seconds, 2),
        }


def _parents() -> dict[int, int]:
    """pid -> parent pid for every process on the machine."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def tree(root: int, parents: Mapping[int, int]) -> tuple[int, ...]:
    """``root`` and all its descendants (empty when ``root`` is gone)."""
    if root not in parents:
        return ()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return tuple(sorted(found))


def _field_kib(path: Path, name: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def measure(roots: Mapping[str, int]) -> dict[str, TreeUsage]:
    """Usage of each named tree right now."""
    parents = _parents()
    usage = {}
    for name, root in roots.items():
        pids = tree(root, parents)
        usage[name] = TreeUsage(
            pids=pids,
            rss_kib=sum(_field_kib(Path(f"/proc/{p}/status"), "VmRSS:") for p in pids),
            pss_kib=sum(_field_kib(Path(f"/proc/{p}/smaps_rollup"), "Pss:") for p in pids),
            cpu_seconds=sum(_cpu_seconds(p) for p in pids),
        )
    return usage


@dataclass(frozen=True)
class TreeCpu:
    """Which processes a tree had and the CPU time they had used, at one moment."""

    pids: tuple[int, ...]
    cpu_seconds: float


def cpu_snapshot(roots: Mapping[str, int]) -> dict[str, TreeCpu]:
    """CPU time of each named tree so far (cheaper than ``measure``).

    Compare the ``pids`` of two snapshots before using the difference: a
    process that exited (a restarted or reloaded service) takes its CPU time
    with it, and the difference would be meaningless.
    """
    parents = _parents()
    snapshot = {}
    for name, root in roots.items():
        pids = tuple(p for p in tree(root, parents) if not _is_nginx_cache_helper(p))
        snapshot[name] = TreeCpu(pids, sum(_cpu_seconds(p) for p in pids))
    return snapshot


# nginx forks these for a proxy_cache_path (the decision cache): the loader starts a
# minute after nginx and exits once the cache is indexed. Neither serves a request,
# so one exiting is not a restart of the service being measured.
_NGINX_CACHE_HELPERS = (b"nginx: cache loader process", b"nginx: cache manager process")


def _is_nginx_cache_helper(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return cmdline.rstrip(b"\0").startswith(_NGINX_CACHE_HELPERS)


class PeakSampler:
    """Samples memory in a background thread while a load runs; keeps each tree's peak.

    Use as a context manager around one run; ``peaks`` holds the largest RSS
    (and the PSS of that same sample) seen per tree.
    """

    def __init__(self, roots: Mapping[str, int], interval: float) -> None:
        self._roots = dict(roots)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)
        self.peaks: dict[str, TreeUsage] = {}

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            for name, usage in measure(self._roots).items():
                peak = self.peaks.get(name)
                if peak is None or usage.rss_kib > peak.rss_kib:
                    self.peaks[name] = usage
