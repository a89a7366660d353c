"""Pure helpers of the bring-up and rotation scripts (no servers)."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from scripts import files
from scripts.pki import certs, rotation
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
    assert rotation.normalize_serial(given) == normal


@pytest.mark.parametrize("bad", ["", "zz", "12 34", "0x12"])
def test_a_malformed_serial_is_refused_with_a_clear_error(bad):
    with pytest.raises(StepFailed, match="not a certificate serial"):
        rotation.normalize_serial(bad)


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


GENERATION_FILES = ("policy.json", "client-issuing-ca.pem", "client-ca.crl.pem", "handler.py")


@pytest.mark.parametrize("changed", GENERATION_FILES)
def test_the_decision_cache_generation_changes_with_each_input_file(tmp_path, changed):
    from scripts.services import nginx

    paths = [tmp_path / name for name in GENERATION_FILES]
    for path in paths:
        path.write_text("v1")
    before = nginx.authz_cache_generation(paths, {"ZT_VERIFIER_ISSUER": "a"})
    assert nginx.authz_cache_generation(paths, {"ZT_VERIFIER_ISSUER": "a"}) == before
    (tmp_path / changed).write_text("v2")
    assert nginx.authz_cache_generation(paths, {"ZT_VERIFIER_ISSUER": "a"}) != before


def test_the_decision_cache_generation_changes_with_a_verifier_setting(tmp_path):
    from scripts.services import nginx

    settings = {"ZT_VERIFIER_ISSUER": "a", "ZT_VERIFIER_LEEWAY_SECONDS": "30"}
    before = nginx.authz_cache_generation([], settings)
    changed = {**settings, "ZT_VERIFIER_LEEWAY_SECONDS": "60"}
    assert nginx.authz_cache_generation([], changed) != before


def test_the_stack_generation_covers_policy_cas_crls_identity_headers_code_and_settings(
    monkeypatch,
):
    from scripts import config
    from scripts.services import apps, nginx

    monkeypatch.setattr(apps, "verifier_env", lambda: {"ZT_VERIFIER_ISSUER": "x"})
    files, settings = nginx.generation_inputs()
    expected = {
        config.INSTALLED_POLICY,
        config.CLIENT_ISSUING_CA,
        config.CLIENT_CRL,
        nginx.IDENTITY_SNIPPET,
        *(config.REPO / "verifier").glob("*.py"),
    }
    assert set(files) == expected
    assert settings == {"ZT_VERIFIER_ISSUER": "x"}
