"""Revocation: the certificate and its issuing CA are checked against the CRL file.

Through ``decide`` with a ``StaticCRLSource`` (what the check concludes), and
through a ``CRLFileSource`` on a file in ``tmp_path`` (when the file is read,
re-read and refused). Every clock is injected; nothing sleeps.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import pytest
from cryptography import x509

from tests.verifier_fixtures import NOW, client_crls, crl_pem, make_crl
from verifier import revocation as revocation_module
from verifier.audit import audit_record
from verifier.errors import CrlUnavailable
from verifier.event import AuthorizerEvent
from verifier.revocation import CRLFileSource, CRLSnapshot, StaticCRLSource
from verifier.transport import serial_hex

INTERVAL = 1.0


def replace_atomically(path: Path, text: str) -> None:
    """Write ``text`` next to ``path`` and rename it over ``path``, as the ops tooling does."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@pytest.fixture
def static():
    """A ``StaticCRLSource`` of the given CRLs."""

    def build(*crls):
        return StaticCRLSource.from_pem(crl_pem(*crls))

    return build


@pytest.fixture
def crl_path(tmp_path, client_crl_pem):
    path = tmp_path / "client-ca.crl.pem"
    path.write_text(client_crl_pem)
    return path


@pytest.fixture
def source(crl_path):
    """A file source on ``crl_path``, loaded at ``NOW``."""
    loaded = CRLFileSource(crl_path, check_interval=INTERVAL)
    loaded.refresh_if_changed(NOW)
    return loaded


@pytest.fixture
def allowed(make_event, make_token):
    """An event ``decide`` allows when the certificate passes revocation."""

    def event(cert_pem=None):
        return make_event(token=make_token(), cert_pem=cert_pem)

    return event


# --- what the check concludes ---------------------------------------------------------


def test_a_certificate_on_no_crl_is_allowed(run, allowed):
    response = run(allowed())
    assert (response.decision, response.reason) == ("allow", "ok")


def test_a_certificate_on_its_issuers_crl_is_refused_as_revoked_with_401(run, allowed, pki):
    response = run(allowed(pki.revoked.pem))
    assert (response.decision, response.status, response.reason) == ("deny", 401, "cert_revoked")
    assert serial_hex(pki.revoked.cert.serial_number) in response.detail


def test_the_audit_record_of_a_revoked_certificate_names_the_reason_and_the_serial(
    run, allowed, pki
):
    event = allowed(pki.revoked.pem)
    response = run(event)
    record = audit_record(AuthorizerEvent(event), response, now=NOW, latency_ms=0.1)
    assert (record["decision"], record["reason"], record["status"]) == (
        "deny",
        "cert_revoked",
        401,
    )
    assert record["cert_serial"] == serial_hex(pki.revoked.cert.serial_number)
    assert record["sub"] == record["azp"] == ""  # refused before the token was looked at


def test_a_certificate_whose_issuing_ca_the_root_revoked_is_refused_as_revoked(
    run, allowed, pki, settings
):
    both_cas = dataclasses.replace(settings, client_ca_pem=pki.client_ca.pem + pki.retired_ca.pem)
    response = run(allowed(pki.from_retired_ca.pem), settings_=both_cas)
    assert (response.status, response.reason) == (401, "cert_revoked")
    assert "issuing CA" in response.detail


def test_a_revoked_issuing_ca_is_refused_even_while_its_own_crl_is_still_published(
    run, allowed, pki, settings, static
):
    both_cas = dataclasses.replace(settings, client_ca_pem=pki.client_ca.pem + pki.retired_ca.pem)
    crls = static(
        make_crl(pki.retired_ca),
        make_crl(pki.client_ca),
        make_crl(pki.client_root, [pki.retired_ca.cert.serial_number]),
    )
    response = run(allowed(pki.from_retired_ca.pem), settings_=both_cas, revocation_=crls)
    assert response.reason == "cert_revoked"


def test_a_crl_of_another_issuer_only_is_refused_as_crl_unavailable_with_503(
    run, allowed, pki, static
):
    response = run(allowed(), revocation_=static(make_crl(pki.server_ca)))
    assert (response.decision, response.status, response.reason) == (
        "deny",
        503,
        "crl_unavailable",
    )
    assert "zerotrust client issuing CA" in response.detail


def test_a_missing_root_crl_is_refused_because_the_issuing_ca_cannot_be_checked(
    run, allowed, pki, static
):
    response = run(allowed(), revocation_=static(make_crl(pki.client_ca)))
    assert (response.reason, response.status) == ("crl_unavailable", 503)
    assert "root CA" in response.detail


@pytest.mark.parametrize("stale", ["client_ca", "client_root"])
def test_an_expired_crl_is_refused_as_crl_unavailable(run, allowed, pki, static, stale):
    crls = {
        name: make_crl(
            getattr(pki, name),
            last_update=NOW - 4 * 86400,
            next_update=NOW - 1 if name == stale else NOW + 86400,
        )
        for name in ("client_ca", "client_root")
    }
    response = run(allowed(), revocation_=static(*crls.values()))
    assert (response.reason, response.status) == ("crl_unavailable", 503)
    assert "expired" in response.detail


def test_a_crl_is_current_up_to_and_including_its_next_update(run, allowed, pki, static):
    crls = static(make_crl(pki.client_ca, next_update=NOW + 60), make_crl(pki.client_root))
    assert run(allowed(), revocation_=crls, now=NOW + 60).decision == "allow"
    assert run(allowed(), revocation_=crls, now=NOW + 60.5).reason == "crl_unavailable"


def test_a_listing_on_an_expired_crl_still_says_revoked(run, allowed, pki, static):
    stale = make_crl(
        pki.client_ca,
        [pki.revoked.cert.serial_number],
        last_update=NOW - 4 * 86400,
        next_update=NOW - 1,
    )
    response = run(allowed(pki.revoked.pem), revocation_=static(stale, make_crl(pki.client_root)))
    assert response.reason == "cert_revoked"


def test_an_allow_is_valid_no_longer_than_the_earliest_next_update_checked(
    run, allowed, pki, static
):
    crls = static(
        make_crl(pki.client_ca, next_update=NOW + 120),
        make_crl(pki.client_root, next_update=NOW + 60),
    )
    response = run(allowed(), revocation_=crls)
    assert response.allowed
    assert response.valid_until == NOW + 60  # before the token's exp (NOW + 290)


def test_an_allow_on_a_long_lived_crl_is_still_bounded_by_the_token(run, allowed):
    response = run(allowed())
    assert response.valid_until == NOW + 290


def test_two_crls_of_one_issuer_are_merged_conservatively(pki):
    snapshot = CRLSnapshot.from_pem(
        crl_pem(
            make_crl(pki.client_ca, [1, 2], next_update=NOW + 100),
            make_crl(pki.client_ca, [3], next_update=NOW + 50),
        )
    )
    crl = snapshot.by_issuer[pki.client_ca.cert.subject]
    assert crl.revoked == frozenset({1, 2, 3})
    assert crl.next_update == NOW + 50


def test_the_snapshot_cannot_be_changed_after_it_is_built(revocation):
    snapshot = revocation.snapshot()
    with pytest.raises(TypeError):
        snapshot.by_issuer["x"] = None  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.by_issuer = {}  # type: ignore[misc]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("not a CRL at all\n", id="garbage"),
        pytest.param("-----BEGIN X509 CRL-----\nbm9wZQ==\n-----END X509 CRL-----\n", id="bad-der"),
    ],
)
def test_pem_text_without_a_usable_crl_is_refused(text):
    with pytest.raises(CrlUnavailable):
        StaticCRLSource.from_pem(text)


def test_a_truncated_file_is_refused_rather_than_read_as_fewer_crls(client_crl_pem):
    truncated = client_crl_pem[: client_crl_pem.rindex("-----END X509 CRL-----")]
    with pytest.raises(CrlUnavailable, match="unterminated"):
        CRLSnapshot.from_pem(truncated)


# --- the file source: when it reads, and what it refuses -------------------------------


def test_decide_never_reads_the_file_a_source_nobody_refreshed_refuses(run, allowed, crl_path):
    never_refreshed = CRLFileSource(crl_path)
    response = run(allowed(), revocation_=never_refreshed)
    assert (response.reason, response.status) == ("crl_unavailable", 503)


def test_the_file_source_allows_what_the_file_allows(run, allowed, source, pki):
    assert run(allowed(), revocation_=source).decision == "allow"
    assert run(allowed(pki.revoked.pem), revocation_=source).reason == "cert_revoked"


DAMAGE = {
    "missing": lambda path: path.unlink(),
    "garbage": lambda path: replace_atomically(path, "garbage\n"),
    "emptied": lambda path: path.write_text(""),
    "unreadable": lambda path: path.unlink() or path.mkdir(),  # open() fails, even as root
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_file_fails_closed_instead_of_serving_the_old_crls(
    run, allowed, source, crl_path, damage
):
    DAMAGE[damage](crl_path)
    source.refresh_if_changed(NOW + INTERVAL)
    response = run(allowed(), revocation_=source, now=NOW + INTERVAL)
    assert (response.reason, response.status) == ("crl_unavailable", 503)
    assert source.last_error


def test_a_file_missing_at_start_fails_closed_until_it_appears(run, allowed, tmp_path, pki):
    path = tmp_path / "later.crl.pem"
    source = CRLFileSource(path, check_interval=INTERVAL)
    source.refresh_if_changed(NOW)
    assert run(allowed(), revocation_=source).reason == "crl_unavailable"
    replace_atomically(path, client_crls(pki))
    source.refresh_if_changed(NOW + INTERVAL)
    assert run(allowed(), revocation_=source, now=NOW + INTERVAL).decision == "allow"


def test_a_replaced_file_is_picked_up_after_the_check_interval_and_not_before(
    run, allowed, source, crl_path, pki
):
    replace_atomically(crl_path, client_crls(pki, [pki.client.cert.serial_number]))
    source.refresh_if_changed(NOW + INTERVAL - 0.01)
    assert run(allowed(), revocation_=source, now=NOW + INTERVAL - 0.01).decision == "allow"
    source.refresh_if_changed(NOW + INTERVAL)
    assert run(allowed(), revocation_=source, now=NOW + INTERVAL).reason == "cert_revoked"


def test_a_crl_dropped_from_the_file_later_fails_closed(run, allowed, source, crl_path, pki):
    replace_atomically(crl_path, crl_pem(make_crl(pki.client_root)))
    source.refresh_if_changed(NOW + INTERVAL)
    response = run(allowed(), revocation_=source, now=NOW + INTERVAL)
    assert (response.reason, response.status) == ("crl_unavailable", 503)


def test_a_good_file_after_a_bad_one_is_served_again_without_a_restart(
    run, allowed, source, crl_path, pki
):
    replace_atomically(crl_path, "garbage\n")
    source.refresh_if_changed(NOW + 1)
    assert run(allowed(), revocation_=source, now=NOW + 1).reason == "crl_unavailable"
    replace_atomically(crl_path, client_crls(pki))
    source.refresh_if_changed(NOW + 2)
    assert run(allowed(), revocation_=source, now=NOW + 2).decision == "allow"
    assert source.last_error is None


def test_an_unchanged_file_is_looked_at_once_per_interval_and_never_parsed_again(
    source, crl_path, monkeypatch
):
    stats, parses = [], []
    real_stat, real_parse = os.stat, CRLSnapshot.from_pem

    def counted_stat(path, *args, **kwargs):
        if str(path) == str(crl_path):
            stats.append(path)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(revocation_module.os, "stat", counted_stat)
    monkeypatch.setattr(
        CRLSnapshot, "from_pem", classmethod(lambda cls, pem: parses.append(1) or real_parse(pem))
    )
    for tick in range(10):
        source.refresh_if_changed(NOW + tick * 0.25)  # 2.25 s of requests every 250 ms
    assert len(stats) == 2  # at NOW + 1 and NOW + 2
    assert parses == []


def test_a_clock_that_stepped_back_does_not_postpone_the_next_look(source, crl_path, pki):
    replace_atomically(crl_path, client_crls(pki, [pki.client.cert.serial_number]))
    source.refresh_if_changed(NOW - 3600)
    assert (
        pki.client.cert.serial_number
        in source.snapshot().by_issuer[pki.client_ca.cert.subject].revoked
    )


def test_a_bad_file_is_logged_once_per_change_and_without_its_contents(source, crl_path, caplog):
    caplog.set_level(logging.ERROR, logger="verifier.revocation")
    replace_atomically(crl_path, "-----BEGIN X509 CRL-----\nc2VjcmV0\n-----END X509 CRL-----\n")
    for tick in range(1, 6):
        source.refresh_if_changed(NOW + tick)
    assert len(caplog.records) == 1
    assert str(crl_path) in caplog.text
    assert "c2VjcmV0" not in caplog.text
    crl_path.unlink()
    for tick in range(6, 10):
        source.refresh_if_changed(NOW + tick)
    assert len(caplog.records) == 2


def test_an_unexpected_error_while_loading_fails_closed_instead_of_raising(
    source, crl_path, pki, monkeypatch
):
    def bug(cls, pem):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(CRLSnapshot, "from_pem", classmethod(bug))
    replace_atomically(crl_path, client_crls(pki))
    source.refresh_if_changed(NOW + INTERVAL)
    with pytest.raises(CrlUnavailable, match="ZeroDivisionError"):
        source.snapshot()


def test_the_file_source_is_built_from_the_client_crl_setting(settings, crl_file):
    assert CRLFileSource.from_settings(settings).path == str(crl_file)


def test_the_default_check_interval_is_one_second(crl_path):
    assert CRLFileSource(crl_path).check_interval == 1.0


def test_a_cas_crls_are_looked_up_by_name_once_per_snapshot_and_object(pki, client_crl_pem):
    snapshot = CRLSnapshot.from_pem(client_crl_pem)
    first = snapshot.for_ca(pki.client_ca.cert)
    assert snapshot.for_ca(pki.client_ca.cert) is first
    assert first.own is snapshot.by_issuer[pki.client_ca.cert.subject]
    assert first.parent is snapshot.by_issuer[pki.client_root.cert.subject]
    same_ca_parsed_again = x509.load_pem_x509_certificate(pki.client_ca.pem.encode())
    again = snapshot.for_ca(same_ca_parsed_again)
    assert again is not first and again.ca is same_ca_parsed_again
    assert CRLSnapshot.from_pem(client_crl_pem).for_ca(pki.client_ca.cert) is not first
