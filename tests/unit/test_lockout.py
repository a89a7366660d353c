"""The lockout (verifier/lockout.py): counts per certificate in a folder, across processes.

The counter with an injected clock (windows, threshold, the lock's end, a lockout
shorter than the window starting clean, rewrites, pruning), real worker processes
counting into one folder at once, what counts and what does not, ``decide`` refusing
a locked-out certificate before its token is read, and the Flask adapter's answer
(403 on the wire, ``X-Auth-Reason: locked_out``, ``Retry-After``, ``Cache-Control``).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.verifier_fixtures import required_config
from verifier import errors
from verifier.app import create_app
from verifier.decision import decide
from verifier.errors import LockedOut, SettingsError
from verifier.identity import Identity
from verifier.lockout import (
    COMPACT_FACTOR,
    COUNTED_REASONS,
    NO_LOCKOUTS,
    FolderLockouts,
    answer_headers,
    lockout_from_settings,
)
from verifier.response import DENY, AuthorizerResponse
from verifier.settings import Settings
from verifier.transport import serial_hex

SERIAL = "7553939517EA2E26635CE5B94D9ACC05F7DC6440"
OTHER = "2AE27ECC69F495079432EBF2A44D35D4B87875AC"
T0 = float(int(time.time()))


def lockouts(folder: Path, threshold: int = 3, window: float = 60, period: float = 300):
    return FolderLockouts(folder, threshold=threshold, window=window, period=period)


def refusal(serial: str = SERIAL, reason: str = "token_signature_invalid") -> AuthorizerResponse:
    return AuthorizerResponse(
        decision=DENY, status=401, reason=reason, identity=Identity(cert_serial=serial)
    )


# --- the counter ---------------------------------------------------------------------


def test_the_threshold_within_the_window_locks_the_certificate_out_for_the_period(tmp_path):
    lock = lockouts(tmp_path)
    assert [lock.count(SERIAL, T0 + i) for i in range(2)] == [1, 2]
    assert lock.locked_until(SERIAL, T0 + 2) == 0.0
    assert lock.count(SERIAL, T0 + 2) == 3
    assert lock.locked_until(SERIAL, T0 + 2) == pytest.approx(T0 + 2 + 300, abs=1e-3)
    assert lock.locked_until(OTHER, T0 + 2) == 0.0  # never another certificate


def test_refusals_older_than_the_window_do_not_count(tmp_path):
    lock = lockouts(tmp_path)
    lock.count(SERIAL, T0)
    lock.count(SERIAL, T0 + 1)
    assert lock.count(SERIAL, T0 + 60.5) == 2  # T0 fell out of the 60 s window
    assert lock.locked_until(SERIAL, T0 + 60.5) == 0.0
    assert lock.count(SERIAL, T0 + 61.5) == 2  # and T0 + 1 too; never 3 within 60 s
    assert lock.locked_until(SERIAL, T0 + 61.5) == 0.0


def test_a_lockout_ends_after_the_period_and_starts_the_count_afresh(tmp_path):
    lock = lockouts(tmp_path, threshold=3, window=60, period=5)
    for i in range(3):
        lock.count(SERIAL, T0 + i)
    end = lock.locked_until(SERIAL, T0 + 3)
    assert end == pytest.approx(T0 + 7, abs=1e-3)
    # Past the end (the period is shorter than the window): the refusals before the
    # lockout are forgotten, so one more refusal does not lock it out again.
    assert lock.count(SERIAL, T0 + 8) == 1
    assert lock.locked_until(SERIAL, T0 + 8) <= T0 + 8


def test_a_lock_set_further_ahead_than_a_period_is_ignored(tmp_path):
    lock = lockouts(tmp_path, period=300)
    lock.lock(SERIAL, T0 + 3600)  # the clock was set back an hour
    assert lock.locked_until(SERIAL, T0) == 0.0


def test_a_count_file_is_rewritten_with_only_its_window_and_stays_bounded(tmp_path):
    lock = lockouts(tmp_path, threshold=5, window=10)
    for i in range(200):  # one every 3 s: never 5 within 10 s
        lock.count(SERIAL, T0 + 3 * i)
    lines = (tmp_path / f"{SERIAL}.denials").read_text().splitlines()
    assert len(lines) <= COMPACT_FACTOR * 5 + 1
    assert lock.locked_until(SERIAL, T0 + 600) == 0.0


def test_a_line_that_does_not_parse_is_skipped(tmp_path):
    (tmp_path / f"{SERIAL}.denials").write_bytes(b"garbage\nnan\n" + f"{T0}\n".encode())
    assert lockouts(tmp_path).count(SERIAL, T0 + 1) == 2


def test_pruning_removes_what_no_longer_matters_and_keeps_what_does(tmp_path):
    t0 = float(int(time.time()))  # a temporary file's ctime is the real clock's
    lock = lockouts(tmp_path, threshold=3, window=60, period=300)
    lock.count(OTHER, t0)  # stale by t0 + 100
    lock.count(SERIAL, t0 + 90)  # current
    lock.lock("AA", t0 + 20)  # ended
    lock.lock("BB", t0 + 400)  # still running
    (tmp_path / ".CC.1.2.tmp").write_text("")  # a killed worker's, made "now" (ctime)
    assert lock.prune(t0 + 30) == 1  # only AA's ended lock; the rest is recent
    assert lock.prune(t0 + 100) == 2  # OTHER's count (a window old), the temporary file
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{SERIAL}.denials", "BB.lock"])
    assert lock.locked_until("BB", t0 + 100) == pytest.approx(t0 + 400, abs=1e-3)


def test_only_a_serial_names_a_file(tmp_path):
    lock = lockouts(tmp_path)
    for bad in ("../x", "7553/39", "abc", ""):
        with pytest.raises(ValueError):
            lock.count(bad, T0)
    assert list(tmp_path.iterdir()) == []


def _count_in_a_worker(folder: str, serial: str, count: int, start: float) -> None:
    lock = lockouts(Path(folder), threshold=1000, window=3600)
    for i in range(count):
        lock.count(serial, start + i * 1e-3)


def test_worker_processes_counting_at_once_lose_no_refusal(tmp_path):
    """gunicorn's workers are processes: four of them append 50 refusals each."""
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_count_in_a_worker, args=(str(tmp_path), SERIAL, 50, T0 + w))
        for w in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    # Every line intact and every refusal there (none beyond the rewrite threshold).
    lines = (tmp_path / f"{SERIAL}.denials").read_text().splitlines()
    assert len(lines) == 200
    assert all(float(line) >= T0 for line in lines)


def _refuse_in_a_worker(folder: str, now: float) -> None:
    lockouts(Path(folder), threshold=10, window=60).record(refusal(), now)


def test_ten_refusals_from_ten_processes_lock_the_certificate_out(tmp_path):
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_refuse_in_a_worker, args=(str(tmp_path), T0 + i * 0.01))
        for i in range(10)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert lockouts(tmp_path).locked_until(SERIAL, T0 + 1) > T0 + 1


# --- what counts ---------------------------------------------------------------------


def test_token_and_binding_refusals_count_and_our_own_faults_do_not():
    assert {"token_signature_invalid", "token_expired", "binding_thumbprint_mismatch"} <= (
        COUNTED_REASONS
    )
    for reason in ("jwks_unavailable", "jwks_stale", "token_key_unknown"):
        assert reason not in COUNTED_REASONS  # our outage or our lag, not the caller's
    for reason in ("realm_role_missing", "route_not_allowed", "cert_revoked", "locked_out"):
        assert reason not in COUNTED_REASONS
    assert "internal_error" not in COUNTED_REASONS and "audit_unavailable" not in COUNTED_REASONS


def test_only_counted_refusals_of_a_certificate_are_recorded(tmp_path):
    lock = lockouts(tmp_path, threshold=1)
    allow = AuthorizerResponse(
        decision="allow", status=200, reason="ok", identity=Identity(cert_serial=SERIAL)
    )
    for response in (
        allow,
        refusal(reason="realm_role_missing"),
        refusal(reason="jwks_unavailable"),
        refusal(serial=""),  # no certificate parsed: nothing to count
    ):
        lock.record(response, T0)
    assert list(tmp_path.iterdir()) == []
    lock.record(refusal(), T0)
    assert lock.locked_until(SERIAL, T0) > T0


def test_an_unwritable_folder_never_changes_a_decision(tmp_path, caplog):
    lock = lockouts(tmp_path / "missing", threshold=1)
    lock.record(refusal(), T0)  # logged, not raised
    assert "could not count" in caplog.text
    assert lock.locked_until(SERIAL, T0) == 0.0


# --- settings ---------------------------------------------------------------------------


def test_the_lockout_is_off_without_a_folder_or_with_threshold_zero(settings, tmp_path):
    assert lockout_from_settings(settings) is NO_LOCKOUTS
    on = Settings(**{**_fields(settings), "lockout_dir": str(tmp_path)})
    assert isinstance(lockout_from_settings(on), FolderLockouts)
    off = Settings(**{**_fields(settings), "lockout_dir": str(tmp_path), "lockout_threshold": 0})
    assert lockout_from_settings(off) is NO_LOCKOUTS


def _fields(settings: Settings) -> dict:
    return {
        name: getattr(settings, name)
        for name, spec in Settings.__dataclass_fields__.items()
        if spec.init
    }


def test_lockout_settings_are_range_checked(settings):
    for name, value in (
        ("lockout_threshold", -1),
        ("lockout_threshold", 1001),
        ("lockout_window_seconds", 0.5),
        ("lockout_seconds", 0),
        ("lockout_seconds", 86401),
    ):
        with pytest.raises(SettingsError, match=name.upper()):
            Settings(**{**_fields(settings), name: value})


# --- the decision ------------------------------------------------------------------------


def test_a_locked_out_certificate_is_refused_before_its_token_is_read(
    make_event, make_token, pki, tmp_path, now, keys, policy, settings, revocation, caches
):
    serial = serial_hex(pki.client.cert.serial_number)
    lock = lockouts(tmp_path)
    lock.lock(serial, now + 120)
    response = decide(
        make_event(token="not even a token"),
        keys=keys,
        policy=policy,
        settings=settings,
        revocation=revocation,
        caches=caches,
        now=now,
        lockouts=lock,
    )
    assert (response.decision, response.reason, response.status) == ("deny", "locked_out", 429)
    assert response.identity.cert_serial == serial  # the transport checks ran first
    assert response.valid_until == pytest.approx(now + 120, abs=1e-3)
    assert answer_headers(response, now) == [
        ("Retry-After", "120"),
        ("Cache-Control", "max-age=120"),
    ]
    # The same certificate with a good token once the lockout ended: allowed.
    later = decide(
        make_event(token=make_token()),
        keys=keys,
        policy=policy,
        settings=settings,
        revocation=revocation,
        caches=caches,
        now=now + 121,
        lockouts=lock,
    )
    assert later.reason == "ok"


def test_locked_out_is_a_throttling_refusal_with_429():
    assert issubclass(LockedOut, errors.Throttled)
    assert (LockedOut.reason, LockedOut.status) == ("locked_out", 429)
    assert LockedOut(until=T0).until == T0


# --- the Flask adapter: nginx's view -------------------------------------------------------


@pytest.fixture
def lockout_app(tmp_path, pki, keys, now, client_crl_pem):
    ca_file = tmp_path / "client-ca.pem"
    ca_file.write_text(pki.client_ca.pem)
    crl = tmp_path / "crl.pem"
    crl.write_text(client_crl_pem)
    folder = tmp_path / "lockout"
    folder.mkdir()
    app = create_app(
        {
            "TESTING": True,
            **required_config(ca_file, crl),
            "AUDIT_LOG": str(tmp_path / "audit.jsonl"),
            "KEY_SOURCE": keys,
            "CLOCK": lambda: now,
            "LOCKOUT_DIR": str(folder),
            "LOCKOUT_THRESHOLD": 3,
        }
    )
    return app.test_client(), tmp_path / "audit.jsonl"


def _headers(pki, token: str) -> dict[str, str]:
    return {
        "X-Client-Verify": "SUCCESS",
        "X-Client-Cert": quote(pki.client.pem, safe=""),
        "X-Original-Method": "GET",
        "X-Original-URI": "/api/resource",
        "X-Request-ID": "0123456789abcdef",
        "Authorization": f"Bearer {token}",
    }


def test_the_adapter_counts_refusals_and_answers_a_lockout_as_403_locked_out(
    lockout_app, pki, make_token
):
    client, audit = lockout_app
    answers = [client.get("/_authz", headers=_headers(pki, "x.y.z")) for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert all("Retry-After" not in a.headers for a in answers)
    locked = client.get("/_authz", headers=_headers(pki, make_token()))  # even a good token
    assert locked.status_code == 403  # auth_request understands 2xx/401/403 only
    assert locked.headers["X-Auth-Reason"] == "locked_out"
    assert locked.headers["Retry-After"] == "300"
    assert locked.headers["Cache-Control"] == "max-age=300"
    assert locked.headers["X-Accel-Expires"] == "0"  # never the decision cache's
    last = json.loads(audit.read_text().splitlines()[-1])
    assert (last["reason"], last["status"], last["cert_cn"]) == ("locked_out", 429, "python-client")
