"""The decision cache's hit ratio, from nginx's access log (scenario 7).

nginx logs ``$upstream_cache_status`` of the auth subrequest as ``auth_cache`` on
every request line (``HIT``: the verifier was not asked; ``MISS`` / ``EXPIRED``: it
was, and its allow was stored; ``BYPASS``: not a cacheable method). The log is the
one record of a hit, so it is what the ratio is counted from.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any


def cache_statuses(log_text: str, path: str) -> dict[str, int]:
    """How many requests under ``path`` had each decision-cache status (a line that
    is not JSON, e.g. cut by a read mid-write, is skipped)."""
    counts: Counter[str] = Counter()
    for line in log_text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and str(entry.get("uri", "")).startswith(path):
            counts[str(entry.get("auth_cache") or "-")] += 1
    return dict(sorted(counts.items()))


def summary(parts: Iterable[Mapping[str, int]]) -> dict[str, Any]:
    """A run's statuses over its slices and its hit ratio (None: nothing counted)."""
    total: Counter[str] = Counter()
    for part in parts:
        total.update(part)
    counted = sum(total.values())
    if not counted:
        return {}
    return {
        "authz_cache_status": dict(sorted(total.items())),
        "authz_cache_hit_ratio": round(total["HIT"] / counted, 4),
    }
