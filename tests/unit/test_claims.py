"""Token verification: PyJWT for the JWT, our own validators for time at ``now``."""

from __future__ import annotations

import dataclasses

import pytest
from jwt import PyJWK

from verifier.claims import verify_token
from verifier.errors import (
    TokenAlgNotAllowed,
    TokenClaimInvalid,
    TokenCritUnsupported,
    TokenExpired,
    TokenIssuedInFuture,
    TokenLifetimeTooLong,
    TokenNotYetValid,
    VerifierError,
)
from verifier.jwks import StaticKeySource


@pytest.fixture
def verify(keys, settings, now):
    def run(token, *, settings_=settings, keys_=keys, at=now):
        return verify_token(token, keys_, settings_, at, cache=None).claims

    return run


def test_a_valid_access_token_returns_its_claims(verify, make_token):
    claims = verify(make_token())
    assert claims["azp"] == "python-client"
    assert claims["typ"] == "Bearer"


def test_a_single_string_audience_is_accepted(verify, make_token):
    assert verify(make_token(aud="zerotrust-api"))["aud"] == "zerotrust-api"


@pytest.mark.parametrize(
    ("offset", "error"), [(-29, None), (-30, TokenExpired), (-31, TokenExpired)]
)
def test_exp_is_checked_against_the_injected_clock_with_leeway(
    verify, make_token, now, offset, error
):
    token = make_token(exp=int(now) + offset)
    if error is None:
        verify(token)
    else:
        with pytest.raises(error):
            verify(token)


def test_iat_up_to_the_leeway_in_the_future_is_accepted_and_beyond_refused(verify, make_token, now):
    verify(make_token(iat=int(now) + 30))
    with pytest.raises(TokenIssuedInFuture):
        verify(make_token(iat=int(now) + 31))


def test_nbf_is_optional_but_checked_when_present(verify, make_token, now):
    verify(make_token(nbf=int(now) + 30))
    with pytest.raises(TokenNotYetValid):
        verify(make_token(nbf=int(now) + 31))
    with pytest.raises(TokenClaimInvalid):
        verify(make_token(nbf="tomorrow"))


def test_the_same_token_expires_when_the_clock_moves(verify, make_token, now):
    token = make_token()
    verify(token, at=now)
    with pytest.raises(TokenExpired):
        verify(token, at=now + 3600)


def test_lifetime_of_exactly_the_maximum_passes_and_longer_is_refused(
    verify, make_token, settings, now
):
    iat = int(now) - 10
    verify(make_token(iat=iat, exp=iat + 3600))
    with pytest.raises(TokenLifetimeTooLong):
        verify(make_token(iat=iat, exp=iat + 3601))
    unlimited = dataclasses.replace(settings, max_token_lifetime_seconds=0)
    verify(make_token(iat=iat, exp=iat + 86400), settings_=unlimited)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "token_claim_invalid"),
        ("1750000300", "token_claim_invalid"),
        (1e400, "token_claim_invalid"),
        ([1], "token_claim_invalid"),
        (None, "token_claim_missing"),
    ],
)
def test_a_non_numeric_exp_is_refused_not_coerced(verify, make_token, value, reason):
    with pytest.raises(VerifierError) as caught:
        verify(make_token(exp=value))
    assert caught.value.reason == reason


def test_a_key_bound_to_another_algorithm_cannot_verify(verify, make_token, settings, signing_key):
    rs384_key = PyJWK({**signing_key.jwk, "alg": "RS384"})
    keys = StaticKeySource({"test-key-1": rs384_key})
    both = dataclasses.replace(settings, algorithms=("RS256", "RS384"))
    with pytest.raises(TokenAlgNotAllowed):
        verify(make_token(), settings_=both, keys_=keys)


def test_pyjwt_still_reports_unsupported_crit_in_a_way_we_recognise(verify, make_token):
    """Pins the message match in ``claims._read_header`` to the PyJWT in use."""
    with pytest.raises(TokenCritUnsupported):
        verify(make_token(headers={"crit": ["urn:example:policy"]}))


class RecordingKeys:
    """A key source that only records which kids were asked for."""

    key_count = 0

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_key(self, kid: str, now: float) -> PyJWK:
        self.asked.append(kid)
        raise AssertionError("must not be reached")

    def refresh_if_stale(self, now: float) -> None:
        return None


@pytest.mark.parametrize("alg", ["HS256", "none", "RS512"])
def test_a_disallowed_alg_is_refused_before_any_key_lookup(verify, craft_token, alg):
    """So alg-confused tokens with random kids cannot drive JWKS refetches."""
    keys = RecordingKeys()
    token = craft_token({"alg": alg, "kid": "random-kid-1234"})
    with pytest.raises(TokenAlgNotAllowed):
        verify(token, keys_=keys)
    assert keys.asked == []
