"""One identity schema: the same names in the header, the audit record, the API, the context."""

from __future__ import annotations

import dataclasses
import json
import typing

import pytest

from verifier.identity import Identity, IdentityJSON

FULL = Identity(
    subject="python-client",
    azp="python-client",
    sub="5f0c9d8e-service-account-python-client",
    jti="c0ffee00-0000-4000-8000-000000000001",
    cert_cn="python-client",
    cert_serial="0A1B",
    cert_subject_dn="CN=python-client,O=zerotrust-test",
    cert_issuer_dn="CN=zerotrust client issuing CA,O=zerotrust-test",
    realm_roles=("a,b", "viewer"),
    client_roles=("read",),
    org="Z\u00fcrich",
    department="eng\r\nX-Injected: 1\x7f",
)


def test_the_json_form_has_exactly_the_fields_of_the_schema_in_order():
    names = [field.name for field in dataclasses.fields(Identity)]
    assert list(typing.get_type_hints(IdentityJSON)) == names
    assert list(FULL.asdict()) == names


def test_the_header_is_printable_ascii_and_reads_back_exactly():
    header = FULL.to_header()
    assert header.isascii() and header.isprintable()
    assert Identity.from_header(header) == FULL
    assert json.loads(header)["realm_roles"] == ["a,b", "viewer"]


@pytest.mark.parametrize("value", [None, "", "{not json", '["azp"]', "42", "null"])
def test_an_unreadable_header_is_nobody(value):
    assert Identity.from_header(value) == Identity()


def test_a_field_of_the_wrong_type_reads_as_empty_and_unknown_names_are_ignored():
    header = json.dumps(
        {"azp": 42, "cert_cn": "python-client", "realm_roles": ["viewer", 7], "token_azp": "x"}
    )
    assert Identity.from_header(header) == Identity(
        cert_cn="python-client", realm_roles=("viewer",)
    )


def test_the_flat_context_uses_the_same_names_with_comma_joined_roles():
    context = FULL.ascontext()
    assert list(context) == list(FULL.asdict())
    assert context["realm_roles"] == "a,b,viewer"
    assert context["client_roles"] == "read"
    assert all(isinstance(value, str) for value in context.values())
