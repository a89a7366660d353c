"""Transport: the client certificate nginx forwarded, parsed and checked."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization

from verifier.errors import (
    ClientCertIssuerUntrusted,
    ClientCertMalformed,
    ClientCertNotVerified,
)
from verifier.event import AuthorizerEvent
from verifier.lru import BoundedLRU
from verifier.transport import check_client_cert, parse_client_cert, serial_hex


def test_facts_come_from_the_parsed_certificate_not_from_the_dn_strings(make_event, pki):
    event = make_event()
    event["requestContext"]["identity"]["clientCert"]["subjectDN"] = "CN=admin"
    cert = parse_client_cert(AuthorizerEvent(event), cache=None)
    assert cert.common_names == ("python-client",)
    assert cert.subject_dn == "CN=python-client,O=zerotrust-test"
    assert cert.issuer_dn == "CN=zerotrust client issuing CA,O=zerotrust-test"
    assert int(cert.serial, 16) == pki.client.cert.serial_number
    assert len(cert.serial) % 2 == 0 and cert.serial == cert.serial.upper()
    assert cert.serial == serial_hex(pki.client.cert.serial_number)


@pytest.mark.parametrize(
    ("serial", "spelled"),
    [(0x1, "01"), (0xABC, "0ABC"), (0xABCD, "ABCD"), (0x0F00, "0F00"), (2**159 + 5, None)],
)
def test_a_serial_is_upper_case_hex_with_an_even_number_of_digits_as_nginx_writes_it(
    serial, spelled
):
    text = serial_hex(serial)
    assert int(text, 16) == serial
    assert len(text) % 2 == 0 and text == text.upper()
    assert spelled is None or text == spelled


def test_the_fingerprint_a_thumbprint_is_compared_with_is_the_sha256_of_the_der(presented, pki):
    der = pki.client.cert.public_bytes(serialization.Encoding.DER)
    assert presented().fingerprint == hashlib.sha256(der).digest()


def test_a_parsed_certificate_is_cached_by_its_pem_text(presented, caches, pki):
    first = presented()
    assert presented() is first
    assert caches.certs.get(pki.client.pem) is first


def test_without_a_cache_every_certificate_is_parsed_again(make_event):
    event = AuthorizerEvent(make_event())
    first = parse_client_cert(event, cache=None)
    again = parse_client_cert(event, cache=None)
    assert again == first and again is not first


@pytest.mark.parametrize("verify", ["SUCCESS ", " SUCCESS", "Success", "FAILED:x", ""])
def test_anything_but_exactly_success_is_refused(presented, verify):
    with pytest.raises(ClientCertNotVerified):
        presented(verify=verify)


def test_an_api_gateway_event_without_a_verify_header_passes_only_when_configured(
    make_event,
):
    event = AuthorizerEvent(make_event(verify=None))
    with pytest.raises(ClientCertNotVerified):
        parse_client_cert(event, cache=None)
    assert parse_client_cert(event, cache=None, require_verify_header=False).common_names
    failed = AuthorizerEvent(make_event(verify="FAILED:unknown ca"))
    with pytest.raises(ClientCertNotVerified):
        parse_client_cert(failed, cache=None, require_verify_header=False)


def test_two_verify_headers_are_refused_even_if_both_say_success(make_event):
    event = make_event()
    event["multiValueHeaders"]["X-Client-Verify"] = ["SUCCESS", "SUCCESS"]
    with pytest.raises(ClientCertNotVerified):
        parse_client_cert(AuthorizerEvent(event), cache=None)


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
def test_a_pem_that_does_not_parse_is_malformed(presented, pem):
    with pytest.raises(ClientCertMalformed):
        presented(pem=pem)


def test_the_configured_root_alone_does_not_trust_certs_issued_by_the_intermediate(
    presented, caches, pki, now
):
    cert = presented()
    check_client_cert(cert, (pki.client_ca.cert,), now, cache=caches.issuers)
    with pytest.raises(ClientCertIssuerUntrusted):
        check_client_cert(cert, (pki.client_root.cert,), now, cache=caches.issuers)


def test_any_of_several_issuing_cas_may_have_issued_the_cert(presented, caches, pki, now):
    cert = presented()
    cas = (pki.server_ca.cert, pki.client_ca.cert)
    assert check_client_cert(cert, cas, now, cache=caches.issuers) is pki.client_ca.cert


def test_validity_bounds_are_inclusive_at_the_exact_second(presented, pki):
    cert = presented()
    cas = (pki.client_ca.cert,)
    check_client_cert(cert, cas, cert.not_before, cache=None)
    check_client_cert(cert, cas, cert.not_after, cache=None)


def test_the_issuer_verdict_is_cached_per_certificate_and_ca(presented, caches, pki, now):
    cert = presented(pem=pki.forged_signature.pem)
    for _ in range(2):
        with pytest.raises(ClientCertIssuerUntrusted):
            check_client_cert(cert, (pki.client_ca.cert,), now, cache=caches.issuers)
    ca = pki.client_ca.cert
    assert caches.issuers.get((cert.fingerprint, id(ca))) == (ca, False)
    assert len(caches.issuers) == 1


def test_a_cached_verdict_counts_only_for_the_same_ca_object(presented, caches, pki, now):
    # The key holds id(ca); a stale entry under that id for ANOTHER object (ids
    # are reused after garbage collection) must not be trusted.
    cert = presented()
    ca = pki.client_ca.cert
    caches.issuers.put((cert.fingerprint, id(ca)), (pki.server_ca.cert, False))
    check_client_cert(cert, (ca,), now, cache=caches.issuers)  # re-verified: issued by ca
    assert caches.issuers.get((cert.fingerprint, id(ca))) == (ca, True)


def test_the_lru_evicts_the_least_recently_used_entry():
    cache: BoundedLRU[str, int] = BoundedLRU(maxsize=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2
