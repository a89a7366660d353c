"""The metrics of the verifier, the API and the PKI file, without servers.

The real stack (gunicorn's multiprocess mode, nginx's health listener, the CRL
watcher's file) is tests/integration/test_metrics.py; here: the label bounds, the
route label, the pure core free of prometheus_client, what one app counts, the
API's middleware, the gunicorn hooks and the PKI text.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import math
import threading
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from api.app import create_app as create_api
from api.metrics import NO_CACHE_STATUS, cache_label
from scripts import config
from scripts.pki import expiry_metrics, inventory
from tests import x509_helpers as xh
from tests.verifier_fixtures import required_config
from verifier import gunicorn_conf, jwks
from verifier.app import create_app
from verifier.errors import JwksUnavailable
from verifier.metrics import NO_ROUTE, jwks_age, route_label
from verifier.policy import SHIPPED_POLICY_PATH, load_policy
from verifier.promexport import OTHER, BoundedLabel

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str | bytes) -> Samples:
    """Every sample of a Prometheus text exposition, by (name, labels)."""
    raw = text.decode() if isinstance(text, bytes) else text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(raw)
        for s in family.samples
    }


def value(found: Samples, metric: str, /, **labels: str) -> float:
    return found.get((metric, frozenset(labels.items())), 0.0)


# --- label bounds ---------------------------------------------------------------


def test_a_bounded_label_keeps_its_first_values_and_counts_the_rest_as_other():
    bound = BoundedLabel(3)
    assert [bound(v) for v in ("a", "b", "c", "d", "a", "e")] == ["a", "b", "c", OTHER, "a", OTHER]
    assert len(bound) == 3


def test_a_bounded_label_never_exceeds_its_limit_under_threads():
    bound = BoundedLabel(256)
    seen: set[str] = set()
    lock = threading.Lock()

    def feed(start: int) -> None:
        for i in range(start, start + 500):
            label = bound(f"10.0.{i // 256}.{i % 256}")
            with lock:
                seen.add(label)

    threads = [threading.Thread(target=feed, args=(n * 500,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(bound) == 256
    assert len(seen - {OTHER}) == 256 and OTHER in seen


def test_a_bounded_label_needs_a_positive_limit():
    with pytest.raises(ValueError):
        BoundedLabel(0)


# --- the route label ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", "/api/resource", "/api/resource"),
        ("GET", "/api/resource?x=1", "/api/resource"),
        ("POST", "/api/resource", "/api/resource"),
        ("GET", "/api/admin/stats", "/api/admin/**"),
        ("DELETE", "/api/admin/a/b/c", "/api/admin/**"),
        ("GET", "/api/tenants/acme/resource/42", "/api/tenants/{org}/**"),
        ("DELETE", "/api/resource", NO_ROUTE),  # no rule covers the method
        ("GET", "/metrics", NO_ROUTE),
        ("GET", "/api/../admin", NO_ROUTE),  # not canonical: never the raw path
        ("GET", "/api/%61dmin/x", NO_ROUTE),
    ],
)
def test_the_route_label_is_a_policy_pattern_or_none_never_the_raw_path(method, path, route):
    assert route_label(load_policy(SHIPPED_POLICY_PATH), method, path) == route


# --- the pure core stays free of the metrics library ---------------------------------


def _imports_of(module: str, seen: set[str]) -> set[str]:
    """Every module ``module`` imports at top level, ours followed transitively."""
    path = config.REPO / (module.replace(".", "/") + ".py")
    if module in seen or not path.exists():
        return set()
    seen.add(module)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        for name in names:
            found.add(name)
            if name.startswith("verifier"):
                found |= _imports_of(name, seen)
    return found


@pytest.mark.parametrize("core", ["verifier.decision", "verifier.lambda_handler"])
def test_the_pure_core_never_imports_prometheus_client(core):
    imported = _imports_of(core, set())
    assert "verifier.decision" in imported or core == "verifier.decision"
    offending = sorted(
        n for n in imported if n.startswith("prometheus_client") or "metrics" in n.split(".")
    )
    assert not offending, f"{core} imports {offending}"


# --- one verifier app, counted ---------------------------------------------------------


@pytest.fixture
def make_app(tmp_path, pki, keys, now, crl_file):
    ca_file = tmp_path / "client-ca.pem"
    ca_file.write_text(pki.client_ca.pem)

    def make(**overrides):
        return create_app(
            {
                "TESTING": True,
                **required_config(ca_file, crl_file),
                "AUDIT_LOG": str(tmp_path / "audit.jsonl"),
                "KEY_SOURCE": keys,
                "CLOCK": lambda: now,
                **overrides,
            }
        )

    return make


@pytest.fixture
def headers(pki):
    def make(token=None, uri="/api/resource", addr="127.0.0.1", cert=None):
        sent = {
            "X-Client-Verify": "SUCCESS",
            "X-Client-Cert": quote(cert or pki.client.pem, safe=""),
            "X-Client-Subject-DN": "CN=python-client,O=zerotrust-test",
            "X-Original-Method": "GET",
            "X-Original-URI": uri,
            "X-Request-ID": "0123456789abcdef",
            "X-Client-Addr": addr,
        }
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        return sent

    return make


def test_every_decision_is_counted_as_its_audit_line_says(make_app, headers, make_token, tmp_path):
    client = make_app().test_client()
    token = make_token()
    sent = [
        headers(token),
        headers(token),
        headers(token, uri="/api/admin/stats"),
        headers(None),
        headers(make_token(exp=1)),
        headers(token, uri="/nowhere"),
    ]
    for h in sent:
        client.get("/_authz", headers=h)
    found = samples(client.get("/metrics").data)
    audit = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert {line["reason"] for line in audit} == {
        "ok",
        "realm_role_missing",
        "token_missing",
        "token_expired",
        "route_not_allowed",
    }
    by_reason: dict[str, int] = {}
    for line in audit:
        by_reason[line["reason"]] = by_reason.get(line["reason"], 0) + 1
    counted: dict[str, float] = {}
    for (name, labels), v in found.items():
        if name == "zt_verifier_decisions_total":
            reason = dict(labels)["reason"]
            counted[reason] = counted.get(reason, 0) + v
    assert counted == by_reason
    assert (
        value(
            found,
            "zt_verifier_decisions_total",
            decision="allow",
            reason="ok",
            status="200",
            route="/api/resource",
        )
        == 2
    )
    assert (
        value(
            found,
            "zt_verifier_decisions_total",
            decision="deny",
            reason="realm_role_missing",
            status="403",
            route="/api/admin/**",
        )
        == 1
    )
    assert (
        value(
            found,
            "zt_verifier_decisions_total",
            decision="deny",
            reason="route_not_allowed",
            status="403",
            route=NO_ROUTE,
        )
        == 1
    )
    assert (
        value(
            found,
            "zt_verifier_denials_total",
            workload="python-client",
            source="127.0.0.1",
            reason="token_missing",
        )
        == 1
    )
    assert value(found, "zt_verifier_decision_seconds_count", decision="allow") == 2
    assert value(found, "zt_verifier_decision_seconds_count", decision="deny") == 4
    # The first use of the token verified it, the second found it in the cache.
    assert value(found, "zt_verifier_token_cache_total", result="hit") >= 1
    assert value(found, "zt_verifier_token_cache_total", result="miss") >= 1
    assert value(found, "zt_verifier_jwks_keys") == 1
    assert value(found, "zt_verifier_jwks_age_seconds") == 0  # a static key set never ages


def test_denial_sources_past_the_bound_are_counted_as_other(make_app, headers, monkeypatch):
    monkeypatch.setattr("verifier.metrics.LABEL_VALUES_PER_PROCESS", 2)
    client = make_app().test_client()
    for addr in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"):
        client.get("/_authz", headers=headers(None, addr=addr))
    found = samples(client.get("/metrics").data)
    sources = {
        dict(labels)["source"]: v
        for (name, labels), v in found.items()
        if name == "zt_verifier_denials_total"
    }
    assert sources == {"10.0.0.1": 1, "10.0.0.2": 1, OTHER: 2}


def test_jwks_failures_and_key_age_are_counted_from_the_key_source(make_app, monkeypatch, now):
    answers: list[object] = [JwksUnavailable("connection refused")]

    def fetch(url, ca_bundle, timeout):
        raise answers[0]  # type: ignore[misc]

    monkeypatch.setattr(jwks, "fetch_jwks", fetch)
    keys = jwks.JWKSKeySource("https://kc.test/certs", cooldown=0)
    client = make_app(KEY_SOURCE=keys).test_client()
    keys.refresh_if_stale(now, wait=5)
    keys.refresh_if_stale(now, wait=5)
    found = samples(client.get("/metrics").data)
    assert value(found, "zt_verifier_jwks_fetch_failures_total") == 2
    assert value(found, "zt_verifier_jwks_keys") == 0
    assert math.isinf(value(found, "zt_verifier_jwks_age_seconds"))


def _families(text: str) -> list:
    return list(text_string_to_metric_families(text))


def test_the_jwks_age_is_now_minus_the_oldest_workers_last_success():
    gauge = "# TYPE zt_verifier_jwks_last_success_timestamp_seconds gauge\n"
    fetched = _families(gauge + "zt_verifier_jwks_last_success_timestamp_seconds 1000.0\n")
    (age,) = jwks_age(fetched, now=1300.0)
    assert (age.name, age.samples[0].value) == ("zt_verifier_jwks_age_seconds", 300.0)
    never = _families(gauge + "zt_verifier_jwks_last_success_timestamp_seconds 0.0\n")
    assert math.isinf(jwks_age(never, now=1300.0)[0].samples[0].value)
    assert jwks_age([], now=1300.0) == []


# --- the API --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "label"),
    [
        ("HIT", "HIT"),
        ("MISS", "MISS"),
        ("EXPIRED", "EXPIRED"),
        ("BYPASS", "BYPASS"),
        (None, NO_CACHE_STATUS),
        ("", NO_CACHE_STATUS),
        ("hit", NO_CACHE_STATUS),
        ("x" * 1000, NO_CACHE_STATUS),
    ],
)
def test_the_decision_cache_label_takes_only_nginxs_statuses(sent, label):
    assert cache_label(sent) == label


def test_the_api_counts_every_request_and_serves_metrics_unlogged(tmp_path):
    log = tmp_path / "api-requests.jsonl"
    client = create_api({"TESTING": True, "API_REQUEST_LOG": str(log)}).test_client()
    client.get("/api/resource", headers={"X-ZT-Decision-Cache": "HIT"})
    client.get("/api/resource", headers={"X-ZT-Decision-Cache": "MISS"})
    client.get("/nowhere", headers={"X-ZT-Decision-Cache": "evil"})
    logged = len(log.read_text().splitlines())
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert len(log.read_text().splitlines()) == logged == 3  # a scrape is not logged
    found = samples(answer.data)
    assert value(found, "zt_api_requests_total", status="200", decision_cache="HIT") == 1
    assert value(found, "zt_api_requests_total", status="200", decision_cache="MISS") == 1
    assert value(found, "zt_api_requests_total", status="404", decision_cache="none") == 1
    assert value(found, "zt_api_request_seconds_count") == 3


def test_the_api_never_answers_metrics_to_a_request_from_the_public_listener(tmp_path):
    """A request carrying the verifier's assertion came through the mTLS listener."""
    client = create_api({"TESTING": True}).test_client()
    answer = client.get("/metrics", headers={"X-Auth-Assertion": "v1.1.AAAA"})
    assert answer.status_code == 404
    assert b"zt_api_requests_total" not in answer.data


# --- gunicorn hooks --------------------------------------------------------------------


def test_a_master_starts_with_an_empty_metrics_folder(tmp_path, monkeypatch):
    folder = tmp_path / "verifier-abc"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"old life")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))

    class Cfg:
        uid = None
        gid = None

    class Server:
        cfg = Cfg()

    gunicorn_conf.on_starting(Server())
    assert folder.is_dir() and list(folder.iterdir()) == []
    assert folder.stat().st_mode & 0o777 == 0o700


def test_a_dead_workers_live_gauges_are_dropped_and_its_counters_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for name in ("gauge_livemin_77.db", "counter_77.db", "gauge_livemin_78.db"):
        (tmp_path / name).write_bytes(b"")

    class Worker:
        pid = 77

    gunicorn_conf.child_exit(None, Worker())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_77.db", "gauge_livemin_78.db"]


def test_the_hooks_do_nothing_without_a_multiprocess_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    gunicorn_conf.on_starting(None)
    gunicorn_conf.child_exit(None, None)


# --- the PKI file ------------------------------------------------------------------------


def _installed(kind: str, name: str, days: int) -> inventory.Installed:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = xh.build_cert(
        name, xh.new_key(), not_before=start, not_after=start + dt.timedelta(days=days)
    )
    return inventory.Installed(f"{kind}/{name}", kind, name, cert)


class _Fixed(Collector):
    def __init__(self, families: list) -> None:
        self.families = families

    def collect(self):
        return self.families


def _render(families: list) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))
    return generate_latest(registry)


def test_every_certificate_has_its_dates_by_kind_name_and_serial():
    items = [_installed("client", "python-client", 1), _installed("ca", "Root", 3650)]
    found = samples(_render(expiry_metrics.certificate_families([*items, items[0]])))
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()
    serial = expiry_metrics.certs.serial_hex(items[0].cert)
    labels = {"kind": "client", "name": "python-client", "serial": serial}
    assert value(found, "zt_certificate_not_before_timestamp_seconds", **labels) == start
    assert value(found, "zt_certificate_not_after_timestamp_seconds", **labels) == start + 86400
    assert len(found) == 4  # two certificates, two gauges; the duplicate once


def test_two_crls_of_issuers_with_one_name_are_two_series():
    key = xh.new_key()
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    crls = [
        x509.CertificateRevocationListBuilder()
        .issuer_name(xh.name("Issuing CA"))
        .last_update(start)
        .next_update(start + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
        for days in (3, 4)
    ]
    found = samples(_render(expiry_metrics.crl_families(crls)))
    nexts = sorted(
        v for (name, _), v in found.items() if name == "zt_crl_next_update_timestamp_seconds"
    )
    assert nexts == [start.timestamp() + 3 * 86400, start.timestamp() + 4 * 86400]
    assert value(found, "zt_crl_this_update_timestamp_seconds", issuer="Issuing CA") == (
        start.timestamp()
    )


def test_the_pki_file_renders_as_valid_prometheus_text(tmp_path, monkeypatch):
    monkeypatch.setattr(inventory.config, "PKI_DIR", tmp_path / "pki")
    monkeypatch.setattr(inventory, "CA_BUNDLES", ())
    monkeypatch.setattr(expiry_metrics.crl, "load", lambda: [])
    out = tmp_path / "metrics" / "pki.prom"
    expiry_metrics.write(out)
    found = samples(out.read_bytes())
    assert value(found, "zt_pki_metrics_generated_timestamp_seconds") > 0
    assert out.stat().st_mode & 0o777 == 0o644
    assert Path(out).read_text().endswith("\n")
