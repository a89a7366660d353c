"""Pure helpers of the bring-up and rotation scripts (no servers)."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from scripts import certs, files, rotation
from scripts.steps import StepFailed
from tests.x509_helpers import build_cert, cert_pem, key_pem


def _cert(key, not_before: dt.datetime, not_after: dt.datetime) -> x509.Certificate:
    return build_cert("t", key, not_before=not_before, not_after=not_after)


NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("elapsed_hours", "expected"), [(0, False), (15, False), (16.01, True), (30, True)]
)
def test_a_certificate_is_due_for_renewal_after_two_thirds_of_its_lifetime(elapsed_hours, expected):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert(key, NOW, NOW + dt.timedelta(hours=24))
    assert rotation.due(cert, NOW + dt.timedelta(hours=elapsed_hours)) is expected


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("2A:65:43", "2a:65:43"),
        ("2a6543", "2a:65:43"),
        ("a6543", "0a:65:43"),
        ("2a-65-43", "2a:65:43"),
    ],
)
def test_serials_are_normalised_to_openbao_format(given, normal):
    assert rotation._normalize_serial(given) == normal


@pytest.mark.parametrize("bad", ["", "zz", "12 34", "0x12"])
def test_a_malformed_serial_is_refused_with_a_clear_error(bad):
    with pytest.raises(StepFailed, match="not a certificate serial"):
        rotation._normalize_serial(bad)


def test_serial_hex_matches_openbao_format():
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert(key, NOW, NOW + dt.timedelta(days=1))
    h = certs.serial_hex(cert)
    assert int(h.replace(":", ""), 16) == cert.serial_number
    assert all(len(p) == 2 for p in h.split(":"))


def test_a_mismatched_pair_is_never_written(tmp_path):
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_text("current cert")
    key_file.write_text("current key")
    cert = _cert(key, NOW, NOW + dt.timedelta(days=1))
    with pytest.raises(StepFailed, match="does not match"):
        certs.write_pair(cert_file, key_file, cert_pem(cert), key_pem(other).decode())
    assert cert_file.read_text() == "current cert"
    assert key_file.read_text() == "current key"
    assert not certs.bundle_path(cert_file).exists()


def test_a_matching_pair_is_written_with_private_modes_and_a_combined_bundle(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert(key, NOW, NOW + dt.timedelta(days=1))
    cert_file, key_file = tmp_path / "id" / "cert.pem", tmp_path / "id" / "key.pem"
    certs.write_pair(cert_file, key_file, cert_pem(cert), key_pem(key).decode())
    bundle = certs.bundle_path(cert_file).read_text()
    assert certs.key_matches_cert(bundle, bundle)  # key and cert inside one file
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert certs.bundle_path(cert_file).stat().st_mode & 0o777 == 0o600
    assert not [p for p in cert_file.parent.iterdir() if p.name.endswith(".tmp")]


def test_write_atomic_replaces_and_leaves_no_temp_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f"
    files.write_atomic(target, "one")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk")))
    with pytest.raises(OSError):
        files.write_atomic(target, "two")
    assert target.read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


@pytest.mark.parametrize("changed", ["policy", "client_ca", "identity_snippet"])
def test_the_decision_cache_generation_changes_with_each_input(tmp_path, monkeypatch, changed):
    from scripts import config, gateway

    inputs = {name: tmp_path / name for name in ("policy", "client_ca", "identity_snippet")}
    for path in inputs.values():
        path.write_text("v1")
    monkeypatch.setattr(config, "VERIFIER_POLICY", inputs["policy"])
    monkeypatch.setattr(config, "CLIENT_ISSUING_CA", inputs["client_ca"])
    monkeypatch.setattr(gateway, "IDENTITY_SNIPPET", inputs["identity_snippet"])
    before = gateway.authz_cache_generation()
    assert gateway.authz_cache_generation() == before  # a pure function of the files
    inputs[changed].write_text("v2")
    assert gateway.authz_cache_generation() != before
