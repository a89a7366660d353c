"""A certificate that keeps presenting refused tokens is locked out (issue 18, item 4).

The attacker holds a valid python-client certificate of its own (``issue_throwaway``:
the workload's AppRole, our client CA) and tries tokens. After the lockout's
threshold (10 refused tokens within 60 s) the verifier answers ``locked_out`` and
nginx keeps that answer per certificate serial (nginx/snippets/lockout-hop.conf):
from then on every request with that certificate, even with a GOOD token, is 429 +
``Retry-After`` from nginx, with no verifier call (no audit line) and nothing at the
API. Another certificate is never affected: batch-worker, python-client's own
certificate, and python-client's certificate after ``zt rotate``. When the period
ends, the locked certificate is allowed again.

The stack runs the whole suite with the lockout off (``tests/lockout_profile.py``:
many attacks send dozens of bad tokens with one certificate on purpose); these tests
set the lockout's default threshold and window with a short period
(``zt lockout --threshold 10 --window 60 --period N``) and put the suite's setting
back afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from scripts import cli, status
from scripts.services import nginx
from tests.attacks.conftest import LogWindow, bearer, call, restore_stack
from tests.lockout_profile import lockout_numbers
from tests.pki_helpers import Workload, issue_throwaway
from tests.tokens import cert_of, fetch_token

THRESHOLD = 10
WINDOW_SECONDS = 60
PERIOD_SECONDS = 30
"""Short enough to wait for, long enough to outlast a ``zt rotate`` on 2 busy cores."""
TOO_MANY = {"error": "too many requests"}


def forged(token: str) -> str:
    """``token`` (Keycloak's, a known ``kid``) with a signature of zero bytes: refused as
    ``token_signature_invalid``, a refusal that counts (an unknown ``kid`` would not)."""
    header, payload, _ = token.split(".")
    return f"{header}.{payload}.{'A' * 342}"


@pytest.fixture
def short_lockout(stack: None) -> Iterator[None]:
    """The default threshold and window, a short period; every count forgotten first."""
    with lockout_numbers(threshold=THRESHOLD, window=WINDOW_SECONDS, period=PERIOD_SECONDS):
        yield


@pytest.fixture
def attacker(short_lockout: None, tmp_path) -> Workload:
    """A valid python-client certificate of the attacker's own (not the suite's)."""
    return issue_throwaway(tmp_path)


def _send(
    log_since: Callable[[], LogWindow], cert: tuple[str, str], token: str, method: str = "GET"
) -> tuple[requests.Response, Any]:
    window = log_since()
    r = call(window, method, "/api/resource", cert=cert, headers=bearer(token))
    return r, window.trail()


def _lock_out(log_since, cert: tuple[str, str], token: str) -> None:
    """THRESHOLD refused tokens (each decided and audited), then the verifier's lockout."""
    for i in range(THRESHOLD):
        r, trail = _send(log_since, cert, forged(token))
        assert r.status_code == 401, (i, r.status_code, r.text)
        assert trail.reasons == ["token_signature_invalid"], trail.audit
    r, trail = _send(log_since, cert, forged(token))
    assert r.status_code == 429, r.text
    assert trail.reasons == ["locked_out"], trail.audit  # the verifier's own refusal
    assert trail.nginx["auth_reason"] == "locked_out" and trail.api == []


def _assert_refused_by_nginx(r: requests.Response, trail: Any) -> None:
    """429 + Retry-After + the generic body; nginx logged locked_out; no verifier call;
    the API got nothing."""
    assert r.status_code == 429, r.text
    assert r.json() == TOO_MANY
    assert 0 < int(r.headers["Retry-After"]) <= PERIOD_SECONDS
    assert trail.nginx["status"] == 429
    assert trail.nginx["auth_reason"] == "locked_out"
    assert trail.audit == []  # answered from nginx's lockout cache: the verifier never saw it
    assert trail.api == []


def _assert_allowed(log_since, cert: tuple[str, str], token: str) -> None:
    r, trail = _send(log_since, cert, token)
    assert r.status_code == 200, r.text
    assert trail.reasons == ["ok"]


@pytest.mark.slow
def test_eleven_refused_tokens_lock_the_certificate_out_until_the_period_ends(
    log_since, identity, attacker, tmp_path
):
    endpoint = identity["token_endpoint"]
    good = fetch_token("python-client", attacker.files, endpoint)  # bound to the attacker's
    _lock_out(log_since, attacker.files, good)
    locked_at = time.monotonic()

    # Even a good token, any method: refused by nginx, without a verifier call.
    for method in ("GET", "POST"):
        r, trail = _send(log_since, attacker.files, good, method)
        _assert_refused_by_nginx(r, trail)

    # Never another certificate: another identity, the same identity's own certificate,
    # and the same identity after `zt rotate` (a new certificate, a new serial).
    _assert_allowed(log_since, cert_of("batch-worker"), fetch_token("batch-worker", None, endpoint))
    _assert_allowed(
        log_since, cert_of("python-client"), fetch_token("python-client", None, endpoint)
    )
    assert cli.main(["rotate", "client", "python-client"]) == 0
    _assert_allowed(
        log_since, cert_of("python-client"), fetch_token("python-client", None, endpoint)
    )
    r, trail = _send(log_since, attacker.files, good)
    _assert_refused_by_nginx(r, trail)  # still locked: the rotation was someone else's

    # After the period: allowed again (nginx's copy and the verifier's lock both ended).
    deadline = locked_at + PERIOD_SECONDS + 30
    while True:
        r, trail = _send(log_since, attacker.files, fetch_token("python-client", attacker.files))
        if r.status_code != 429 or time.monotonic() > deadline:
            break
        time.sleep(1)
    print(f"\nlocked out for {time.monotonic() - locked_at:.1f}s (period {PERIOD_SECONDS}s)")
    assert r.status_code == 200, r.text
    assert trail.reasons == ["ok"]
    assert time.monotonic() - locked_at >= PERIOD_SECONDS - 2  # not before the period


def test_the_lockout_holds_with_the_decision_cache_off(log_since, attacker, identity):
    good = fetch_token("python-client", attacker.files, identity["token_endpoint"])
    nginx.set_authz_cache(False)
    try:
        _lock_out(log_since, attacker.files, good)
        r, trail = _send(log_since, attacker.files, good)
        _assert_refused_by_nginx(r, trail)
        assert trail.nginx["auth_cache"] == ""  # no decision cache on the way
    finally:
        nginx.set_authz_cache(True)
    assert restore_stack() == 0


def test_refused_tokens_of_one_certificate_never_lock_out_another(
    log_since, attacker, identity, tmp_path
):
    """Nine refused tokens each from two certificates of the same workload: neither is
    locked out (counts are per certificate), and a good token still works with both."""
    (tmp_path / "other").mkdir()
    other = issue_throwaway(tmp_path / "other")
    for cert in (attacker.files, other.files):
        bad = forged(fetch_token("python-client", cert, identity["token_endpoint"]))
        for _ in range(THRESHOLD - 1):
            r, _trail = _send(log_since, cert, bad)
            assert r.status_code == 401, r.text
    for cert in (attacker.files, other.files):
        _assert_allowed(
            log_since, cert, fetch_token("python-client", cert, identity["token_endpoint"])
        )


def _lockout_warnings() -> list[str]:
    return [w for w in status.collect().warnings if w.startswith("lockout:")]


def test_status_warns_while_the_lockout_is_off() -> None:
    """A test session killed mid-way leaves the lockout off (tests/lockout_profile.py):
    `zt status` says so, with the command that turns it back on."""
    with lockout_numbers(threshold=0):
        assert _lockout_warnings() == [
            "lockout: OFF — refused tokens never lock a certificate out; "
            "`zt lockout --default` turns it back on"
        ]
    with lockout_numbers():
        assert _lockout_warnings() == []
