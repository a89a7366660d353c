"""Keycloak's trust in workload certificates (RFC 8705) and the end of client secrets.

No server: ``keycloak.ensure_truststore`` runs the JDK's keytool on a throw-away root;
``terraform._holds_client_secret`` reads a state document.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from scripts import config, terraform
from scripts.files import read_json
from scripts.services import keycloak
from scripts.steps import StepFailed
from tests.x509_helpers import build_cert, cert_pem, new_key


@pytest.fixture
def trust_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(config, "KEYCLOAK_DIR", tmp_path / "keycloak")
    monkeypatch.setattr(config, "KEYCLOAK_TRUSTSTORE", tmp_path / "keycloak" / "trust.p12")
    monkeypatch.setattr(
        config, "KEYCLOAK_TRUSTSTORE_PASSWORD", tmp_path / "keycloak" / "trust.json"
    )
    monkeypatch.setattr(config, "CLIENT_ROOT_CA", tmp_path / "client-root-ca.pem")
    return tmp_path


def _root(path: Path, cn: str) -> str:
    pem = cert_pem(build_cert(cn, new_key(), ca=True))
    path.write_text(pem)
    return pem


def _entries() -> str:
    """keytool's listing of the trust store, with the generated password."""
    password = read_json(config.KEYCLOAK_TRUSTSTORE_PASSWORD)["password"]
    listing = subprocess.run(
        [
            shutil.which("keytool") or "keytool",
            "-list",
            "-v",
            "-keystore",
            str(config.KEYCLOAK_TRUSTSTORE),
            "-storetype",
            "PKCS12",
            "-storepass",
            password,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stdout + listing.stderr
    return listing.stdout


def test_the_trust_store_holds_the_client_root_alone_as_a_trusted_entry(trust_paths):
    _root(config.CLIENT_ROOT_CA, "Test Client Root")
    keycloak.ensure_truststore()
    listing = _entries()
    assert "Your keystore contains 1 entry" in listing
    assert "trustedCertEntry" in listing
    assert "CN=Test Client Root" in listing
    assert config.KEYCLOAK_TRUSTSTORE_PASSWORD.stat().st_mode & 0o077 == 0


def test_the_trust_store_is_rebuilt_only_when_the_root_changes(trust_paths):
    _root(config.CLIENT_ROOT_CA, "First Root")
    keycloak.ensure_truststore()
    before = config.KEYCLOAK_TRUSTSTORE.read_bytes()
    keycloak.ensure_truststore()
    assert config.KEYCLOAK_TRUSTSTORE.read_bytes() == before  # unchanged root: same file
    _root(config.CLIENT_ROOT_CA, "Second Root")
    keycloak.ensure_truststore()
    assert "CN=Second Root" in _entries()
    assert "CN=First Root" not in _entries()


def test_a_root_keytool_refuses_leaves_the_current_store_in_place(trust_paths):
    _root(config.CLIENT_ROOT_CA, "Good Root")
    keycloak.ensure_truststore()
    before = config.KEYCLOAK_TRUSTSTORE.read_bytes()
    config.CLIENT_ROOT_CA.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    with pytest.raises(StepFailed, match="keytool could not make Keycloak's trust store"):
        keycloak.ensure_truststore()
    assert config.KEYCLOAK_TRUSTSTORE.read_bytes() == before
    assert not list(config.KEYCLOAK_DIR.glob(".truststore-*"))  # no temp folder left


def test_the_keycloak_fingerprint_follows_the_client_root(trust_paths):
    _root(config.CLIENT_ROOT_CA, "Root A")
    first = keycloak.fingerprint()
    assert keycloak.fingerprint() == first
    _root(config.CLIENT_ROOT_CA, "Root B")
    assert keycloak.fingerprint() != first


def test_keycloak_is_started_requesting_certificates_with_the_root_store_and_local_caches():
    from scripts import tools

    argv = keycloak.argv()
    assert "--https-client-auth=request" in tools.KEYCLOAK_BUILD_OPTIONS
    assert "--https-management-client-auth=none" in tools.KEYCLOAK_BUILD_OPTIONS
    assert f"--https-trust-store-file={config.KEYCLOAK_TRUSTSTORE}" in argv
    assert "--cache=local" in argv
    assert not [a for a in argv if "password" in a.lower()]  # the store's password: env only


def _state(*clients: dict) -> dict:
    return {
        "resources": [
            {"type": "keycloak_openid_client", "instances": [{"attributes": c}]} for c in clients
        ]
        + [
            {
                "type": "vault_approle_auth_backend_role_secret_id",
                "instances": [
                    {"attributes": {"secret_id": "s", "client_secret": "not a keycloak client"}}
                ],
            }
        ]
    }


@pytest.mark.parametrize(
    ("clients", "expected"),
    [
        ((), False),
        (({"client_id": "a", "client_secret": None},), False),
        (({"client_id": "a", "client_secret": ""},), False),
        (
            ({"client_id": "a", "client_secret": None}, {"client_id": "b", "client_secret": "x"}),
            True,
        ),
    ],
)
def test_a_state_holds_a_client_secret_only_if_a_keycloak_client_has_one(clients, expected):
    assert terraform._holds_client_secret(_state(*clients)) is expected
