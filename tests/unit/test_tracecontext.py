"""The W3C traceparent: recorded only in its valid form, ``invalid`` otherwise; and the
audit record carries it with the (truncated) user agent."""

from __future__ import annotations

import pytest

from verifier.audit import MAX_FIELD_CHARS, audit_record
from verifier.event import AuthorizerEvent
from verifier.tracecontext import INVALID, traceparent

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("value", "recorded"),
    [
        (None, ""),
        ("", ""),
        (VALID, VALID),
        (
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more",
            VALID.replace("00-", "01-", 1),
        ),
        ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", VALID.replace("00-", "01-", 1)),
        (VALID + "-extra", INVALID),  # version 00 is exactly 55 characters
        (VALID.upper(), INVALID),
        ("ff" + VALID[2:], INVALID),
        ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", INVALID),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01", INVALID),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", INVALID),
        ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", INVALID),
        ("<script>", INVALID),
        ("x" * 5000, INVALID),
    ],
)
def test_a_traceparent_is_recorded_only_in_its_valid_form(value, recorded):
    assert traceparent(value) == recorded


def with_headers(event: dict, **headers: str) -> dict:
    for name, value in headers.items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    return event


def test_the_audit_record_carries_the_user_agent_and_the_traceparent(run, make_event, now):
    event = with_headers(make_event(), **{"User-Agent": "curl/8.0", "traceparent": VALID})
    record = audit_record(AuthorizerEvent(event), run(event), now=now, latency_ms=0.0)
    assert record["user_agent"] == "curl/8.0"
    assert record["traceparent"] == VALID


def test_a_malformed_traceparent_is_recorded_as_invalid_and_a_long_agent_cut(run, make_event, now):
    raw = '00-"forged":1}'
    event = with_headers(make_event(), **{"User-Agent": "a" * 5000, "traceparent": raw})
    record = audit_record(AuthorizerEvent(event), run(event), now=now, latency_ms=0.0)
    assert record["traceparent"] == INVALID
    assert len(record["user_agent"]) <= MAX_FIELD_CHARS + 3


def test_a_request_without_them_records_empty_strings(run, make_event, now):
    event = make_event()
    record = audit_record(AuthorizerEvent(event), run(event), now=now, latency_ms=0.0)
    assert (record["user_agent"], record["traceparent"]) == ("", "")
