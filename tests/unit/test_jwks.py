"""The key source: cache by kid, one refetch per cooldown, keep last good keys up to
the hard maximum staleness, fetch in the background, one fetch at a time.

Only ``verifier.jwks.fetch_jwks`` is patched (the one network seam); the clock
is the ``now`` passed to ``get_key``. The fetch itself, against a real local
endpoint, is in test_jwks_fetch.py; a trickling endpoint under concurrent
decisions in test_jwks_background.py.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from jwt import PyJWK

from verifier import jwks
from verifier.errors import JwksStale, JwksUnavailable, TokenKeyUnknown
from verifier.jwks import JWKSKeySource, StaticKeySource, parse_jwks

URL = "https://keycloak.test/realms/zerotrust/protocol/openid-connect/certs"


WAIT = 5.0  # generous: how long a test waits for a background fetch to finish


class FakeFetch:
    """Answers fetches from a script of documents (or exceptions) and counts them.

    ``hold``: while it is clear, every fetch hangs (a fetch in flight) until it is set.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, str | None, float]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.started = threading.Event()
        monkeypatch.setattr(jwks, "fetch_jwks", self)

    def __call__(self, url: str, ca_bundle: str | None, timeout: float) -> Any:
        self.calls.append((url, ca_bundle, timeout))
        self.started.set()
        self.hold.wait(WAIT)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def one_key(signing_key) -> dict[str, Any]:
    return {"keys": [signing_key.jwk]}


@pytest.fixture
def two_keys(signing_key, other_signing_key) -> dict[str, Any]:
    return {"keys": [signing_key.jwk, other_signing_key.jwk]}


def source(**kwargs: float) -> JWKSKeySource:
    timings = {"timeout": 2.0, "cooldown": 30.0, "max_age": 300.0, "max_staleness": 900.0}
    return JWKSKeySource(URL, "/ca/server.pem", **{**timings, **kwargs})


def loaded(keys: JWKSKeySource, now: float) -> JWKSKeySource:
    """``keys`` after one completed fetch started at ``now``."""
    keys.refresh_if_stale(now, wait=WAIT)
    assert keys.key_count > 0
    return keys


def test_first_lookup_fetches_once_with_the_ca_bundle_and_timeout(monkeypatch, one_key):
    fetch = FakeFetch(monkeypatch, one_key)
    keys = source()
    assert isinstance(keys.get_key("test-key-1", now=0), PyJWK)
    assert keys.get_key("test-key-1", now=1).key_id == "test-key-1"
    assert fetch.calls == [(URL, "/ca/server.pem", 2.0)]
    assert keys.key_count == 1


def test_an_unknown_kid_after_the_cooldown_triggers_one_refetch(monkeypatch, one_key, two_keys):
    fetch = FakeFetch(monkeypatch, one_key, two_keys)
    keys = source()
    keys.get_key("test-key-1", now=0)
    assert keys.get_key("rotated-key-2", now=31).key_id == "rotated-key-2"
    assert len(fetch.calls) == 2


def test_a_second_unknown_kid_within_the_cooldown_does_not_fetch(monkeypatch, one_key):
    fetch = FakeFetch(monkeypatch, one_key)
    keys = source()
    keys.get_key("test-key-1", now=0)
    with pytest.raises(TokenKeyUnknown):
        keys.get_key("unknown-a", now=31)  # refetch: still unknown
    with pytest.raises(TokenKeyUnknown):
        keys.get_key("unknown-b", now=40)  # within cooldown of that refetch
    with pytest.raises(TokenKeyUnknown):
        keys.get_key("unknown-c", now=60)
    assert len(fetch.calls) == 2
    with pytest.raises(TokenKeyUnknown):
        keys.get_key("unknown-d", now=61)
    assert len(fetch.calls) == 3


def test_an_unknown_kid_right_after_the_first_fetch_is_refused_without_fetching(
    monkeypatch, one_key
):
    fetch = FakeFetch(monkeypatch, one_key)
    keys = source()
    keys.get_key("test-key-1", now=0)
    with pytest.raises(TokenKeyUnknown):
        keys.get_key("attacker-random-kid", now=5)
    assert len(fetch.calls) == 1


def test_a_failed_fetch_keeps_the_last_good_keys(monkeypatch, one_key):
    fetch = FakeFetch(monkeypatch, one_key, JwksUnavailable("keycloak down"))
    keys = source()
    keys.get_key("test-key-1", now=0)
    # keys are due after max_age: a refresh is attempted, fails, old key stays
    assert keys.get_key("test-key-1", now=400).key_id == "test-key-1"
    assert keys.wait_for_refresh(WAIT)
    assert keys.last_error == "keycloak down"
    assert keys.get_key("test-key-1", now=401).key_id == "test-key-1"
    with pytest.raises(TokenKeyUnknown):
        keys.get_key("rotated-key-2", now=500)
    assert len(fetch.calls) == 3


def test_due_keys_are_refreshed_in_the_background_and_a_key_removed_from_jwks_is_dropped(
    monkeypatch, one_key, other_signing_key
):
    fetch = FakeFetch(monkeypatch, one_key, {"keys": [other_signing_key.jwk]})
    keys = source()
    keys.get_key("test-key-1", now=0)
    # Due (max_age 300): this request is answered from the cache, the refresh runs behind it.
    assert keys.get_key("test-key-1", now=301).key_id == "test-key-1"
    assert keys.wait_for_refresh(WAIT)
    with pytest.raises(TokenKeyUnknown):
        keys.get_key("test-key-1", now=302)
    assert len(fetch.calls) == 2


def test_never_fetched_is_jwks_unavailable_and_retries_wait_for_the_cooldown(monkeypatch, one_key):
    fetch = FakeFetch(monkeypatch, JwksUnavailable("refused"), one_key)
    keys = source()
    with pytest.raises(JwksUnavailable):
        keys.get_key("test-key-1", now=0)
    with pytest.raises(JwksUnavailable):
        keys.get_key("test-key-1", now=10)
    assert len(fetch.calls) == 1
    assert keys.get_key("test-key-1", now=30).key_id == "test-key-1"
    assert len(fetch.calls) == 2


def test_refresh_if_stale_prefetches_once_within_the_cooldown(monkeypatch, one_key):
    fetch = FakeFetch(monkeypatch, one_key)
    keys = source()
    keys.refresh_if_stale(now=0, wait=WAIT)
    keys.refresh_if_stale(now=100, wait=WAIT)
    assert keys.key_count == 1
    assert len(fetch.calls) == 1


# --- background, single flight, bounded waits ------------------------------------------


def test_a_known_kid_never_waits_for_a_fetch_in_flight(monkeypatch, one_key):
    fetch = FakeFetch(monkeypatch, one_key)
    keys = loaded(source(), now=0)
    fetch.hold.clear()  # from now on every fetch hangs until released
    try:
        started = time.monotonic()
        for i in range(200):  # due (age >= max_age): each one may try to start a refresh
            assert keys.get_key("test-key-1", now=301 + i / 1000).key_id == "test-key-1"
        elapsed = time.monotonic() - started
        assert fetch.started.wait(WAIT)
        assert keys.status(now=302).refreshing, "the fetch must still hang"
        print(f"200 known-kid lookups during a hanging fetch: {elapsed * 1000:.1f} ms")
        assert len(fetch.calls) == 2  # single flight: one refresh for all 200
    finally:
        fetch.hold.set()
    assert keys.wait_for_refresh(WAIT)


def test_an_unknown_kid_waits_at_most_the_bound_for_the_fetch_in_flight(monkeypatch, one_key):
    fetch = FakeFetch(monkeypatch, one_key)
    keys = loaded(source(unknown_kid_wait=0.3), now=0)
    fetch.hold.clear()
    try:
        started = time.monotonic()
        with pytest.raises(TokenKeyUnknown):
            keys.get_key("rotated-key-2", now=31)  # starts the refetch, which hangs
        elapsed = time.monotonic() - started
        print(f"unknown kid refused after {elapsed:.2f}s (bound 0.3s) while the fetch hangs")
        assert 0.3 <= elapsed < 0.3 + 2.0
        assert keys.status(now=31).refreshing
    finally:
        fetch.hold.set()
    assert keys.wait_for_refresh(WAIT)


def test_an_unknown_kid_gets_the_key_a_quick_fetch_in_flight_brings(monkeypatch, one_key, two_keys):
    FakeFetch(monkeypatch, one_key, two_keys)
    keys = loaded(source(unknown_kid_wait=2.0), now=0)
    assert keys.get_key("rotated-key-2", now=31).key_id == "rotated-key-2"


def test_many_unknown_kids_at_once_start_one_fetch(monkeypatch, one_key):
    fetch = FakeFetch(monkeypatch, one_key)
    keys = loaded(source(unknown_kid_wait=0.5), now=0)
    fetch.hold.clear()
    refused: list[str] = []

    def ask(i: int) -> None:
        try:
            keys.get_key(f"random-{i}", now=31)
        except TokenKeyUnknown as e:
            refused.append(e.reason)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(20)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
    finally:
        fetch.hold.set()
    assert refused == ["token_key_unknown"] * 20
    assert len(fetch.calls) == 2  # the first load + ONE refetch for all twenty


def test_a_bug_in_a_fetch_does_not_keep_the_single_flight_taken(monkeypatch, one_key):
    fetch = FakeFetch(monkeypatch, RuntimeError("bug"), one_key)
    keys = source()
    keys.refresh_if_stale(now=0, wait=WAIT)
    assert keys.key_count == 0
    assert keys.last_error == "internal error: RuntimeError"
    assert not keys.status(now=0).refreshing
    assert keys.get_key("test-key-1", now=30).key_id == "test-key-1"
    assert len(fetch.calls) == 2


# --- the hard maximum staleness ----------------------------------------------------------


def test_keys_past_the_maximum_staleness_are_refused_while_refreshes_keep_failing(
    monkeypatch, one_key
):
    fetch = FakeFetch(monkeypatch, one_key, JwksUnavailable("keycloak down"))
    keys = loaded(source(max_age=300, max_staleness=900), now=0)
    for now in (300, 600, 899):  # due and failing: the last good keys still serve
        assert keys.get_key("test-key-1", now=now).key_id == "test-key-1"
        keys.wait_for_refresh(WAIT)
    assert keys.last_error == "keycloak down"
    with pytest.raises(JwksStale) as refused:
        keys.get_key("test-key-1", now=901)
    assert refused.value.reason == "jwks_stale"
    assert "901s ago" in refused.value.detail and "keycloak down" in refused.value.detail
    assert not keys.status(now=901).fresh
    assert len(fetch.calls) >= 3


def test_a_successful_refresh_after_the_staleness_bound_trusts_keys_again(monkeypatch, one_key):
    fetch = FakeFetch(monkeypatch, one_key, JwksUnavailable("down"), one_key)
    keys = loaded(source(max_age=300, max_staleness=900), now=0)
    keys.refresh_if_stale(now=400, wait=WAIT)  # fails
    with pytest.raises(JwksStale):
        keys.get_key("test-key-1", now=1000)  # stale; starts the refresh that succeeds
    keys.wait_for_refresh(WAIT)
    assert keys.get_key("test-key-1", now=1001).key_id == "test-key-1"
    assert keys.status(now=1001).fresh
    assert len(fetch.calls) == 3


def test_status_reports_keys_age_staleness_and_the_last_error(monkeypatch, one_key):
    FakeFetch(monkeypatch, one_key, JwksUnavailable("down"))
    keys = source()
    assert keys.status(now=0).keys == 0 and not keys.status(now=0).fresh
    loaded(keys, now=10)
    keys.refresh_if_stale(now=400, wait=WAIT)
    status = keys.status(now=500)
    assert (status.keys, status.age_seconds, status.last_error) == (1, 490, "down")
    assert status.max_staleness_seconds == 900 and status.fresh and not status.refreshing


# --- parsing ----------------------------------------------------------------------


def test_parse_jwks_keeps_signing_keys_and_drops_encryption_and_symmetric_keys(
    signing_key,
):
    enc = {**signing_key.jwk, "kid": "enc-key", "use": "enc", "alg": "RSA-OAEP"}
    hmac = {"kty": "oct", "kid": "hmac-key", "k": "c2VjcmV0", "alg": "HS256"}
    nameless = {k: v for k, v in signing_key.jwk.items() if k != "kid"}
    broken = {"kty": "RSA", "kid": "broken", "n": "AQAB"}
    parsed = parse_jwks({"keys": [enc, hmac, nameless, broken, signing_key.jwk, "x"]})
    assert list(parsed) == ["test-key-1"]


@pytest.mark.parametrize("document", [{}, {"keys": []}, {"keys": "x"}, {"keys": [{}]}])
def test_a_jwks_without_usable_keys_counts_as_a_failed_fetch(document):
    with pytest.raises(JwksUnavailable):
        parse_jwks(document)


def test_static_key_source_refuses_unknown_kids(keys):
    assert isinstance(keys, StaticKeySource)
    assert keys.get_key("test-key-1", now=0).key_id == "test-key-1"
    with pytest.raises(TokenKeyUnknown):
        keys.get_key("nope", now=0)
