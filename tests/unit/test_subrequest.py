"""The nginx subrequest -> authorizer event mapping (the nginx config relies on it)."""

from __future__ import annotations

from urllib.parse import quote

from verifier.event import AuthorizerEvent
from verifier.lru import BoundedLRU
from verifier.subrequest import event_from_subrequest


def test_every_nginx_header_lands_in_its_event_field(pki):
    headers = [
        ("X-Client-Verify", "SUCCESS"),
        ("X-Client-Cert", quote(pki.client.pem, safe="")),
        ("X-Client-Subject-Dn", "CN=python-client,O=zerotrust-test"),
        ("X-Client-Issuer-Dn", "CN=zerotrust client issuing CA,O=zerotrust-test"),
        ("X-Client-Serial", "0A1B"),
        ("X-Client-Not-Before", "Jun 14 15:06:40 2025 GMT"),
        ("X-Client-Not-After", "Jul 15 15:06:40 2025 GMT"),
        ("X-Original-Method", "POST"),
        ("X-Original-Uri", "/api/resource?x=1"),
        ("X-Request-Id", "5e1f"),
        ("X-Client-Addr", "203.0.113.7"),
        ("Authorization", "Bearer a.b.c"),
    ]
    event = event_from_subrequest(headers)
    view = AuthorizerEvent(event)
    assert event["type"] == "REQUEST"
    assert (view.http_method, view.path) == ("POST", "/api/resource?x=1")
    assert event["requestContext"]["httpMethod"] == "POST"
    assert event["requestContext"]["path"] == "/api/resource?x=1"
    assert view.request_id == "5e1f"
    assert view.source_ip == "203.0.113.7"
    cert = event["requestContext"]["identity"]["clientCert"]
    assert cert["clientCertPem"] == pki.client.pem
    assert cert["subjectDN"] == "CN=python-client,O=zerotrust-test"
    assert cert["issuerDN"] == "CN=zerotrust client issuing CA,O=zerotrust-test"
    assert cert["serialNumber"] == "0A1B"
    assert cert["validity"] == {
        "notBefore": "Jun 14 15:06:40 2025 GMT",
        "notAfter": "Jul 15 15:06:40 2025 GMT",
    }
    assert view.get_header_value("x-client-verify") == "SUCCESS"
    assert view.get_header_value("AUTHORIZATION") == "Bearer a.b.c"
    assert view.get_header_value("X-Client-Cert") is None


def test_repeated_headers_are_kept_as_multi_value_headers():
    event = event_from_subrequest([("Authorization", "Bearer a"), ("Authorization", "Bearer b")])
    assert AuthorizerEvent(event).get_header_values("authorization") == ["Bearer a", "Bearer b"]
    assert event["headers"]["Authorization"] == "Bearer b"


def test_a_subrequest_without_identity_headers_yields_an_empty_certificate():
    event = event_from_subrequest([])
    assert AuthorizerEvent(event).client_cert.client_cert_pem == ""
    assert AuthorizerEvent(event).path == ""


def test_a_cache_of_escaped_certificates_answers_the_same_pem(pki):
    pems: BoundedLRU[str, str] = BoundedLRU(4)
    headers = [("X-Client-Cert", quote(pki.client.pem, safe=""))]
    first = event_from_subrequest(headers, pems=pems)
    again = event_from_subrequest(headers, pems=pems)
    pem = first["requestContext"]["identity"]["clientCert"]["clientCertPem"]
    assert pem == pki.client.pem
    assert again["requestContext"]["identity"]["clientCert"]["clientCertPem"] is pem
    assert event_from_subrequest(headers) == first  # no cache: the same event
