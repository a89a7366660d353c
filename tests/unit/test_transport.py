"""Transport: the client certificate nginx forwarded, parsed and checked."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization

from verifier import transport
from verifier.cache import BoundedLRU
from verifier.errors import (
    ClientCertIssuerUntrusted,
    ClientCertMalformed,
    ClientCertNotVerified,
)
from verifier.event import AuthorizerEvent
from verifier.transport import check_client_cert, parse_client_cert


def presented(make_event, pem=None, verify="SUCCESS"):
    return parse_client_cert(AuthorizerEvent(make_event(cert_pem=pem, verify=verify)))


def test_facts_come_from_the_parsed_certificate_not_from_the_dn_strings(make_event, pki):
    event = make_event()
    event["requestContext"]["identity"]["clientCert"]["subjectDN"] = "CN=admin"
    cert = parse_client_cert(AuthorizerEvent(event))
    assert cert.common_names == ("python-client",)
    assert cert.subject_dn == "CN=python-client,O=zerotrust-test"
    assert cert.issuer_dn == "CN=zerotrust client issuing CA,O=zerotrust-test"
    assert int(cert.serial, 16) == pki.client.cert.serial_number
    assert len(cert.serial) % 2 == 0 and cert.serial == cert.serial.upper()


def test_the_rfc8705_thumbprint_is_base64url_sha256_of_the_der_without_padding(make_event, pki):
    der = pki.client.cert.public_bytes(serialization.Encoding.DER)
    expected = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=")
    assert presented(make_event).x5t_s256 == expected.decode()
    assert "=" not in presented(make_event).x5t_s256


def test_a_parsed_certificate_is_cached_by_fingerprint(make_event):
    first = presented(make_event)
    assert presented(make_event) is first


@pytest.mark.parametrize("verify", ["SUCCESS ", " SUCCESS", "Success", "FAILED:x", ""])
def test_anything_but_exactly_success_is_refused(make_event, verify):
    with pytest.raises(ClientCertNotVerified):
        presented(make_event, verify=verify)


def test_an_api_gateway_event_without_a_verify_header_passes_only_when_configured(
    make_event,
):
    event = AuthorizerEvent(make_event(verify=None))
    with pytest.raises(ClientCertNotVerified):
        parse_client_cert(event)
    assert parse_client_cert(event, require_verify_header=False).common_names
    failed = AuthorizerEvent(make_event(verify="FAILED:unknown ca"))
    with pytest.raises(ClientCertNotVerified):
        parse_client_cert(failed, require_verify_header=False)


def test_two_verify_headers_are_refused_even_if_both_say_success(make_event):
    event = make_event()
    event["multiValueHeaders"]["X-Client-Verify"] = ["SUCCESS", "SUCCESS"]
    with pytest.raises(ClientCertNotVerified):
        parse_client_cert(AuthorizerEvent(event))


@pytest.mark.parametrize(
    "pem",
    [
        "not a pem",
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\n" + "A" * 20000 + "\n-----END CERTIFICATE-----\n",
        "\u00e9",
    ],
    ids=["text", "empty-pem", "oversized", "non-ascii"],
)
def test_a_pem_that_does_not_parse_is_malformed(make_event, pem):
    with pytest.raises(ClientCertMalformed):
        presented(make_event, pem=pem)


def test_the_configured_root_alone_does_not_trust_certs_issued_by_the_intermediate(
    make_event, pki, now
):
    cert = presented(make_event)
    check_client_cert(cert, (pki.client_ca.cert,), now)
    with pytest.raises(ClientCertIssuerUntrusted):
        check_client_cert(cert, (pki.client_root.cert,), now)


def test_any_of_several_issuing_cas_may_have_issued_the_cert(make_event, pki, now):
    cert = presented(make_event)
    check_client_cert(cert, (pki.server_ca.cert, pki.client_ca.cert), now)


def test_validity_bounds_are_inclusive_at_the_exact_second(make_event, pki):
    cert = presented(make_event)
    cas = (pki.client_ca.cert,)
    check_client_cert(cert, cas, cert.not_before)
    check_client_cert(cert, cas, cert.not_after)


def test_the_issuer_verdict_is_cached_per_certificate_and_ca(make_event, pki, now):
    cert = presented(make_event, pem=pki.forged_signature.pem)
    for _ in range(2):
        with pytest.raises(ClientCertIssuerUntrusted):
            check_client_cert(cert, (pki.client_ca.cert,), now)
    ca = pki.client_ca.cert
    assert transport._ISSUED_BY.get((cert.fingerprint, id(ca))) == (ca, False)


def test_a_cached_verdict_counts_only_for_the_same_ca_object(make_event, pki, now):
    # The key holds id(ca); a stale entry under that id for ANOTHER object (ids
    # are reused after garbage collection) must not be trusted.
    cert = presented(make_event)
    ca = pki.client_ca.cert
    transport._ISSUED_BY.put((cert.fingerprint, id(ca)), (pki.server_ca.cert, False))
    check_client_cert(cert, (ca,), now)  # re-verified against ca: issued by it
    assert transport._ISSUED_BY.get((cert.fingerprint, id(ca))) == (ca, True)


def test_the_lru_evicts_the_least_recently_used_entry():
    cache: BoundedLRU[str, int] = BoundedLRU(maxsize=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2
