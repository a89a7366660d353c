"""Keycloak and OpenBao log for machines: one JSON object per line (issue 18).

OpenBao prints its configuration banner as plain text at start (before its logger
exists); every line after it, and every line of Keycloak's, is a JSON object.
"""

from __future__ import annotations

import json

from scripts import config


def _json_lines(text: str) -> tuple[list[dict], list[str]]:
    parsed, other = [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            parsed.append(json.loads(line))
        except ValueError:
            other.append(line)
    return parsed, other


def test_keycloak_logs_json_lines(stack):
    lines = config.KEYCLOAK.log_file.read_text(errors="replace").splitlines()[-200:]
    parsed, _ = _json_lines("\n".join(lines))
    assert parsed, f"no JSON line in the last 200 of {config.KEYCLOAK.log_file}"
    assert {"timestamp", "level", "loggerName", "message"} <= set(parsed[-1])
    assert any("Keycloak" in p["message"] and "started" in p["message"] for p in parsed)


def test_openbao_logs_json_lines(stack):
    text = config.VAULT.log_file.read_text(errors="replace")
    parsed, _ = _json_lines(text)
    assert parsed, f"no JSON line in {config.VAULT.log_file}"
    assert {"@level", "@message", "@timestamp"} <= set(parsed[-1])
    assert any("unsealed" in p.get("@message", "") for p in parsed)
