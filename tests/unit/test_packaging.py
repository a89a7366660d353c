"""The project is installable and its `zt` entry point is the ops tool's main()."""

from __future__ import annotations

import importlib
import tomllib

from scripts import config


def _pyproject() -> dict:
    return tomllib.loads((config.REPO / "pyproject.toml").read_text())


def test_the_zt_entry_point_is_the_cli_main():
    target = _pyproject()["project"]["scripts"]["zt"]
    module, _, function = target.partition(":")
    assert callable(getattr(importlib.import_module(module), function))
    assert module == "scripts.cli"


def test_dependencies_come_from_the_pinned_requirements_file():
    project = _pyproject()
    assert "dependencies" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["dependencies"] == {
        "file": ["requirements.txt"]
    }
    pins = [
        line.split("#")[0].strip()
        for line in (config.REPO / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert pins and all("==" in pin for pin in pins), "every requirement is pinned"


def test_the_client_never_imports_the_ops_tool():
    for path in (config.REPO / "client").glob("*.py"):
        text = path.read_text()
        assert "import scripts" not in text and "from scripts" not in text, path
