"""Audit: one record per decision, identity only from proven facts, never the token."""

from __future__ import annotations

import json
import os

import pytest

from verifier.audit import MAX_FIELD_CHARS, audit_record
from verifier.auditlog import append_audit_line
from verifier.errors import AuditUnavailable
from verifier.event import AuthorizerEvent


def record_for(run, event, now):
    response = run(event)
    return audit_record(AuthorizerEvent(event), response, now=now, latency_ms=1.23456)


def test_an_allow_record_carries_request_cert_and_token_identity(run, make_event, make_token, now):
    token = make_token()
    record = record_for(run, make_event(token=token, request_id="req-42"), now)
    assert record["time"] == "2025-06-15T15:06:40.000+00:00"
    assert (record["decision"], record["reason"], record["status"]) == ("allow", "ok", 200)
    assert record["request_id"] == "req-42"
    assert (record["method"], record["path"]) == ("GET", "/api/resource")
    assert record["client_addr"] == "127.0.0.1"
    assert record["cert_subject_dn"] == "CN=python-client,O=zerotrust-test"
    assert record["cert_issuer_dn"] == "CN=zerotrust client issuing CA,O=zerotrust-test"
    assert record["cert_serial"]
    assert record["cert_cn"] == record["subject"] == "python-client"
    assert record["azp"] == "python-client"
    assert record["sub"] == "5f0c9d8e-service-account-python-client"
    assert record["jti"] == "c0ffee00-0000-4000-8000-000000000001"
    assert record["realm_roles"] == ["default-roles-zerotrust", "viewer"]
    assert record["client_roles"] == ["read"]
    assert (record["org"], record["department"]) == ("acme", "engineering")
    assert record["latency_ms"] == 1.235
    assert token not in json.dumps(record)


def test_the_records_identity_is_the_decisions_identity_under_the_same_names(
    run, make_event, make_token, now
):
    event = make_event(token=make_token())
    response = run(event)
    record = audit_record(AuthorizerEvent(event), response, now=now, latency_ms=0.0)
    assert {name: record[name] for name in response.identity.asdict()} == (
        response.identity.asdict()
    )


def test_a_deny_record_names_the_reason_and_no_unverified_claims(
    run, make_event, make_token, other_signing_key, now
):
    forged = make_token(key=other_signing_key.private, sub="admin", azp="admin")
    record = record_for(run, make_event(token=forged), now)
    assert (record["decision"], record["reason"]) == ("deny", "token_signature_invalid")
    assert record["sub"] == record["azp"] == record["subject"] == ""
    assert record["realm_roles"] == record["client_roles"] == []
    assert "admin" not in json.dumps(record)


def test_attacker_sized_fields_are_truncated(run, make_event, now):
    event = make_event(path="/" + "a" * 5000, request_id="r" * 5000)
    record = record_for(run, event, now)
    assert len(record["path"]) <= MAX_FIELD_CHARS + 3
    assert len(record["request_id"]) <= MAX_FIELD_CHARS + 3


def test_records_are_appended_as_one_json_line_each(tmp_path, run, make_event, now):
    log = tmp_path / "audit.jsonl"
    record = record_for(run, make_event(path='/x\n{"forged": 1}'), now)
    append_audit_line(str(log), record)
    append_audit_line(str(log), record)
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert (first.pop("seq"), first.pop("prev")) == (1, "0" * 64)  # the chain's genesis
    assert first == record
    assert os.stat(log).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("where", ["directory", "missing-parent", "unset"])
def test_an_unwritable_audit_log_raises_audit_unavailable(tmp_path, where):
    path = {
        "directory": str(tmp_path),
        "missing-parent": str(tmp_path / "nope" / "audit.jsonl"),
        "unset": None,
    }[where]
    with pytest.raises(AuditUnavailable) as caught:
        append_audit_line(path, {"decision": "allow"})
    assert (caught.value.reason, caught.value.status) == ("audit_unavailable", 503)


def test_a_record_that_is_not_json_is_audit_unavailable(tmp_path):
    with pytest.raises(AuditUnavailable):
        append_audit_line(str(tmp_path / "a.jsonl"), {"bad": object()})
