"""The key source: cache by kid, one refetch per cooldown, keep last good keys.

Only ``verifier.jwks.fetch_jwks`` is patched (the one network seam); the clock
is the ``now`` passed to ``get_key``.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from jwt import PyJWK

from verifier import jwks
from verifier.errors import JwksUnavailable, TokenKeyUnknown
from verifier.jwks import JWKSKeySource, StaticKeySource, fetch_jwks, parse_jwks

URL = "https://keycloak.test/realms/zerotrust/protocol/openid-connect/certs"


class FakeFetch:
    """Answers fetches from a script of documents (or exceptions) and counts them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, str | None, float]] = []
        monkeypatch.setattr(jwks, "fetch_jwks", self)

    def __call__(self, url: str, ca_bundle: str | None, timeout: float) -> Any:
        self.calls.append((url, ca_bundle, timeout))
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


def source() -> JWKSKeySource:
    return JWKSKeySource(URL, "/ca/server.pem", timeout=2.0, cooldown=30.0, max_age=300.0)


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
    # keys are stale after max_age: a refresh is attempted, fails, old key stays
    assert keys.get_key("test-key-1", now=400).key_id == "test-key-1"
    assert keys.last_error == "keycloak down"
    with pytest.raises(TokenKeyUnknown):
        keys.get_key("rotated-key-2", now=500)
    assert len(fetch.calls) == 3


def test_stale_keys_are_refreshed_and_a_key_removed_from_jwks_is_dropped(
    monkeypatch, one_key, other_signing_key
):
    fetch = FakeFetch(monkeypatch, one_key, {"keys": [other_signing_key.jwk]})
    keys = source()
    keys.get_key("test-key-1", now=0)
    with pytest.raises(TokenKeyUnknown):
        keys.get_key("test-key-1", now=301)
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
    keys.refresh_if_stale(now=0)
    keys.refresh_if_stale(now=100)
    assert keys.key_count == 1
    assert len(fetch.calls) == 1


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


# --- the fetch itself (requests patched, no network) --------------------------------


class FakeResponse:
    def __init__(self, body: bytes, status: int = 200) -> None:
        self.status_code = status
        self.raw = self
        self._body = body

    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise requests.HTTPError(f"{self.status_code}")

    def read1(self, amount: int, decode_content: bool = False) -> bytes:
        chunk, self._body = self._body[:amount], self._body[amount:]
        return chunk


def test_fetch_verifies_the_server_ca_with_a_timeout_and_no_redirects(monkeypatch):
    seen: dict[str, Any] = {}

    def fake_get(url: str, **kwargs: Any) -> FakeResponse:
        seen.update(kwargs, url=url)
        return FakeResponse(b'{"keys": []}')

    monkeypatch.setattr(jwks.requests, "get", fake_get)
    assert fetch_jwks(URL, "/ca/server.pem", 2.0) == {"keys": []}
    assert seen["verify"] == "/ca/server.pem"
    assert seen["timeout"] == 2.0
    assert seen["allow_redirects"] is False


@pytest.mark.parametrize(
    "answer",
    [
        requests.ConnectionError("refused"),
        requests.Timeout("slow"),
        requests.exceptions.SSLError("unknown ca"),
        FakeResponse(b"oops", status=503),
        FakeResponse(b"not json"),
        FakeResponse(b"[1, 2]"),
        FakeResponse(b" " * (jwks.MAX_JWKS_BYTES + 1)),
    ],
    ids=["refused", "timeout", "tls", "http-503", "not-json", "not-object", "too-big"],
)
def test_every_fetch_failure_is_jwks_unavailable(monkeypatch, answer):
    def fake_get(url: str, **kwargs: Any) -> FakeResponse:
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(jwks.requests, "get", fake_get)
    with pytest.raises(JwksUnavailable):
        fetch_jwks(URL, None, 2.0)


def test_fetch_refuses_a_plain_http_jwks_url(monkeypatch):
    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("must not connect")

    monkeypatch.setattr(jwks.requests, "get", fail)
    with pytest.raises(JwksUnavailable):
        fetch_jwks("http://keycloak.test/certs", None, 2.0)
