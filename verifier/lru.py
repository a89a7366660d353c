"""A small, bounded, thread-safe LRU map: what every verifier cache is made of.

Why not ``functools.lru_cache``: that cache is a module global hidden behind a
function, while ours are objects built next to the key source and passed to
the code that uses them (``verifier.caches``); the key (a digest, a PEM text)
is chosen by the caller, and the size stays bounded no matter how many
distinct certificates a caller sends.

Each cache counts its lookups (``hits``, ``misses``: plain integers, no metrics
library here); ``verifier.metrics`` turns them into Prometheus counters.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedLRU(Generic[K, V]):
    """At most ``maxsize`` entries; the least recently used one is evicted first."""

    def __init__(self, maxsize: int) -> None:
        if maxsize <= 0:
            raise ValueError("maxsize must be positive")
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        """Lookups that found an entry (only ever grows)."""
        self.misses = 0
        """Lookups that found none (only ever grows)."""

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
