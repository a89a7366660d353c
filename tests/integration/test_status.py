"""`zt status` tells the truth: health asked of each service, expiries, exit codes;
nginx's unauthenticated /healthz reflects the verifier and the API behind it."""

from __future__ import annotations

import datetime as dt
import json
import time

import requests

from scripts import config, status
from scripts.pki import schedule
from scripts.services import procs, supervisor
from tests.attacks.conftest import restore_stack
from tests.faults.conftest import wait_for
from tests.integration.conftest import run_zt


def _status_json() -> tuple[int, dict]:
    r = run_zt("status", "--json", timeout=60)
    return r.returncode, json.loads(r.stdout)


def test_status_json_names_every_service_certificate_and_the_crl(stack):
    code, report = _status_json()
    assert code == 0, report["problems"]
    assert report["healthy"] is True
    assert report["supervisor"]["running"] is True
    services = {s["name"]: s for s in report["services"]}
    assert set(services) == {svc.name for svc in config.SERVICES}
    for name, s in services.items():
        assert s["state"] == "RUNNING", name
        assert s["healthy"] is True, (name, s["detail"])
        assert s["pid"] == procs.running(next(v for v in config.SERVICES if v.name == name))
    assert "jwks_keys" in services["verifier"]["detail"]
    whats = {c["what"] for c in report["certificates"]}
    assert {"client/python-client", "server/nginx", "server CA", "client CA"} <= whats
    crl = report["crl"]
    next_update = dt.datetime.fromisoformat(crl["not_after"])
    assert next_update > dt.datetime.now(dt.UTC)
    assert 0 < crl["life_left"] <= 1
    for entry in [*report["certificates"], crl]:
        assert entry["warning"] == (entry["seconds_left"] > 0 and entry["life_left"] < 1 / 3)


def test_status_exits_1_and_names_a_stopped_service_then_0_when_it_is_back(stack):
    assert procs.stop(config.CRL_WATCHER)
    try:
        code, report = _status_json()
        assert code == 1
        assert report["healthy"] is False
        assert any(p.startswith("crl-watcher:") for p in report["problems"]), report["problems"]
        text = run_zt("status", timeout=60)
        assert text.returncode == 1
        assert "UNHEALTHY" in text.stdout
    finally:
        assert restore_stack() == 0
    assert _status_json()[0] == 0


def test_status_exits_1_when_supervisord_is_gone_even_if_services_run(stack):
    report = status.collect()
    assert report.healthy
    # Not killing it (test_bringup does): only its pid file is hidden for a moment.
    pid_file = supervisor.PID_FILE
    saved = pid_file.read_text()
    pid_file.write_text("999999999\n")
    try:
        report = status.collect()
        assert not report.healthy
        assert report.problems[0].startswith("supervisord: not running")
    finally:
        pid_file.write_text(saved)
    assert status.collect().healthy


def test_nginx_healthz_is_unauthenticated_and_reflects_the_api(stack):
    r = requests.get(config.NGINX_HEALTH_URL, timeout=5)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok"
    assert (
        requests.get(
            config.NGINX_HEALTH_URL.replace("/healthz", "/api/resource"), timeout=5
        ).status_code
        == 404
    )
    assert procs.stop(config.API)
    try:
        r = requests.get(config.NGINX_HEALTH_URL, timeout=5)
        assert r.status_code == 503, r.text
        assert r.json() == {"status": "unhealthy"}
        code, report = _status_json()
        assert code == 1
        unhealthy = {s["name"] for s in report["services"] if not s["healthy"]}
        assert {"api", "nginx"} <= unhealthy
    finally:
        assert restore_stack() == 0
    assert wait_for(lambda: requests.get(config.NGINX_HEALTH_URL, timeout=5).status_code == 200, 15)


def test_nginx_listens_on_loopback_only(stack):
    listens = [
        line.split()[1].rstrip(";")
        for line in config.NGINX_CONF.read_text().splitlines()
        if line.strip().startswith("listen ")
    ]
    assert f"{config.HOST}:{config.NGINX_HEALTH_PORT}" in listens
    # Besides loopback, only the lockout hop's unix socket (a folder only nginx's
    # workers may enter: tests/attacks/test_direct_socket_access.py).
    hop = f"unix:{config.LOCKOUT_HOP_SOCKET}"
    assert all(addr.startswith("127.") or addr == hop for addr in listens), listens


def test_renewer_health_judges_overdue_by_the_interval_in_force_now(stack):
    """A run recorded under short lifetimes (every 15 s) must not make the renewer
    overdue once the default lifetimes are back (every 600 s); a run older than two
    of today's intervals must."""
    saved = config.RENEW_STATUS.read_bytes()
    record = json.loads(saved)
    interval = schedule.auto_interval()
    try:
        for ago, healthy in ((200.0, True), (2 * interval + 120, False)):
            at = time.time() - ago
            config.RENEW_STATUS.write_text(
                json.dumps({**record, "started_at": at, "interval_seconds": 15.0, "ok": True})
            )
            renewer = status.service_status(config.RENEWER)
            assert renewer.healthy is healthy, (ago, renewer.detail)
    finally:
        config.RENEW_STATUS.write_bytes(saved)
