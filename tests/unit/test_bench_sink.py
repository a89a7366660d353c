"""A verifier the bench runs itself never writes to the stack's audit trail.

Its lines in the stack's second sink (a second chain interleaved with the stack's)
made `zt audit verify` report the stack's own lines as edited after any `make bench`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from bench import config as bench_config
from scripts import config


def test_bench_verifier_env_has_its_own_audit_log_and_sink(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(
        bench_config.apps,
        "verifier_env",
        lambda: {
            "ZT_VERIFIER_AUDIT_LOG": str(config.AUDIT_LOG),
            "ZT_VERIFIER_AUDIT_SINK_SOCKET": str(config.AUDIT_SINK_SOCKET),
            "ZT_VERIFIER_ISSUER": "https://issuer",
        },
    )
    env = bench_config.verifier_env(tmp_path / "audit.log", tmp_path / "drain.sock")
    assert env == {
        "ZT_VERIFIER_AUDIT_LOG": str(tmp_path / "audit.log"),
        "ZT_VERIFIER_AUDIT_SINK_SOCKET": str(tmp_path / "drain.sock"),
        "ZT_VERIFIER_ISSUER": "https://issuer",
    }


def test_no_bench_module_builds_a_verifier_from_the_production_env() -> None:
    """Every verifier the bench builds goes through ``bench.config.verifier_env``: no other
    bench module calls ``apps.verifier_env()`` (the production env names the stack's sink)."""
    offenders = [
        f"{path.name}:{node.lineno}"
        for path in sorted((config.REPO / "bench").glob("*.py"))
        if path.name != "config.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "verifier_env"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "apps"
    ]
    assert offenders == []
