"""The real Prometheus of `make up`: every target scraped, the shipped rules loaded, a
changed rule reloaded (a broken one refused), and one alert driven to firing.

The alert: a burst of refused tokens, sent through nginx with one valid client
certificate, must make ZtDenyBurstWorkload and ZtDenyBurstSource (>= 10 refusals in
1 min) `firing` in Prometheus's own /api/v1/alerts within the rule's `for:` plus a few
scrape and evaluation intervals.
"""

from __future__ import annotations

import json
import pwd
import shutil
import time
from pathlib import Path

import pytest
import requests

from scripts import config, tools
from scripts.pki import certs
from scripts.services import procs, prometheus
from scripts.steps import StepFailed

JOBS = {"prometheus", "openbao", "keycloak", *config.METRICS_PATHS}
BURST = 12  # requests with a bad token; the seed blog's threshold is 10 in 1 min
THRESHOLD = 10
FOR_SECONDS = 10  # the deny-burst rules' `for:` (prometheus/rules/security.yml)
# Scrape + evaluation (5 s each), `for:`, and slack for 2 shared cores.
FIRING_BOUND = FOR_SECONDS + 4 * config.PROMETHEUS_INTERVAL_SECONDS + 30


def _api(path: str, **params: str) -> dict:
    r = requests.get(f"{config.PROMETHEUS_URL}/api/v1/{path}", params=params, timeout=5)
    r.raise_for_status()
    return r.json()["data"]


def _targets() -> dict[str, dict]:
    return {t["labels"]["job"]: t for t in _api("targets")["activeTargets"]}


def _poll(what: str, check, bound: float, interval: float = 1.0):
    """``check()`` until it returns something truthy, at most ``bound`` seconds."""
    t0 = time.monotonic()
    while True:
        found = check()
        if found:
            return found, time.monotonic() - t0
        if time.monotonic() - t0 > bound:
            pytest.fail(f"{what}: not within {bound:.0f}s")
        time.sleep(interval)


def test_prometheus_listens_on_loopback_only_and_is_ready(stack):
    pid = procs.running(config.PROMETHEUS)
    assert pid is not None
    assert prometheus.ready()
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert f"--web.listen-address={config.HOST}:{config.PROMETHEUS_PORT}".encode() in cmdline
    assert f"--config.file={config.PROMETHEUS_CONF}".encode() in cmdline
    # ... and Debian's own service is not running (the install step fails if it is).
    assert tools.package_prometheus_pids() == []


def test_prometheus_runs_unprivileged_and_cannot_change_its_config(stack):
    pid = procs.running(config.PROMETHEUS)
    assert pid is not None
    status = Path(f"/proc/{pid}/status").read_text()
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    groups = next(line.split()[1:] for line in status.splitlines() if line.startswith("Groups:"))
    expected = pwd.getpwnam(config.PROMETHEUS_USER)
    assert set(map(int, uids)) == {expected.pw_uid}  # real, effective, saved, fs
    assert groups == []  # no supplementary group (not zt-gateway, not root's)
    folder = config.PROMETHEUS_DIR.stat()
    assert (folder.st_uid, folder.st_gid) == (0, expected.pw_gid)
    assert folder.st_mode & 0o777 == 0o750
    assert config.PROMETHEUS_CONF.stat().st_uid == 0
    assert config.PROMETHEUS_DATA.stat().st_uid == expected.pw_uid


def test_every_target_is_up(stack):
    def all_up() -> dict[str, dict] | None:
        targets = _targets()
        return targets if all(targets.get(j, {}).get("health") == "up" for j in JOBS) else None

    try:
        targets, took = _poll("every target up", all_up, 60)
    except pytest.fail.Exception:
        detail = {j: (t["health"], t["lastError"]) for j, t in _targets().items()}
        pytest.fail(f"targets not all up within 60s: {detail}")
    print(f"all {len(targets)} targets up after {took:.1f}s: {sorted(targets)}")
    assert set(targets) == JOBS
    up = {r["metric"]["job"]: r["value"][1] for r in _api("query", query="up")["result"]}
    assert up == dict.fromkeys(JOBS, "1")


def test_the_shipped_rules_are_loaded(stack):
    loaded = {r["name"] for g in _api("rules")["groups"] for r in g["rules"]}
    shipped = {
        line.split("alert:", 1)[1].strip()
        for path in prometheus.rule_files()
        for line in path.read_text().splitlines()
        if line.strip().startswith("- alert:")
    }
    assert loaded == shipped


def test_a_second_start_changes_nothing(stack):
    pid = procs.running(config.PROMETHEUS)
    assert prometheus.start() == "unchanged"
    assert procs.running(config.PROMETHEUS) == pid


def test_a_changed_rule_is_reloaded_and_a_broken_one_refused(stack, tmp_path, monkeypatch):
    pid = procs.running(config.PROMETHEUS)
    rules = tmp_path / "rules"
    shutil.copytree(prometheus.RULES_SOURCE, rules)
    (rules / "extra.yml").write_text(
        "groups:\n  - name: zt-test-extra\n    rules:\n"
        "      - alert: ZtTestExtra\n        expr: vector(1) == 0\n"
    )
    monkeypatch.setattr(prometheus, "RULES_SOURCE", rules)
    try:
        assert prometheus.start() == "reloaded (config or rules changed)"
        names = {r["name"] for g in _api("rules")["groups"] for r in g["rules"]}
        assert "ZtTestExtra" in names
        assert procs.running(config.PROMETHEUS) == pid  # reloaded, not restarted

        (rules / "extra.yml").write_text((rules / "extra.yml").read_text().replace("==", "= ="))
        with pytest.raises(StepFailed, match="promtool check rules"):
            prometheus.start()
        names = {r["name"] for g in _api("rules")["groups"] for r in g["rules"]}
        assert "ZtTestExtra" in names  # the running rules stay
    finally:
        monkeypatch.undo()
        assert prometheus.start() == "reloaded (config or rules changed)"
    names = {r["name"] for g in _api("rules")["groups"] for r in g["rules"]}
    assert "ZtTestExtra" not in names


def _burst_alerts(workload: str, source: str) -> dict[str, dict]:
    out = {}
    for alert in _api("alerts")["alerts"]:
        labels = alert["labels"]
        if labels["alertname"] == "ZtDenyBurstWorkload" and labels.get("workload") == workload:
            out["workload"] = alert
        if labels["alertname"] == "ZtDenyBurstSource" and labels.get("source") == source:
            out["source"] = alert
    return out


def _audit_denials_since(offset: int) -> list[dict]:
    with open(config.AUDIT_LOG, "rb") as fh:
        fh.seek(offset)
        lines = [json.loads(line) for line in fh.read().splitlines() if line.strip()]
    return [line for line in lines if line.get("decision") == "deny"]


def test_a_deny_burst_fires_the_deny_burst_alerts(stack):
    workload, source = "python-client", config.HOST
    # Earlier tests may have left a burst of their own: wait until it is over (bounded),
    # so the alert seen below is this burst's.
    _poll(
        "no deny-burst alert left from earlier tests",
        lambda: not _burst_alerts(workload, source) or None,
        150,
        interval=2.0,
    )
    cert, key = config.client_cert_paths(workload)
    assert certs.bundle_path(cert).exists()
    offset = config.AUDIT_LOG.stat().st_size
    statuses = []
    t0 = time.monotonic()
    with requests.Session() as s:
        s.cert = (str(cert), str(key))
        for i in range(BURST):
            r = s.get(
                f"{config.GATEWAY_URL}/api/resource",
                headers={"Authorization": f"Bearer not-a-token-{i}"},
                verify=str(config.SERVER_CA_BUNDLE),
                timeout=10,
            )
            statuses.append(r.status_code)
    sent = time.monotonic()
    denials = _audit_denials_since(offset)
    print(f"burst: {BURST} requests in {sent - t0:.1f}s, statuses {statuses}")
    print(f"verifier denials in the audit log: {len(denials)}")
    assert all(code in (401, 429) for code in statuses)
    assert len(denials) >= THRESHOLD  # a lockout may answer the rest with 429

    def firing() -> dict[str, dict] | None:
        found = _burst_alerts(workload, source)
        both = all(found.get(k, {}).get("state") == "firing" for k in ("workload", "source"))
        return found if both else None

    found, took = _poll("deny-burst alerts firing", firing, FIRING_BOUND)
    print(f"ZtDenyBurstWorkload and ZtDenyBurstSource firing {took:.1f}s after the burst")
    print(json.dumps(found["workload"], indent=1))
    assert float(found["workload"]["value"]) >= THRESHOLD
    assert found["workload"]["labels"]["severity"] == "warning"
