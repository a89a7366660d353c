"""The CRL watcher: the bound on revocation, however a certificate was revoked.

A certificate revoked in OpenBao by anything — ``zt revoke``, the revoker AppRole
through hvac, ``bao write pki_client/revoke``, Terraform retiring a CA — is listed
in the CRL OpenBao publishes at once (terraform/pki: ``auto_rebuild = false``).
This process polls those CRLs every ``config.CRL_WATCH_SECONDS`` and, when they
changed, installs them and reloads nginx (``rotation.sync_crl``):

* new handshakes are checked against the new CRL (no session resumption on the
  mTLS listener, so none skips the check);
* nginx's old workers close their keep-alive connections, so no connection opened
  with the revoked certificate survives the reload;
* the decision cache's generation covers the CRL, so no cached allow is reused;
* the verifier re-reads the same file within a second and refuses the serial
  (``cert_revoked``) on any connection still open.

Bound: the poll interval plus one fetch and one graceful reload (measured and
printed by tests/integration/test_revocation.py). It also rebuilds the CRLs in
OpenBao once a third of their validity has passed, so nginx's copy never lapses.

OpenBao down: nothing is installed, the current CRL file stays and keeps being
enforced (nobody can revoke in a stopped OpenBao either); each failed round is
logged. Each round runs under the rotation lock, so it never interleaves with
``zt rotate``/``revoke``/``renew``/``rollover-client-ca``.

Every round writes ``config.CRL_WATCH_STATUS`` (time of the last check and its
outcome) for ``zt status`` and for readiness, and ``config.PKI_METRICS``
(``scripts.pki.expiry_metrics``: every certificate's and CRL's dates as Prometheus
text, served by nginx as ``/metrics/pki``), after a failed round too.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time

from scripts import config
from scripts.files import read_json, write_atomic
from scripts.pki import expiry_metrics, rotation
from scripts.services import procs
from scripts.steps import StepFailed


def _log(message: str) -> None:
    print(f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%S}Z {message}", flush=True)


def _record(ok: bool, outcome: str) -> None:
    status = {"checked_at": time.time(), "ok": ok, "outcome": outcome}
    write_atomic(config.CRL_WATCH_STATUS, json.dumps(status) + "\n")


def _write_metrics() -> None:
    """The PKI metrics file; a failure is logged and retried next round."""
    try:
        expiry_metrics.write()
    except (OSError, ValueError) as e:
        _log(f"could not write {config.PKI_METRICS}: {e}")


def check_once() -> str | None:
    """One round under the rotation lock; returns what changed (None: nothing)."""
    with rotation.locked():
        return rotation.sync_crl()


def run(interval: float, rounds: int | None = None) -> int:
    """Poll every ``interval`` seconds (``rounds`` bounds it, for tests); never raises
    on a failed round: it is logged and retried at the next one."""
    _log(f"watching the client CRLs in OpenBao every {interval:g}s -> {config.CLIENT_CRL}")
    done = 0
    while rounds is None or done < rounds:
        started = time.monotonic()
        try:
            changed = check_once()
        except (StepFailed, OSError, ValueError) as e:
            _log(f"check failed, the installed CRL is kept: {e}")
            _record(False, str(e).splitlines()[0][:300])
        else:
            if changed:
                _log(changed)
            _record(True, changed or "unchanged")
        _write_metrics()
        done += 1
        if rounds is None or done < rounds:
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    return 0


def last_check() -> dict | None:
    """The last round's record (``checked_at``, ``ok``, ``outcome``), or None."""
    try:
        return read_json(config.CRL_WATCH_STATUS)
    except (OSError, ValueError):
        return None


def argv() -> list[str]:
    return [sys.executable, "-m", "scripts.zt", "crl-watch"]


def start() -> None:
    """Start the watcher (``zt crl-watch``) unless it runs, or replace one running other
    code (``procs.start_loop``); wait for its first round."""
    procs.start_loop(config.CRL_WATCHER, argv(), config.CRL_WATCH_STATUS, "first check done", 30)
