"""`zt systemd-units`: units systemd accepts, running what `make up` runs, no secret in them."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from scripts import config
from scripts.services import keycloak, systemd
from tests.integration.conftest import run_zt

ANALYZE = shutil.which("systemd-analyze")


def _verify(paths) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ANALYZE, "verify", "--man=no", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def units(stack, tmp_path):
    r = run_zt("systemd-units", "--out", str(tmp_path), timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return sorted(tmp_path.iterdir())


def test_systemd_analyze_verify_accepts_every_unit_without_a_warning(units):
    assert ANALYZE, "systemd-analyze is missing (Debian's systemd package)"
    names = {p.name for p in units}
    assert names == {f"zt-{svc.name}.service" for svc in config.SERVICES} | {"zt.target"}
    r = _verify(units)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "", r.stderr


def test_the_check_would_catch_a_broken_unit(units, tmp_path):
    broken = tmp_path / "zt-broken.service"
    text = (tmp_path / "zt-nginx.service").read_text().replace("Restart=", "Restartt=")
    broken.write_text(text)
    assert "Unknown key" in _verify([broken]).stderr


def test_units_run_the_launcher_with_0600_specs_and_no_secret(units):
    password = keycloak.admin_credentials()["password"]
    for path in units:
        text = path.read_text()
        assert password not in text
        if path.suffix != ".service":
            continue
        assert "Restart=always" in text
        spec_file = Path(text.split("scripts.services.launch ", 1)[1].split()[0])
        assert spec_file.parent == systemd.SPECS
        mode = stat.S_IMODE(spec_file.stat().st_mode)
        assert mode == 0o600, (spec_file, oct(mode))
        spec = json.loads(spec_file.read_text())
        assert spec["argv"], spec_file
    keycloak_spec = json.loads((systemd.SPECS / "keycloak.json").read_text())
    assert keycloak_spec["env"]["KC_BOOTSTRAP_ADMIN_PASSWORD"] == password
    assert keycloak_spec["mode"] == "child"
    vault_spec = json.loads((systemd.SPECS / "vault.json").read_text())
    assert vault_spec["unseal"]["key_file"] == str(config.VAULT_UNSEAL)
