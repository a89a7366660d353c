"""OpenBao stops: the gateway keeps enforcing the CRL it has, and says so.

Expected (README, "Revocation"): OpenBao is not on the request path. With it
down, new handshakes are checked against the CRL file installed last (nginx's
``ssl_crl`` and the verifier's copy), so valid certificates keep working and a
certificate revoked before the outage stays refused; nobody can revoke in a
stopped OpenBao, so nothing is missed. The CRL watcher's rounds fail, keep the
file untouched, and `zt status` shows them FAILING until OpenBao is back.
"""

from __future__ import annotations

import pytest

from scripts import config
from scripts.pki import rotation, watcher
from scripts.services import openbao, procs
from tests.attacks.conftest import bearer, call, cert_of, restore_stack
from tests.faults.conftest import wait_for
from tests.integration.conftest import run_zt
from tests.pki_helpers import issue_throwaway


@pytest.mark.slow
def test_with_openbao_stopped_the_installed_crl_keeps_being_enforced(
    log_since, token_for, tmp_path
):
    auth = {"headers": bearer(token_for("python-client"))}
    revoked = issue_throwaway(tmp_path)
    with rotation.locked():
        rotation.revoke(revoked.serial)
    crl_before = config.CLIENT_CRL.read_bytes()
    try:
        assert procs.stop(config.VAULT), "OpenBao was not running"
        assert openbao.health() is None
        failing = wait_for(
            lambda: (last := watcher.last_check()) is not None and not last["ok"],
            config.CRL_WATCH_SECONDS * 3,
        )
        assert failing, f"the watcher never reported the outage: {watcher.last_check()}"
        # New connections (full handshakes) against the installed CRL: valid ones work,
        # the one revoked before the outage stays refused.
        ok = call(log_since(), "GET", "/api/resource", cert=cert_of("python-client"), **auth)
        assert ok.status_code == 200
        refused = call(log_since(), "GET", "/api/resource", cert=revoked.files, **auth)
        assert refused.status_code == 400
        assert config.CLIENT_CRL.read_bytes() == crl_before
        status = run_zt("status", timeout=60)
        assert "crl-watcher" in status.stdout and "FAILING" in status.stdout, status.stdout
    finally:
        assert restore_stack() == 0
    back = wait_for(lambda: (last := watcher.last_check()) is not None and last["ok"], 15)
    assert back, watcher.last_check()
