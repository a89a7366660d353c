"""The event view: case-insensitive headers, every value seen, malformed parts ignored."""

from __future__ import annotations

import copy

from verifier.event import AuthorizerEvent


def test_header_names_differing_only_in_case_are_one_header_with_every_value():
    event = AuthorizerEvent(
        {"multiValueHeaders": {"Authorization": ["Bearer a"], "authorization": ["Bearer b"]}}
    )
    assert event.get_header_values("AUTHORIZATION") == ["Bearer a", "Bearer b"]


def test_looking_up_merged_headers_leaves_the_event_unchanged():
    raw = {"multiValueHeaders": {"X-A": ["1"], "x-a": ["2"]}}
    before = copy.deepcopy(raw)
    event = AuthorizerEvent(raw)
    event.get_header_values("x-a").append("3")
    assert event.get_header_values("x-a") == ["1", "2"]
    assert raw == before


def test_values_that_are_not_strings_are_ignored():
    event = AuthorizerEvent({"multiValueHeaders": {"X-A": [1, None, "ok", ["x"]]}})
    assert event.get_header_values("x-a") == ["ok"]


def test_a_multi_value_header_without_a_string_falls_back_to_the_single_value_map():
    event = AuthorizerEvent({"multiValueHeaders": {"X-A": [1]}, "headers": {"x-a": "single"}})
    assert event.get_header_values("X-A") == ["single"]


def test_malformed_header_maps_give_no_values_and_do_not_raise():
    for raw in (
        {"multiValueHeaders": ["X-A"]},
        {"multiValueHeaders": {"X-A": "not-a-list"}},
        {"multiValueHeaders": {1: ["x"]}},
        {"headers": {"X-A": 1}},
        {},
    ):
        assert AuthorizerEvent(raw).get_header_values("x-a") == []
