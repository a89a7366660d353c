"""Authorization header parsing: one ``Bearer <b64token>``, nothing else."""

from __future__ import annotations

import pytest

from verifier.bearer import bearer_token
from verifier.errors import TokenMalformed, TokenSchemeNotBearer, TokenTooLarge
from verifier.event import AuthorizerEvent


def token_of(make_event, authorization, max_bytes=8192):
    event = AuthorizerEvent(make_event(authorization=authorization))
    return bearer_token(event, max_bytes)


def test_the_token_after_bearer_is_returned_unchanged(make_event):
    assert token_of(make_event, "Bearer a.b.c") == "a.b.c"


def test_the_header_name_is_case_insensitive(make_event):
    event = make_event()
    event["multiValueHeaders"] = {"authorization": ["Bearer a.b.c"]}
    assert bearer_token(AuthorizerEvent(event), 8192) == "a.b.c"


def test_the_single_value_headers_map_is_used_when_there_is_no_multi_value_map(
    make_event,
):
    event = make_event()
    del event["multiValueHeaders"]
    event["headers"]["AUTHORIZATION"] = "Bearer x.y.z"
    assert bearer_token(AuthorizerEvent(event), 8192) == "x.y.z"


def test_a_token_at_the_size_limit_passes_and_one_byte_more_is_too_large(make_event):
    assert token_of(make_event, "Bearer " + "a" * 100, max_bytes=100)
    with pytest.raises(TokenTooLarge):
        token_of(make_event, "Bearer " + "a" * 101, max_bytes=100)


@pytest.mark.parametrize(
    "value", ["Bearer", "Bearer ", "Bearer a b", "Bearer a\tb", "Bearer a\u00e9", "Bearer =a"]
)
def test_a_token_outside_the_b64token_alphabet_is_malformed(make_event, value):
    with pytest.raises(TokenMalformed):
        token_of(make_event, value)


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Digest x", "DPoP a.b.c", "Token a"])
def test_other_schemes_are_refused(make_event, value):
    with pytest.raises(TokenSchemeNotBearer):
        token_of(make_event, value)
