"""Metrics of the real stack: counted as audited, scraped only on the loopback listener.

A known mix of requests goes through nginx (mTLS, real tokens); the verifier's
counters must grow by exactly what its audit file recorded in the same window (by
decision, reason and status), summed over every gunicorn worker (multiprocess
mode). The API's counter grows, with nginx's decision-cache status as a label. The
PKI file's dates are those ``zt status --json`` reports. And no metric is ever
served on the public mTLS listener, whatever the caller holds.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import time
from collections import Counter

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from scripts import config
from scripts.pki import schedule, watcher
from scripts.services import auditsink, nginx, procs
from scripts.steps import wait_until
from tests.integration.conftest import run_zt
from tests.tokens import SERVER_CA, cert_of, fetch_token

HEALTH = f"http://{config.HOST}:{config.NGINX_HEALTH_PORT}"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(path: str) -> Samples:
    r = requests.get(f"{HEALTH}/metrics/{path}", timeout=10)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def by(found: Samples, metric: str, *labels: str) -> Counter:
    """The samples of ``metric`` summed by the values of ``labels``."""
    out: Counter = Counter()
    for (name, pairs), value in found.items():
        if name == metric:
            given = dict(pairs)
            out[tuple(given[label] for label in labels)] += value
    return out


def delta(after: Counter, before: Counter) -> Counter:
    return Counter({k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)})


def gateway(path: str, token: str | None, workload: str = "python-client") -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.get(
        f"{config.GATEWAY_URL}{path}",
        headers=headers,
        cert=cert_of(workload),
        verify=SERVER_CA,
        timeout=10,
    )


def audit_offset() -> int:
    return config.AUDIT_LOG.stat().st_size


def audit_since(offset: int) -> list[dict]:
    with open(config.AUDIT_LOG, "rb") as fh:
        fh.seek(offset)
        return [json.loads(line) for line in fh.read().splitlines() if line.strip()]


def test_decision_counters_grow_by_exactly_what_the_audit_file_recorded(stack):
    token = fetch_token("python-client")
    batch_token = fetch_token("batch-worker")
    marker = secrets.token_hex(6)
    mix = [  # (path, token, workload); every URI unique: no decision-cache hit
        *[(f"/api/resource?m={marker}&i={i}", token, "python-client") for i in range(3)],
        *[(f"/api/resource?m={marker}&n={i}", None, "python-client") for i in range(2)],
        *[(f"/api/admin/stats?m={marker}&i={i}", token, "python-client") for i in range(2)],
        (f"/nowhere?m={marker}", batch_token, "batch-worker"),
        (f"/api/resource?m={marker}&bad=1", "not.a.token", "batch-worker"),
        (f"/api/resource?m={marker}&b=1", batch_token, "batch-worker"),
    ]
    before = scrape("verifier")
    offset = audit_offset()
    statuses = [gateway(path, tok, who).status_code for path, tok, who in mix]
    after = scrape("verifier")
    audit = audit_since(offset)
    print(f"statuses {statuses}; audit reasons {Counter(x['reason'] for x in audit)}")

    mine = [x for x in audit if marker in x["path"]]
    assert len(mine) == len(mix), "every request of the mix was decided by the verifier"
    assert {x["reason"] for x in mine} >= {"ok", "token_missing", "realm_role_missing"}

    metric = "zt_verifier_decisions_total"
    counted = delta(
        by(after, metric, "decision", "reason", "status"),
        by(before, metric, "decision", "reason", "status"),
    )
    audited = Counter((x["decision"], x["reason"], str(x["status"])) for x in audit)
    assert counted == audited

    routes = delta(by(after, metric, "reason", "route"), by(before, metric, "reason", "route"))
    assert routes[("realm_role_missing", "/api/admin/**")] >= 2
    assert routes[("route_not_allowed", "none")] >= 1
    assert all(
        route in {"none", "/api/resource", "/api/admin/**", "/api/tenants/{org}/**"}
        for _, route in routes
    )

    denials = delta(
        by(after, "zt_verifier_denials_total", "workload", "reason"),
        by(before, "zt_verifier_denials_total", "workload", "reason"),
    )
    assert denials == Counter((x["cert_cn"], x["reason"]) for x in audit if x["decision"] == "deny")
    timed = delta(
        by(after, "zt_verifier_decision_seconds_count", "decision"),
        by(before, "zt_verifier_decision_seconds_count", "decision"),
    )
    assert timed == Counter((x["decision"],) for x in audit)
    assert by(after, "zt_verifier_jwks_keys")[()] >= 1
    age = by(after, "zt_verifier_jwks_age_seconds")[()]
    assert 0 <= age <= 900, f"JWKS age {age}"
    cache = by(after, "zt_verifier_token_cache_total", "result")
    assert cache[("hit",)] + cache[("miss",)] > 0


def test_the_api_counts_requests_with_nginxs_decision_cache_status(stack):
    token = fetch_token("python-client")
    path = f"/api/resource?m={secrets.token_hex(6)}"
    before = by(scrape("api"), "zt_api_requests_total", "status", "decision_cache")
    first, second = gateway(path, token), gateway(path, token)  # the same: a hit if caching
    assert first.status_code == second.status_code == 200
    grown = delta(by(scrape("api"), "zt_api_requests_total", "status", "decision_cache"), before)
    print(f"API requests by (status, decision_cache): {dict(grown)}")
    assert sum(v for (status, _), v in grown.items() if status == "200") >= 2
    if nginx.authz_cache_enabled():
        assert grown[("200", "MISS")] >= 1 and grown[("200", "HIT")] >= 1
    else:
        assert grown[("200", "none")] >= 2


def _status_json() -> dict:
    r = run_zt("status", "--json", timeout=120)
    return json.loads(r.stdout)


def test_certificate_and_crl_gauges_equal_what_zt_status_reports(stack):
    started = time.time()
    report = _status_json()
    # The CRL watcher rewrites the file every round: take one written after the report.
    wait_until(
        "a PKI metrics file newer than the status report",
        lambda: by(scrape("pki"), "zt_pki_metrics_generated_timestamp_seconds")[()] > started,
        3 * config.CRL_WATCH_SECONDS + 5,
        str(config.CRL_WATCHER.log_file),
    )
    found = scrape("pki")
    not_after = by(found, "zt_certificate_not_after_timestamp_seconds", "kind", "name", "serial")
    by_serial = {serial: value for (_, _, serial), value in not_after.items()}
    assert report["certificates"], "zt status lists certificates"
    for cert in report["certificates"]:
        expected = dt.datetime.fromisoformat(cert["not_after"]).timestamp()
        assert by_serial.get(cert["serial"]) == expected, cert
    assert len(by_serial) == len({c["serial"] for c in report["certificates"]})
    kinds = Counter(kind for kind, _, _ in not_after)
    assert kinds["client"] >= 2 and kinds["server"] == 3 and kinds["ca"] == 4
    crl_next = by(found, "zt_crl_next_update_timestamp_seconds", "issuer")
    assert (
        min(crl_next.values()) == dt.datetime.fromisoformat(report["crl"]["not_after"]).timestamp()
    )
    not_before = by(found, "zt_certificate_not_before_timestamp_seconds", "kind", "name", "serial")
    assert all(not_before[k] < not_after[k] for k in not_after)


@pytest.mark.parametrize("path", ["/metrics", "/metrics/verifier", "/metrics/api", "/metrics/pki"])
def test_no_metrics_on_the_public_mtls_listener_even_with_a_valid_certificate_and_token(
    stack, path
):
    r = gateway(path, fetch_token("python-client"))
    print(f"{path} on {config.GATEWAY_URL}: {r.status_code}")
    assert r.status_code in (401, 403, 404)
    assert "zt_" not in r.text and "# TYPE" not in r.text


def _verifier_folder() -> str:
    socket = os.readlink(config.VERIFIER_SOCKET)
    return str(config.METRICS_DIR / socket.removesuffix(".sock"))


def test_each_master_has_its_own_metrics_folder_and_old_ones_are_swept(stack):
    serving = {
        os.readlink(s).removesuffix(".sock") for s in (config.VERIFIER_SOCKET, config.API_SOCKET)
    }
    folders = {p.name for p in config.METRICS_DIR.iterdir() if p.is_dir()}
    assert folders == serving


def test_a_killed_worker_keeps_its_counts_and_drops_its_live_gauges(stack):
    before = by(scrape("verifier"), "zt_verifier_decisions_total")[()]
    master = procs.running(config.VERIFIER)
    assert master is not None
    workers = sorted(procs.children(master))
    assert len(workers) == config.GUNICORN_WORKERS
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)  # a worker of the stack this test session runs
    wait_until(
        "gunicorn replaced the killed verifier worker",
        lambda: (
            victim not in procs.children(master)
            and len(procs.children(master)) == config.GUNICORN_WORKERS
        ),
        30,
        str(config.VERIFIER.log_file),
    )

    def every_worker_holds_keys() -> bool:
        # livemin is the lowest over the gauge files there are: a new worker that has not
        # written its file yet is not in it (the wait passed at once, then its 0 showed).
        live = {f"gauge_livemin_{pid}.db" for pid in procs.children(master)}
        present = {p.name for p in os.scandir(_verifier_folder())}
        return live <= present and by(scrape("verifier"), "zt_verifier_jwks_keys")[()] >= 1

    wait_until(  # the new worker counts once it has loaded its keys (livemin: the lowest)
        "every live verifier worker holding keys",
        every_worker_holds_keys,
        30,
        str(config.VERIFIER.log_file),
    )
    gateway("/api/resource", fetch_token("python-client"))  # the new worker may serve it
    found = scrape("verifier")
    assert by(found, "zt_verifier_decisions_total")[()] >= before + 1
    live = {f"gauge_livemin_{pid}.db" for pid in procs.children(master)}
    gauges = {p.name for p in os.scandir(_verifier_folder()) if p.name.startswith("gauge_")}
    assert f"gauge_livemin_{victim}.db" not in gauges
    assert gauges <= live
    assert by(found, "zt_verifier_jwks_keys")[()] >= 1


@pytest.mark.parametrize(
    ("svc", "start"),
    [
        (config.CRL_WATCHER, watcher.start),
        (config.RENEWER, schedule.start),
        (config.AUDIT_SINK, auditsink.start),
    ],
    ids=["crl-watcher", "renewer", "audit-sink"],
)
def test_make_up_replaces_a_loop_service_running_other_code(stack, svc, start):
    """A loop service started from older code keeps doing what that code did (a watcher
    from before issue 18 never wrote the PKI metrics file) until make up replaces it."""
    before = procs.running(svc)
    assert before is not None
    procs.code_marker(svc).write_text("started from other code\n")
    start()
    after = procs.running(svc)
    assert after is not None and after != before
    assert procs.code_marker(svc).read_text().strip() == procs.code_fingerprint()
    start()  # the same code: left alone
    assert procs.running(svc) == after
