"""A bare PATH without /usr/sbin (where Debian puts nginx) is a clear error, not a traceback."""

from __future__ import annotations

import pytest

from scripts import tools
from scripts.steps import StepFailed


def test_nginx_in_sbin_but_sbin_not_on_path_names_the_fix(monkeypatch, tmp_path) -> None:
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    (sbin / "nginx").write_text("")
    monkeypatch.setattr(tools, "SBIN", (sbin,))
    monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")
    with pytest.raises(StepFailed) as e:
        tools.install_nginx()
    assert str(e.value) == (
        f'nginx is installed in {sbin}, which is not on PATH; run `export PATH="$PATH:{sbin}"` '
        "and re-run"
    )


def test_sbin_on_path_is_fine(monkeypatch, tmp_path) -> None:
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    (sbin / "nginx").write_text("")
    monkeypatch.setattr(tools, "SBIN", (sbin,))
    monkeypatch.setenv("PATH", f"/usr/bin:{sbin}")
    tools.require_sbin_on_path()
