"""The verified-token cache skips only parse + signature, never a time or key check.

Each test verifies through its own cache (the ``caches`` fixture, fresh per
test, as ``create_app`` builds one per app), wrapped in ``verify``.
"""

from __future__ import annotations

import dataclasses
import json

import jwt
import pytest

from verifier import claims as claims_module
from verifier.caches import DecisionCaches
from verifier.claims import verify_token
from verifier.errors import TokenExpired, TokenIssuedInFuture, TokenKeyUnknown, TokenNotYetValid
from verifier.jwks import StaticKeySource


@pytest.fixture
def decode_calls(monkeypatch):
    calls = []
    real = jwt.decode

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(claims_module.jwt, "decode", counting)
    return calls


@pytest.fixture
def verify(caches):
    """``verify_token`` with this test's token cache (the one its settings built)."""

    def verify_through_cache(token, keys, settings, now, *, cache=caches.tokens):
        return verify_token(token, keys, settings, now, cache=cache)

    return verify_through_cache


def test_a_repeated_token_is_verified_cryptographically_once(
    decode_calls, verify, keys, settings, make_token, now
):
    token = make_token()
    first = verify(token, keys, settings, now)
    second = verify(token, keys, settings, now + 1)
    assert second is first
    assert len(decode_calls) == 1


def test_a_cached_token_is_still_refused_once_it_expires(
    decode_calls, verify, keys, settings, make_token, now
):
    token = make_token(exp=int(now) + 60)
    verify(token, keys, settings, now)
    with pytest.raises(TokenExpired):
        verify(token, keys, settings, now + 60 + settings.leeway_seconds + 1)
    assert len(decode_calls) == 1  # refused from the cache entry, by the clock


def test_a_cached_token_is_refused_when_its_key_leaves_the_jwks(
    decode_calls, verify, signing_key, other_signing_key, settings, make_token, now
):
    token = make_token()
    with_key = StaticKeySource.from_jwks({"keys": [signing_key.jwk]})
    without = StaticKeySource.from_jwks({"keys": [other_signing_key.jwk]})
    verify(token, with_key, settings, now)
    with pytest.raises(TokenKeyUnknown):
        verify(token, without, settings, now)


def test_a_new_key_object_for_the_same_kid_means_verifying_again(
    decode_calls, verify, signing_key, settings, make_token, now
):
    token = make_token()
    verify(token, StaticKeySource.from_jwks({"keys": [signing_key.jwk]}), settings, now)
    verify(token, StaticKeySource.from_jwks({"keys": [signing_key.jwk]}), settings, now)
    assert len(decode_calls) == 2


def test_the_cache_can_be_turned_off(decode_calls, verify, keys, settings, make_token, now):
    off = dataclasses.replace(settings, token_cache_size=0)
    no_cache = DecisionCaches.from_settings(off).tokens
    token = make_token()
    verify(token, keys, off, now, cache=no_cache)
    verify(token, keys, off, now, cache=no_cache)
    assert len(decode_calls) == 2


def test_a_cached_token_is_verified_again_under_other_settings(
    decode_calls, verify, keys, settings, make_token, now
):
    token = make_token()
    verify(token, keys, settings, now)
    verify(token, keys, dataclasses.replace(settings, leeway_seconds=5), now)
    assert len(decode_calls) == 2


def test_a_token_verified_through_one_cache_is_unknown_to_another(
    decode_calls, verify, keys, settings, make_token, now
):
    token = make_token()
    verify(token, keys, settings, now)
    verify(token, keys, settings, now, cache=DecisionCaches.from_settings(settings).tokens)
    assert len(decode_calls) == 2


def test_a_cached_token_cannot_be_altered_by_a_caller(
    decode_calls, verify, keys, settings, make_token, now
):
    token = make_token()
    verified = verify(token, keys, settings, now)
    with pytest.raises(AttributeError):
        verified.claims["realm_access"]["roles"].append("admin")
    with pytest.raises(TypeError):
        verified.claims["realm_access"]["roles"] = ["admin"]  # type: ignore[index]
    with pytest.raises(TypeError):
        verified.claims["org"] = "other"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        verified.realm_roles = frozenset({"admin"})  # type: ignore[misc]
    again = verify(token, keys, settings, now)
    assert "admin" not in again.claims["realm_access"]["roles"]
    assert "admin" not in again.realm_roles
    assert "org" not in again.claims or again.claims["org"] != "other"


def test_a_cached_token_is_refused_when_the_clock_is_before_its_nbf(
    decode_calls, verify, keys, settings, make_token, now
):
    token = make_token(iat=int(now) - 100, nbf=int(now))
    verify(token, keys, settings, now + 1)
    with pytest.raises(TokenNotYetValid):
        verify(token, keys, settings, now - settings.leeway_seconds - 1)
    assert len(decode_calls) == 1  # refused from the cache entry, by the clock


def test_a_cached_token_is_refused_when_the_clock_is_before_its_iat(
    decode_calls, verify, keys, settings, make_token, now
):
    token = make_token(iat=int(now))
    verify(token, keys, settings, now)
    with pytest.raises(TokenIssuedInFuture):
        verify(token, keys, settings, now - settings.leeway_seconds - 1)
    assert len(decode_calls) == 1


def test_a_client_reusing_its_token_gets_the_same_identity_object(run, make_token, make_event):
    """One identity (and one header JSON) per certificate and token: not rebuilt per request."""
    token = make_token()
    first = run(make_event(token=token))
    second = run(make_event(token=token))
    assert first.allowed and second.allowed
    assert second.identity is first.identity
    assert second.identity.to_header() is first.identity.to_header()
    assert json.loads(first.identity.to_header()) == json.loads(json.dumps(first.identity.asdict()))
    other = run(make_event(token=make_token(jti="another")))
    assert other.allowed and other.identity is not first.identity
    assert other.identity.jti == "another" and first.identity.jti != "another"


def test_without_the_token_cache_each_allow_builds_its_identity(
    run, make_token, make_event, settings
):
    uncached = dataclasses.replace(settings, token_cache_size=0)
    caches = DecisionCaches.from_settings(uncached)
    event = make_event(token=make_token())
    first = run(event, settings_=uncached, caches_=caches)
    second = run(event, settings_=uncached, caches_=caches)
    assert first.allowed and first.identity == second.identity
    assert len(caches.identities) == 0
