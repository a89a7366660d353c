"""Scheduled renewal, proven: three short lifetimes under load, no manual step.

The stack switches to the short-lifetime profile (``zt lifetimes --client-cert 120
--server-cert 300 --crl 180``, as an operator types it), then only the renewer (``zt renew --every
auto``, the service ``make up`` starts) and the CRL watcher act. Both workloads keep
calling the gateway through the client library (which fetches a token bound to its new
certificate on the first request after a rotation) for three client-certificate
lifetimes, while a sampler reads, every second, the certificates on disk and the CRL
file nginx and the verifier load. Asserted: 0 failed requests, every workload's
certificate renewed at least 3 times by the renewer (its log says so), every serving
certificate (nginx, OpenBao, Keycloak) renewed at least once (a 300 s certificate is due
once in 6 min) and served, no certificate and no installed CRL ever past its end. The
figures are printed. The default profile
is restored at the end (the next tests expect 24 h certificates) and a demo call
proves the stack healthy. A plan by hand (``. .state/env.sh``) shows No changes under
the short profile and after the default is restored.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import pytest

from scripts import bringup, config
from scripts.files import write_atomic, write_secret
from scripts.pki import certs, crl, lifetimes, rotation, schedule
from scripts.services import openbao, procs
from tests.integration.conftest import run_zt
from tests.integration.test_terraform_by_hand import assert_no_changes
from tests.load import Load
from tests.x509_helpers import build_cert, cert_pem, key_pem, new_key

CLIENT_CERT_SECONDS = 120  # terraform/pki's minimum
SERVER_CERT_SECONDS = 300  # terraform/pki's minimum
CRL_SECONDS = 180  # terraform/pki's minimum (3m)
LIFETIMES = 3
LOAD_SECONDS = LIFETIMES * CLIENT_CERT_SECONDS
WORKLOADS = ("python-client", "batch-worker")
SERVERS = tuple(rotation.RELOADERS)  # nginx, vault, keycloak
THREADS_PER_WORKLOAD = 2
INTERVAL = 0.2  # per thread: ~20 requests/s in all
SAMPLE_SECONDS = 1.0


@dataclass
class Samples:
    """What the sampler saw: each workload's serials, the least time left on any
    certificate and on the installed CRL, and any sample past an end."""

    serials: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    min_cert_left: dt.timedelta = dt.timedelta.max
    min_crl_left: dt.timedelta = dt.timedelta.max
    lapsed: list[str] = field(default_factory=list)
    count: int = 0


def _sample(samples: Samples) -> None:
    now = dt.datetime.now(dt.UTC)
    for path in sorted(config.PKI_DIR.glob("*/*/cert.pem")):
        cert = certs.load(path)
        left = cert.not_valid_after_utc - now
        samples.min_cert_left = min(samples.min_cert_left, left)
        name = f"{path.parent.parent.name}/{path.parent.name}"
        if left <= dt.timedelta(0):
            samples.lapsed.append(f"{now:%T} {name} expired {-left} ago")
        if path.parent.name in WORKLOADS:
            serials = samples.serials[path.parent.name]
            if not serials or serials[-1] != certs.serial_hex(cert):
                serials.append(certs.serial_hex(cert))
    next_update = crl.next_update(crl.load())
    if next_update is None:
        samples.lapsed.append(f"{now:%T} no installed CRL with a nextUpdate")
    else:
        left = next_update - now
        samples.min_crl_left = min(samples.min_crl_left, left)
        if left <= dt.timedelta(0):
            samples.lapsed.append(f"{now:%T} installed CRL past nextUpdate by {-left}")
    samples.count += 1


def _sampler(samples: Samples, stop: threading.Event) -> None:
    while not stop.wait(SAMPLE_SECONDS):
        try:
            _sample(samples)
        except (OSError, ValueError) as e:  # a file mid-rename is read again next second
            samples.lapsed.append(f"unreadable sample: {e}")


def _renewer_actions(since: float) -> list[str]:
    """The actions the renewer logged for runs started at or after ``since``."""
    actions = []
    for line in config.RENEWER.log_file.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("started_at", 0) >= since:
            actions += record["actions"]
    return actions


def _serves_its_certificate(name: str) -> bool:
    """``name`` serves the certificate on disk (polled: a run may be mid-rotation)."""
    _, port = rotation.RELOADERS[name]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        on_disk = certs.load(config.server_cert_paths(name)[0]).serial_number
        if rotation.served_serial(port) == on_disk:
            return True
        time.sleep(1)
    return False


def _zt(*args: str) -> None:
    r = run_zt(*args, timeout=600)
    assert r.returncode == 0, f"zt {' '.join(args)}:\n{r.stdout[-3000:]}{r.stderr[-2000:]}"


@pytest.mark.slow
def test_three_short_lifetimes_renew_by_themselves_under_load_with_no_failed_request(stack):
    schedule.start()  # as `make up` starts it (idempotent)
    try:
        _zt(
            "lifetimes",
            *("--client-cert", str(CLIENT_CERT_SECONDS)),
            *("--server-cert", str(SERVER_CERT_SECONDS)),
            *("--crl", str(CRL_SECONDS)),
        )
        assert lifetimes.load() == lifetimes.Lifetimes(
            client_cert_seconds=CLIENT_CERT_SECONDS,
            server_cert_seconds=SERVER_CERT_SECONDS,
            crl_seconds=CRL_SECONDS,
        )
        renewer_pid = procs.running(config.RENEWER)
        assert renewer_pid is not None
        since = time.time()
        samples, stop = Samples(), threading.Event()
        _sample(samples)
        sampler = threading.Thread(target=_sampler, args=(samples, stop))
        loads = [
            Load.as_workload(
                workload,
                seconds=LOAD_SECONDS,
                threads=THREADS_PER_WORKLOAD,
                interval=INTERVAL,
            )
            for workload in WORKLOADS
        ]
        sampler.start()
        try:
            with loads[0], loads[1]:
                pass
        finally:
            stop.set()
            sampler.join(timeout=10)
        actions = _renewer_actions(since)
        last = schedule.last_run()
        renewed = {w: sum(a.startswith(f"client/{w}:") for a in actions) for w in WORKLOADS}
        served = {n: sum(a.startswith(f"server/{n}:") for a in actions) for n in SERVERS}
        crl_refreshes = sum(a.startswith("client CRL refreshed") for a in actions)
        print(
            f"\n{LIFETIMES} lifetimes of {CLIENT_CERT_SECONDS} s client certificates, "
            f"serving certificates of {SERVER_CERT_SECONDS} s, CRLs of {CRL_SECONDS} s, "
            f"renewer every {last and last['interval_seconds']} s:"
        )
        for workload, load in zip(WORKLOADS, loads, strict=True):
            print(f"  {workload}: {load.summary()}; errors: {load.errors[:3]}")
            print(
                f"  {workload}: {len(samples.serials[workload]) - 1} certificate changes seen, "
                f"{renewed[workload]} renewals by the renewer"
            )
        print(f"  serving certificates renewed by the renewer: {served}")
        print(
            f"  {samples.count} samples; least time left on any certificate "
            f"{samples.min_cert_left.total_seconds():.1f} s, on the installed CRL "
            f"{samples.min_crl_left.total_seconds():.1f} s; renewer CRL refreshes "
            f"{crl_refreshes} (the CRL watcher rebuilds too)"
        )
        assert sum(load.total for load in loads) > 0
        assert [load.failed for load in loads] == [0, 0], [load.errors[:5] for load in loads]
        assert not samples.lapsed, samples.lapsed[:10]
        assert procs.running(config.RENEWER) == renewer_pid, "the renewer restarted"
        for workload in WORKLOADS:
            assert renewed[workload] >= LIFETIMES, (workload, actions)
            assert len(samples.serials[workload]) - 1 >= LIFETIMES, samples.serials[workload]
        for name in SERVERS:
            assert served[name] >= 1, (name, actions)
            assert _serves_its_certificate(name), f"{name} does not serve the cert on disk"
        # The profile is a setting Terraform gets from the state folder: by hand, too.
        assert_no_changes("zt lifetimes (short profile)")
    finally:
        _zt("lifetimes", "--default")
    assert lifetimes.load() == lifetimes.Lifetimes()
    for path in (
        *(config.client_cert_paths(w)[0] for w in WORKLOADS),
        *(config.server_cert_paths(n)[0] for n in SERVERS),
    ):
        cert = certs.load(path)
        life = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert life > dt.timedelta(hours=23), (path, life)
    assert_no_changes("zt lifetimes --default")
    assert bringup.demo_call()["azp"] == "python-client"


def test_a_renewer_run_with_openbao_unreachable_is_logged_and_touches_nothing(stack, monkeypatch):
    """A failed run: every item is tried and named, the run is recorded as failed
    (the loop goes on), and no current certificate file changes. OpenBao "down" is
    its address pointing at a loopback port nothing listens on, with every
    certificate forced due."""
    watched = sorted(config.PKI_DIR.glob("*/*/*.pem"))
    before = {p: p.read_bytes() for p in watched}
    monkeypatch.setattr(config, "VAULT_ADDR", "https://127.0.0.1:1")
    monkeypatch.setattr(rotation, "due", lambda cert, now=None: True)
    record = schedule.run_once(1.0, rotation.renew)
    print(f"\nfailed run recorded: {record}")
    assert record["ok"] is False, record
    assert record["actions"] == []
    for item in (*(f"client/{w}" for w in WORKLOADS), "server/nginx", "server/vault"):
        assert f"{item}: " in (record["error"] or ""), record
    assert "OpenBao is unreachable" in (record["error"] or ""), record
    assert {p: p.read_bytes() for p in watched} == before


def test_make_up_recovers_an_openbao_listener_certificate_that_lapsed(stack):
    """A stack left down (or without its renewer) past a serving certificate's end:
    OpenBao serves an expired certificate nobody can verify, so it cannot be renewed
    through OpenBao. `zt up` serves a bootstrap certificate again and issues a new one
    from the server CA; nothing else is needed."""
    key = new_key()
    now = dt.datetime.now(dt.UTC)
    expired = build_cert(
        "localhost",
        key,
        not_before=now - dt.timedelta(minutes=10),
        not_after=now - dt.timedelta(minutes=1),
        san_ips=[config.HOST],
    )
    cert_file, key_file = config.server_cert_paths("vault")
    write_secret(key_file, key_pem(key))
    write_atomic(cert_file, cert_pem(expired))
    write_atomic(config.VAULT_TLS_CA, cert_pem(expired))
    openbao.reload_listener()
    lapsed = time.monotonic() + 10
    while openbao.health() is not None and time.monotonic() < lapsed:
        time.sleep(0.2)
    assert openbao.health() is None, "OpenBao still verifies with an expired certificate"
    up = run_zt("up", timeout=600)
    assert up.returncode == 0, up.stdout[-3000:]
    assert "listener certificate expired" in up.stdout, up.stdout[-3000:]
    renewed = certs.load(cert_file)
    assert renewed.issuer != renewed.subject  # from the server CA, not a bootstrap
    assert renewed.not_valid_after_utc > now
    assert rotation.served_serial(config.VAULT_PORT) == renewed.serial_number
    assert openbao.serving_cert_matches_ca()
    assert bringup.demo_call()["azp"] == "python-client"
