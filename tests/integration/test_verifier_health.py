"""The verifier's ``/healthz`` on the real stack tells the truth (issue 17).

Asked over its unix socket (``.state/run/verifier.sock``), as the bring-up's
readiness probe asks it: 200 with Keycloak's keys loaded and fresh and the
audit log writable, naming the worker that answered; 503 naming the audit log
when the workers (``zt-service``) cannot write it. A probe is not a decision:
it writes no audit line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts import config
from scripts.services import unixhttp

PROBES = 8


def _health() -> tuple[int, dict[str, Any]]:
    answer = unixhttp.request(config.VERIFIER_SOCKET, "GET", "/healthz")
    return answer.status, json.loads(answer.body)


def _is_verifier_process(pid: int) -> bool:
    """``pid`` runs the verifier's gunicorn (its command line, as any master or worker)."""
    try:
        return b"verifier.app" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.fixture
def audit_log_read_only(stack: None) -> Iterator[None]:
    """The audit log made read-only for its owner (the workers' user) for one test."""
    mode = config.AUDIT_LOG.stat().st_mode & 0o777
    config.AUDIT_LOG.chmod(0o400)
    try:
        yield
    finally:
        config.AUDIT_LOG.chmod(mode)


def test_the_verifiers_healthz_is_200_with_fresh_keycloak_keys_from_every_worker(stack):
    size = config.AUDIT_LOG.stat().st_size
    answers = [_health() for _ in range(PROBES)]
    for status, body in answers:
        print(status, body)
        assert status == 200
        assert body["status"] == "ok" and body["problems"] == []
        assert body["jwks_keys"] > 0
        assert body["jwks_age_seconds"] <= body["jwks_max_staleness_seconds"]
        assert body["audit_log_writable"] is True
        assert _is_verifier_process(body["pid"])
    assert config.AUDIT_LOG.stat().st_size == size  # probes wrote no audit line


def test_the_verifiers_healthz_is_503_when_its_workers_cannot_write_the_audit_log(
    audit_log_read_only,
):
    if os.geteuid() != 0:
        pytest.fail("needs root, as `make test` runs: the workers' files belong to zt-service")
    status, body = _health()
    assert status == 503
    assert body["status"] == "unhealthy"
    assert body["audit_log_writable"] is False
    assert [p for p in body["problems"] if str(config.AUDIT_LOG) in p], body["problems"]
    assert isinstance(body["pid"], int)  # still names the worker


def test_the_verifiers_healthz_is_200_again_once_the_audit_log_is_writable(stack):
    status, body = _health()
    assert (status, body["problems"]) == (200, [])
