"""Drill: the OpenBao leader is SIGKILLed under load (issue 21; docs/scaling.md).

While workloads call the API through nginx (their certificate rotated during the run)
and another fetches tokens from Keycloak, the active raft node is killed by its pid file.
Then: a new leader within ``baonodes.LEADER_BOUND_SECONDS``; `zt rotate` and `zt revoke`
succeed; the CAs and every serial issued before are still there; the killed node comes
back (supervisord restarts it, the launcher unseals it) and is a healthy voter again; no
request failed. Every figure is printed.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import pytest
import requests
from cryptography import x509

from scripts import config
from scripts.pki import certs, rotation
from scripts.services import baonodes, procs
from tests.integration.conftest import run_zt
from tests.load import Load
from tests.tokens import cert_of, request_token

pytestmark = pytest.mark.skipif(
    not config.HA_OPENBAO, reason="OpenBao is not clustered (ZT_HA_PARTS)"
)

LOAD_SECONDS = 150.0  # an upper bound: the drill stops the load when it is done
LOAD_THREADS = 3
LOAD_INTERVAL = 0.05
RETURN_BOUND_SECONDS = 90.0  # restart + unseal + autopilot marking it healthy again


class TokenFetcher:
    """A bounded loop fetching a token from Keycloak every ``interval`` seconds (the
    tokens of the run other than the workload's own), counting every outcome."""

    def __init__(self, workload: str, seconds: float, interval: float = 0.5) -> None:
        self.workload, self.seconds, self.interval = workload, seconds, interval
        self.results: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline and not self._stop.is_set():
            try:
                outcome = str(request_token(self.workload, cert_of(self.workload)).status_code)
            except requests.RequestException as e:
                outcome = type(e).__name__
            self.results[outcome] += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> TokenFetcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class LeaderWatch:
    """Polls, from when it is entered, until a node other than ``old`` is active;
    ``seconds`` is how long that took (None: not within the bound). Exit waits for it."""

    def __init__(self, old: baonodes.Node) -> None:
        self.old = old
        self.seconds: float | None = None
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while time.monotonic() - self._t0 < baonodes.LEADER_BOUND_SECONDS:
            lead = baonodes.leader()
            if lead not in (None, self.old) and baonodes.states().get(lead.name) == "active":
                self.seconds = time.monotonic() - self._t0
                return
            time.sleep(0.1)

    def __enter__(self) -> LeaderWatch:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(timeout=baonodes.LEADER_BOUND_SECONDS + 5)


def _ca_pems() -> dict[str, str]:
    """Every PKI mount's CA certificate, as OpenBao serves it (through the edge)."""
    out = {}
    for name, mount in certs.pki_outputs()["mounts"].items():
        r = requests.get(
            f"{config.VAULT_ADDR}/v1/{mount}/ca/pem", verify=str(config.VAULT_TLS_CA), timeout=10
        )
        r.raise_for_status()
        out[name] = r.text
    return out


def _serials() -> set[str]:
    """Every serial every PKI mount lists (operator AppRole: list on <mount>/certs)."""
    client = certs.approle_client(config.VAULT_OPERATOR_APPROLE)
    found = set()
    for mount in certs.pki_outputs()["mounts"].values():
        keys = client.secrets.pki.list_certificates(mount_point=mount)["data"]["keys"]
        found |= {f"{mount}/{k}" for k in keys}
    return found


def _throwaway_cert() -> x509.Certificate:
    """A batch-worker certificate nobody uses, to revoke after the failover."""
    c = certs.approle_client("client-batch-worker")
    data = c.secrets.pki.generate_certificate(
        name="batch-worker",
        common_name="batch-worker",
        mount_point=certs.pki_outputs()["mounts"]["client_issuing"],
    )["data"]
    return x509.load_pem_x509_certificate(data["certificate"].encode())


def _wait(what: str, check, bound: float) -> float:
    """Seconds until ``check()`` is true; fails past ``bound``."""
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < bound, f"{what}: not within {bound:.0f}s"
        time.sleep(0.2)
    return time.monotonic() - t0


def test_killing_the_openbao_leader_under_load_fails_no_request() -> None:
    assert baonodes.all_voters_healthy(), f"cluster not healthy before: {baonodes.states()}"
    unused = _throwaway_cert()
    cas_before, serials_before = _ca_pems(), _serials()
    leader = baonodes.leader()
    assert leader is not None
    pid = procs.running(leader.svc)
    assert pid is not None, f"{leader.name} has no live pid file"

    for _ in range(3):  # Keycloak answers promptly first (a JVM just restarted is slow)
        request_token("python-client", cert_of("python-client"))
    load = Load.as_workload(
        "python-client", seconds=LOAD_SECONDS, threads=LOAD_THREADS, interval=LOAD_INTERVAL
    )
    with load, TokenFetcher("batch-worker", LOAD_SECONDS) as tokens:
        started = time.monotonic()
        time.sleep(3)
        before = rotation.rotate_client("python-client")  # a rotation during the run
        time.sleep(3)
        killed_at = time.monotonic()
        with LeaderWatch(leader) as election:
            os.kill(pid, signal.SIGKILL)  # by its pid file, never by name
            # At once, during the election: our client retries through the edge.
            during = rotation.rotate_client("python-client")
            during_s = time.monotonic() - killed_at
        elect = election.seconds
        assert elect is not None, f"no new leader within {baonodes.LEADER_BOUND_SECONDS:.0f}s"
        new_leader = baonodes.leader()
        t_rotate = time.monotonic()
        rotated = run_zt("rotate", "client", "python-client", timeout=180)
        rotate_s = time.monotonic() - t_rotate
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        t_revoke = time.monotonic()
        revoked = run_zt("revoke", certs.serial_hex(unused), timeout=180)
        revoke_s = time.monotonic() - t_revoke
        assert revoked.returncode == 0, revoked.stdout + revoked.stderr
        back = _wait(
            f"{leader.name} back as a healthy voter",
            baonodes.all_voters_healthy,
            RETURN_BOUND_SECONDS,
        )
        returned = time.monotonic() - killed_at
        time.sleep(3)
        load.stop()
    ran = time.monotonic() - started
    print(
        f"\nOpenBao leader {leader.name} (pid {pid}) SIGKILLed: new leader "
        f"{new_leader.name if new_leader else '?'} after {elect:.1f}s (bound "
        f"{baonodes.LEADER_BOUND_SECONDS:.0f}s); zt rotate {rotate_s:.1f}s, zt revoke "
        f"{revoke_s:.1f}s after it; {leader.name} a healthy voter again {returned:.1f}s after "
        f"the kill ({back:.1f}s after the revoke)\n"
        f"  a rotation started at the kill (during the election) took {during_s:.1f}s: "
        f"{during.old_serial} -> {during.new_serial}\n"
        f"  API through nginx: {load.total} requests in {ran:.0f}s, {dict(load.results)}, "
        f"p99 {load.percentile_ms(99):.0f} ms, max {1000 * max(load.latencies):.0f} ms; "
        f"failed {load.failed}\n"
        f"  tokens from Keycloak: {dict(tokens.results)}\n"
        f"  rotated before the kill: {before.old_serial} -> {before.new_serial}"
    )
    assert load.failed == 0, load.errors[:5]
    assert load.total > 0
    assert set(tokens.results) == {"200"}, tokens.results
    assert _ca_pems() == cas_before, "a CA certificate changed"
    after = _serials()
    assert serials_before <= after, f"serials lost: {sorted(serials_before - after)[:5]}"
    assert len(after) >= len(serials_before) + 3  # the three rotations' new certificates
