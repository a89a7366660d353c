"""The caches are objects the caller builds and passes in; no module keeps one."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import pytest

import verifier
from verifier.caches import CERT_CACHE_SIZE, ISSUER_CACHE_SIZE, DecisionCaches
from verifier.lru import BoundedLRU

VERIFIER_MODULES = sorted(
    f"verifier.{info.name}" for info in pkgutil.iter_modules(verifier.__path__)
)


def _is_memoized_function(value: object) -> bool:
    """``functools.lru_cache`` / ``functools.cache`` (a C type; ``type()`` is safe on proxies)."""
    return type(value).__name__ == "_lru_cache_wrapper"


@pytest.mark.parametrize("module", VERIFIER_MODULES)
def test_no_verifier_module_keeps_a_cache_in_a_global(module):
    for name, value in vars(importlib.import_module(module)).items():
        assert type(value) is not BoundedLRU, f"{module}.{name} is a module-level cache"
        defined_here = _is_memoized_function(value) and value.__module__ == module
        assert not defined_here, f"{module}.{name} is a module-level lru_cache"


def test_the_caches_are_sized_by_the_settings(settings):
    caches = DecisionCaches.from_settings(dataclasses.replace(settings, token_cache_size=7))
    assert caches.tokens is not None and caches.tokens.maxsize == 7
    assert (caches.certs.maxsize, caches.issuers.maxsize) == (CERT_CACHE_SIZE, ISSUER_CACHE_SIZE)


def test_each_build_is_a_new_set_of_caches(settings):
    one, two = DecisionCaches.from_settings(settings), DecisionCaches.from_settings(settings)
    assert one.tokens is not two.tokens
    assert one.certs is not two.certs
    assert one.issuers is not two.issuers
