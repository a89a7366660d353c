"""``zt status``: what runs, whether it is healthy, and what expires when.

One report, printed for people or as JSON (``--json``) for machines, and an exit code a
monitor can use: 0 when every service is running and healthy and nothing has expired,
1 otherwise. A certificate or CRL with less than a third of its life left is a
*warning* (listed, exit 0): renewal acts at two thirds (``zt renew``), so a warning
means renewal is late and someone should look before it becomes an outage.

Health is asked of each service, not inferred from a pid:

* vault: ``sys/health`` says initialised and unsealed;
* keycloak: ``/health/ready`` on the management port;
* verifier, api: ``/healthz`` over their unix socket answers 200 (the verifier's
  says keys loaded and fresh, audit log writable);
* nginx: its health listener (``config.NGINX_HEALTH_URL``) answers 200, which needs
  the verifier and the API behind it;
* crl-watcher: its last round succeeded within three intervals;
* renewer: its last run succeeded and the next one is not overdue;
* prometheus: its ``/-/ready`` answers 200.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import requests

from scripts import config
from scripts.pki import certs, crl, inventory, schedule, watcher
from scripts.services import (
    auditsink,
    baonodes,
    edge,
    keycloak,
    keycloak_cluster,
    lockout,
    openbao,
    postgres,
    procs,
    prometheus,
    supervisor,
    unixhttp,
)
from scripts.steps import say

WARN_BELOW = 1 / 3  # fraction of life left under which a certificate or CRL is a warning


@dataclass
class ServiceStatus:
    name: str
    state: str  # supervisord's (RUNNING, BACKOFF, …) or "stopped"
    pid: int | None
    healthy: bool
    detail: str


@dataclass
class Expiry:
    what: str  # "client/python-client", "client CRL", "server CA", …
    subject: str
    issuer: str
    serial: str
    not_after: str  # ISO 8601, UTC
    seconds_left: float
    life_left: float  # fraction of its whole validity still ahead
    warning: bool
    expired: bool


@dataclass
class Report:
    healthy: bool
    supervisor: dict
    services: list[ServiceStatus]
    certificates: list[Expiry]
    crl: Expiry | None
    audit: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


SUMMARY_FIELDS = ("status", "jwks_keys", "jwks_age_seconds")  # of a /healthz body


def _socket_health(sock: Path) -> tuple[bool, str]:
    if not sock.exists():
        return False, f"no socket {sock}"
    try:
        answer = unixhttp.request(sock, "GET", "/healthz")
    except OSError as e:
        return False, f"/healthz unreachable: {e}"
    try:
        body = json.loads(answer.body)
    except ValueError:
        body = {}
    # The problems when there are any, else what says it can decide (keys, their age).
    shown = SUMMARY_FIELDS if not body.get("problems") else ("problems",)
    summary = ", ".join(f"{k}={body[k]}" for k in shown if body.get(k) not in (None, []))
    return answer.status == 200, f"/healthz {answer.status}" + (f" ({summary})" if summary else "")


def _vault_health() -> tuple[bool, str]:
    line = openbao.seal_status_line()
    return line.startswith("unsealed"), line


def _keycloak_health() -> tuple[bool, str]:
    return (True, "ready") if keycloak.ready() else (False, "/health/ready not UP")


def _nginx_health() -> tuple[bool, str]:
    try:
        r = requests.get(config.NGINX_HEALTH_URL, timeout=3)
    except requests.RequestException as e:
        return False, f"{config.NGINX_HEALTH_URL} unreachable: {type(e).__name__}"
    return r.status_code == 200, f"{config.NGINX_HEALTH_URL} {r.status_code}"


def _watcher_health() -> tuple[bool, str]:
    last = watcher.last_check()
    if last is None:
        return False, "no check yet"
    ago = time.time() - float(last["checked_at"])
    fresh = ago <= 3 * config.CRL_WATCH_SECONDS + 5
    ok = bool(last["ok"]) and fresh
    state = "ok" if last["ok"] else "FAILING"
    return ok, f"last check {ago:.0f}s ago, {state}: {last['outcome']}"


def _renewer_health() -> tuple[bool, str]:
    """Its last run succeeded and the next one is not overdue (a run takes seconds; a
    failed run is retried at the next interval, so one failure is already unhealthy).
    Overdue is judged by the interval in force now (``auto``: it follows the lifetimes
    in play, so a run recorded under shorter lifetimes is not held against it)."""
    last = schedule.last_run()
    if last is None:
        return False, "no run yet"
    ago = time.time() - float(last["started_at"])
    interval = schedule.auto_interval()
    overdue = ago > 2 * interval + 60
    did = ", ".join(last["actions"]) or "nothing due"
    state = "ok" if last["ok"] else f"FAILED: {last['error']}"
    when = f"last run {ago:.0f}s ago (every {interval:.0f}s)"
    return bool(last["ok"]) and not overdue, f"{when}, {state}; {did}" + (
        "; OVERDUE" if overdue else ""
    )


HEALTH: dict[str, Callable[[], tuple[bool, str]]] = {
    config.VAULT.name: _vault_health,
    config.KEYCLOAK.name: _keycloak_health,
    config.VERIFIER.name: lambda: _socket_health(config.VERIFIER_SOCKET),
    config.API.name: lambda: _socket_health(config.API_SOCKET),
    config.NGINX.name: _nginx_health,
    config.CRL_WATCHER.name: _watcher_health,
    config.RENEWER.name: _renewer_health,
    config.PROMETHEUS.name: lambda: (
        (True, f"{prometheus.READY_URL} 200")
        if prometheus.ready()
        else (False, f"{prometheus.READY_URL} not ready")
    ),
    config.AUDIT_SINK.name: auditsink.health,
    # the HA profile's (docs/scaling.md)
    config.POSTGRES.name: postgres.health,
    config.EDGE.name: lambda: (
        all(procs.port_in_use(listen) for listen, _ in edge.routes().values()),
        "listening on " + ", ".join(str(listen) for listen, _ in edge.routes().values()),
    ),
    **{node.name: partial(keycloak_cluster.health, node) for node in config.KEYCLOAK_NODES},
    **{node.name: lambda n=node: baonodes.node_health(n) for node in baonodes.NODES},
}


def service_status(svc: config.Service) -> ServiceStatus:
    pid = procs.running(svc)
    sup = supervisor.info(procs.program(svc))
    state = sup["statename"] if sup else ("RUNNING (unsupervised)" if pid else "stopped")
    if pid is None:
        return ServiceStatus(svc.name, state, None, False, "not running")
    healthy, detail = HEALTH[svc.name]()
    return ServiceStatus(svc.name, state, pid, healthy, detail)


_cn = inventory.common_name


def _expiry(
    what: str,
    subject: str,
    issuer: str,
    serial: str,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
) -> Expiry:
    left = (end - now).total_seconds()
    life = max((end - start).total_seconds(), 1.0)
    fraction = max(0.0, left / life)
    return Expiry(
        what,
        subject,
        issuer,
        serial,
        end.isoformat(timespec="seconds"),
        round(left, 1),
        round(fraction, 4),
        warning=left > 0 and fraction < WARN_BELOW,
        expired=left <= 0,
    )


def certificate_expiries(now: dt.datetime) -> list[Expiry]:
    return [
        _expiry(
            item.what,
            _cn(item.cert.subject),
            _cn(item.cert.issuer),
            certs.serial_hex(item.cert),
            item.cert.not_valid_before_utc,
            item.cert.not_valid_after_utc,
            now,
        )
        for item in inventory.installed_certificates()
    ]


def crl_expiry(now: dt.datetime) -> Expiry | None:
    """The installed client CRL that lapses first (nginx refuses everyone after it)."""
    crls = [c for c in crl.load() if c.next_update_utc is not None]
    if not crls:
        return None
    first = min(crls, key=lambda c: c.next_update_utc)
    revoked = len(crl.revoked_serials(crls))
    return _expiry(
        "client CRL",
        f"{len(crls)} CRL(s), {revoked} revoked serial(s)",
        _cn(first.issuer),
        "",
        first.last_update_utc,
        first.next_update_utc,
        now,
    )


def collect(now: dt.datetime | None = None) -> Report:
    now = now or dt.datetime.now(dt.UTC)
    sup_pid = supervisor.pid()
    services = [service_status(svc) for svc in config.SERVICES]
    expiries = certificate_expiries(now)
    crl_state = crl_expiry(now)
    problems = [f"{s.name}: {s.state}, {s.detail}" for s in services if not s.healthy]
    if sup_pid is None:
        problems.insert(0, "supervisord: not running (nothing restarts a service that exits)")
    if crl_state is None:
        problems.append(f"client CRL: none installed at {config.CLIENT_CRL}")
    timed = [*expiries, *([crl_state] if crl_state else [])]
    problems += [f"{e.what} {e.serial}: EXPIRED at {e.not_after}" for e in timed if e.expired]
    warnings = [
        f"{e.what} {e.serial}: {e.life_left:.0%} of its life left (until {e.not_after})"
        for e in timed
        if e.warning
    ]
    if lockout.describe(lockout.saved()) == "off":  # a choice, or a test run killed mid-way
        warnings.append(
            "lockout: OFF — refused tokens never lock a certificate out; "
            "`zt lockout --default` turns it back on"
        )
    vault_ok = any(s.name in {v.name for v in baonodes.services()} and s.healthy for s in services)
    audit = openbao.audit_status_line() if vault_ok else "unknown (OpenBao not healthy)"
    return Report(
        healthy=not problems,
        supervisor={"running": sup_pid is not None, "pid": sup_pid},
        services=services,
        certificates=expiries,
        crl=crl_state,
        audit=audit,
        problems=problems,
        warnings=warnings,
    )


def _left(seconds: float) -> str:
    return str(dt.timedelta(seconds=int(seconds))) if seconds > 0 else "EXPIRED"


def render(report: Report) -> None:
    sup = report.supervisor
    state = f"running (pid {sup['pid']})" if sup["running"] else "NOT running"
    say(f"supervisord: {state}")
    say("services:")
    for s in report.services:
        pid = f"pid {s.pid}" if s.pid else "-"
        mark = "healthy" if s.healthy else "UNHEALTHY"
        say(f"  {s.name:<12} {s.state:<9} {pid:<10} {mark}: {s.detail}")
    say(f"  {'audit':<12} {report.audit}")
    say("certificates:")
    if not report.certificates:
        say("  none issued yet (run `make up`)")
    for e in [*report.certificates, *([report.crl] if report.crl else [])]:
        flag = "  WARNING: under 1/3 of life left" if e.warning else ""
        serial = f" serial={e.serial}" if e.serial else ""
        until = "next_update" if e.what == "client CRL" else "not_after"
        say(
            f"  {e.what:<22} {e.subject:<30} issuer={e.issuer:<34}{serial} "
            f"{until}={e.not_after} left={_left(e.seconds_left)}{flag}"
        )
    for w in report.warnings:
        say(f"warning: {w}")
    for p in report.problems:
        say(f"problem: {p}")
    say("healthy" if report.healthy else f"UNHEALTHY ({len(report.problems)} problem(s))")


def as_json(report: Report) -> str:
    return json.dumps(asdict(report), indent=2, sort_keys=True)


def status(json_output: bool = False) -> int:
    """Print the report; 0 when healthy, 1 otherwise."""
    report = collect()
    if json_output:
        print(as_json(report), flush=True)
    else:
        render(report)
    return 0 if report.healthy else 1
