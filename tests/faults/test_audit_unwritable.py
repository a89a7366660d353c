"""The audit log cannot be written: every request is denied, none is allowed unaudited.

``verifier/auditlog.py`` checks per record that its open file is still the one at the path
(and reopens it otherwise, O_APPEND|O_CREAT), so
replacing ``.state/logs/audit.log`` with a DIRECTORY makes every write fail with
EISDIR (file modes would not do it: the stack may run as root). Expected:

* the verifier denies everything with ``audit_unavailable`` (status 503) — the
  allowed request and the refused ones alike;
* nginx's ``auth_request`` treats the unexpected 503 as an error (500), which our
  ``error_page`` turns into 503 ``{"error":"unavailable"}``; its access log still
  carries ``auth_reason=audit_unavailable``;
* the API receives nothing;
* the only trail left, the record itself, goes to the verifier's error log.

The swap in and out is one atomic ``renameat2(RENAME_EXCHANGE)``, so no audit
line of a concurrent request is lost when the file is put back.
"""

from __future__ import annotations

import ctypes
import os
import secrets

import pytest

from scripts import config
from tests.attacks.conftest import LogWindow, bearer, call, cert_of

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: str, b: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(_AT_FDCWD, a.encode(), _AT_FDCWD, b.encode(), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), a)


def _decisions(window: LogWindow, token: str) -> list:
    cert = cert_of("python-client")
    return [
        call(window, "GET", "/api/resource", cert=cert, headers=bearer(token)),  # would allow
        call(window, "GET", "/api/resource", cert=cert, headers={}),  # token_missing
        call(window, "POST", "/api/resource", cert=cert, headers=bearer(token)),  # 403
    ]


def test_an_unwritable_audit_log_denies_every_request_with_503(log_since, token_for):
    token = token_for("python-client")
    audit = str(config.AUDIT_LOG)
    aside = f"{audit}.fault-{secrets.token_hex(4)}"
    os.mkdir(aside)
    window = log_since()
    err_offset = config.VERIFIER.log_file.stat().st_size
    try:
        try:
            _exchange(audit, aside)  # audit.log is now the directory
        except OSError as e:  # pragma: no cover - filesystem without RENAME_EXCHANGE
            pytest.fail(f"renameat2(RENAME_EXCHANGE) unavailable here: {e}")
        responses = _decisions(window, token)
    finally:
        _exchange(audit, aside)  # the file is back, atomically
        os.rmdir(aside)
    for r in responses:
        assert r.status_code == 503, r.text
        assert r.json() == {"error": "unavailable"}
    nginx = window.marked(3)  # waits: nginx logs after it answered
    assert len(nginx) == 3
    assert {line["status"] for line in nginx} == {503}
    assert {line["auth_reason"] for line in nginx} == {"audit_unavailable"}
    ids = {line["request_id"] for line in nginx}
    assert not [line for line in window.lines("audit") if line["request_id"] in ids]
    for rid in ids:
        assert window.api_lines_for(rid) == []
    errors = config.VERIFIER.log_file.read_text(errors="replace")[err_offset:]
    for rid in ids:
        assert rid in errors, "the denied record must reach the verifier's error log"
    assert token not in errors  # never the token

    # Writable again: the same token is allowed and audited.
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=cert_of("python-client"), headers=bearer(token))
    assert r.status_code == 200, r.text
    assert window.trail().reasons == ["ok"]
