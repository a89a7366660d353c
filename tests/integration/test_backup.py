"""Backup, `zt clean`, restore, `zt up`: the same stack comes back (issue 17 item 6).

Against the real stack, as an operator runs it (``python -m scripts.zt``):

* ``zt backup`` writes one archive, 0600 in a 0700 folder;
* ``zt restore`` onto the live state folder is refused, naming ``make clean``, and
  leaves it untouched;
* after ``zt clean``, a truncated, a corrupted and a tampered archive are each refused
  with a clear error and leave no state folder behind;
* the real archive restores, and ``zt up`` (which ends with the demo call) brings back
  the same CAs (same serials in the server and client CA bundles), the same Keycloak
  clients (client ids and internal ids), the same realm signing keys; a
  certificate-bound token works through the gateway, and both Terraform roots plan
  No changes by hand (README);
* what the backup cannot hold (the RPO): a certificate issued after the backup is
  unknown to the restored OpenBao.

This test runs ``clean`` on the stack every other test uses, so it runs last
(``runs_last``, tests/conftest.py) and always leaves the stack up and healthy: if
anything fails after the clean, ``zt up`` builds a stack again. Backup and restore
times are printed, never asserted.
"""

from __future__ import annotations

import io
import json
import re
import stat
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509

from scripts import config
from scripts.files import read_json
from scripts.pki import certs
from scripts.services import openbao
from tests.attacks.conftest import KeycloakAdmin
from tests.integration.conftest import run_zt
from tests.integration.test_terraform_by_hand import assert_no_changes
from tests.pki_helpers import issue_throwaway
from tests.tokens import SERVER_CA, fetch_token, gateway_client

pytestmark = [pytest.mark.slow, pytest.mark.runs_last]


def ca_serials() -> dict[str, list[str]]:
    """Serial of every certificate in the server and client CA bundles on disk."""
    return {
        bundle.name: [
            certs.serial_hex(c) for c in x509.load_pem_x509_certificates(bundle.read_bytes())
        ]
        for bundle in (config.SERVER_CA_BUNDLE, config.CLIENT_CA_BUNDLE)
    }


def keycloak_clients() -> dict[str, str]:
    """clientId -> Keycloak's internal id, for every client of the realm (admin REST API)."""
    outputs = read_json(config.IDENTITY_OUTPUTS)
    admin = KeycloakAdmin(outputs["realm"], outputs["token_endpoint"]).session()
    r = admin.get(f"{config.KEYCLOAK_URL}/admin/realms/{outputs['realm']}/clients")
    r.raise_for_status()
    return {c["clientId"]: c["id"] for c in r.json()}


def signing_kids() -> set[str]:
    outputs = read_json(config.IDENTITY_OUTPUTS)
    r = requests.get(outputs["jwks_uri"], verify=SERVER_CA, timeout=10)
    r.raise_for_status()
    return {k["kid"] for k in r.json()["keys"] if k.get("use") == "sig"}


def snapshot_of_state() -> dict[str, bytes]:
    """The files a refused restore must leave as they were (keys, state, credentials)."""
    watched = [
        config.VAULT_UNSEAL,
        config.KEYCLOAK_ADMIN,
        config.TF_STATE / "pki.tfstate",
        config.TF_STATE / "identity.tfstate",
        config.SERVER_CA_BUNDLE,
        config.CLIENT_CA_BUNDLE,
    ]
    return {str(p): p.read_bytes() for p in watched}


def seconds(output: str, pattern: str) -> float | None:
    found = re.search(pattern, output)
    return float(found[1]) if found else None


def tampered(archive: Path, dest: Path) -> Path:
    """``archive`` with one state file's bytes changed and its manifest kept: a valid
    tar.gz whose member no longer matches its SHA-256."""
    with tarfile.open(archive, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            if info.name == "state/pki/server-ca.pem":
                data = data.replace(b"-----BEGIN", b"-----begin", 1)
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    dest.write_bytes(buf.getvalue())
    return dest


@pytest.fixture
def leaves_the_stack_up(stack: None) -> Iterator[None]:
    """Whatever happens, the next test finds a running, healthy stack."""
    try:
        yield
    finally:
        h = openbao.health()
        if not config.PKI_OUTPUTS.exists() or h is None or h.get("sealed"):
            up = run_zt("up", timeout=1200)
            print(up.stdout[-2000:])


def test_a_backup_restores_the_same_cas_realm_and_clients_after_a_clean(
    leaves_the_stack_up: None, tmp_path: Path
) -> None:
    before_serials = ca_serials()
    before_clients = keycloak_clients()
    before_kids = signing_kids()
    assert {"python-client", "batch-worker", "zerotrust-api"} <= set(before_clients)

    folder = tmp_path / "backups"  # made by zt backup: 0700
    archive = folder / "stack.tar.gz"
    t0 = time.monotonic()
    made = run_zt("backup", "--output", str(archive))
    backup_seconds = time.monotonic() - t0
    assert made.returncode == 0, made.stdout + made.stderr
    down = seconds(made.stdout, r"Keycloak was down for ([\d.]+)s")
    print(f"\nbackup: {backup_seconds:.1f}s, Keycloak down {down}s, {archive.stat().st_size} B")
    try:
        assert stat.S_IMODE(archive.stat().st_mode) == 0o600
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert fetch_token("python-client"), "Keycloak is back after the backup"

        # RPO: a certificate issued after the backup is not in the archive's OpenBao.
        (tmp_path / "later").mkdir()
        later = issue_throwaway(tmp_path / "later")
        mount = certs.pki_outputs()["mounts"]["client_issuing"]
        later_serial = certs.serial_hex(later.certificate)
        assert certs.issued(mount, later_serial) is not None

        # Onto the live state folder: refused, naming the fix, nothing changed.
        live = snapshot_of_state()
        refused = run_zt("restore", str(archive))
        assert refused.returncode == 1
        assert "make clean" in refused.stdout and str(config.STATE) in refused.stdout
        assert snapshot_of_state() == live

        cleaned = run_zt("clean")
        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        assert not config.STATE.exists()

        # Broken archives: a clear error each, and still no state folder.
        raw = archive.read_bytes()
        truncated = tmp_path / "truncated.tar.gz"
        truncated.write_bytes(raw[: len(raw) // 2])
        flipped = bytearray(raw)
        flipped[len(raw) // 2] ^= 0xFF
        corrupt = tmp_path / "corrupt.tar.gz"
        corrupt.write_bytes(bytes(flipped))
        for bad, expected in (
            (truncated, "corrupt or truncated"),
            (corrupt, "corrupt"),
            (tampered(archive, tmp_path / "tampered.tar.gz"), "does not match its SHA-256"),
        ):
            out = run_zt("restore", str(bad))
            assert out.returncode == 1, f"{bad.name}: {out.stdout}{out.stderr}"
            assert expected in out.stdout, f"{bad.name}: {out.stdout}{out.stderr}"
            assert "Traceback" not in out.stderr, out.stderr
            assert not config.STATE.exists(), f"{bad.name} left {config.STATE} behind"
            leftovers = list(config.STATE.parent.glob(f".{config.STATE.name}.restore-*"))
            assert not leftovers, leftovers

        t0 = time.monotonic()
        restored = run_zt("restore", str(archive))
        restore_seconds = time.monotonic() - t0
        assert restored.returncode == 0, restored.stdout + restored.stderr
        t0 = time.monotonic()
        up = run_zt("up", timeout=1200)
        up_seconds = time.monotonic() - t0
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        assert '"azp": "python-client"' in up.stdout, "make up ends with the demo call"
        print(f"restore: {restore_seconds:.1f}s, then zt up: {up_seconds:.1f}s")

        assert ca_serials() == before_serials
        assert keycloak_clients() == before_clients
        assert signing_kids() == before_kids
        r = gateway_client("python-client").request("GET", "/api/resource")
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["azp"] == answer["cert_cn"] == "python-client"
        assert_no_changes("backup, clean, restore, up")

        # Everything after the backup is lost: the later certificate is unknown.
        assert certs.issued(mount, later_serial) is None
        assert json.loads(config.PKI_OUTPUTS.read_text())["operator_approles"]["backup"]
    finally:  # each holds (part of) every secret of the stack
        for copy in [archive, *tmp_path.glob("*.tar.gz")]:
            copy.unlink(missing_ok=True)
