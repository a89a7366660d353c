"""Revocation holds for every connection, within a stated bound, however it was made.

Each test issues its own throw-away python-client certificate through the workload's
AppRole (the stack's own certificate is never revoked here) and talks TLS to nginx
with Python's ``ssl`` so it controls session resumption exactly:

* a TLS session saved before a revocation (TLS 1.2 session id, TLS 1.3 ticket,
  chained TLS 1.3 resumptions, across an nginx reload) never gets a request in
  after it, with the certificate or with the saved session alone;
* nginx's decision cache never answers for the revoked certificate again;
* a revocation made directly in OpenBao (the revoker AppRole through hvac, not
  ``zt``) is enforced for new handshakes and for a keep-alive connection opened
  before it, within ``config.REVOCATION_BOUND_SECONDS`` (the delay is printed);
* the verifier refuses the revoked serial by itself (``cert_revoked``).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization

from client.token import TokenSource
from scripts import config, terraform
from scripts.pki import certs, rotation
from scripts.services import nginx, unixhttp
from tests.integration.conftest import run_zt
from tests.pki_helpers import Workload, issue_throwaway
from tests.tokens import request_token, token_source

TLS_FLAGS = {"TLSv1.2": "-tls1_2", "TLSv1.3": "-tls1_3"}


@pytest.fixture
def workload(stack: None, tmp_path: Path) -> Workload:
    return issue_throwaway(tmp_path)


@pytest.fixture
def token(workload: Workload) -> TokenSource:
    """python-client's tokens bound to the throw-away certificate (RFC 8705)."""
    return token_source("python-client", workload.cert_file, workload.key_file)


@dataclass(frozen=True)
class Answer:
    status: int
    reused: bool


def tls_request(
    token: str,
    workload: Workload | None,
    version: str,
    *,
    sess_in: Path | None = None,
    sess_out: Path | None = None,
) -> Answer:
    """One GET /api/resource on a new TLS connection, with ``openssl s_client`` (as an
    attacker would: it resumes a saved session file, with or without a certificate).
    ``workload=None`` presents no certificate; ``sess_in`` offers a saved session,
    ``sess_out`` saves this one (TLS 1.3: with the tickets nginx sent)."""
    argv = ["openssl", "s_client", "-connect", f"{config.HOST}:{config.NGINX_PORT}"]
    argv += ["-servername", "localhost", TLS_FLAGS[version], "-ign_eof"]
    argv += ["-CAfile", str(config.SERVER_CA_BUNDLE), "-verify_return_error"]
    if workload is not None:
        argv += ["-cert", str(workload.cert_file), "-key", str(workload.key_file)]
    if sess_in is not None:
        argv += ["-sess_in", str(sess_in)]
    if sess_out is not None:
        argv += ["-sess_out", str(sess_out)]
    request = (
        "GET /api/resource HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    out = subprocess.run(argv, input=request, capture_output=True, text=True, timeout=20)
    status = re.search(r"^HTTP/1\.1 (\d{3}) ", out.stdout, re.MULTILINE)
    assert status, f"no HTTP answer (exit {out.returncode}): {out.stderr[-500:]}"
    return Answer(int(status.group(1)), "\nReused, " in out.stdout)


def nginx_lines_since(offset: int) -> list[dict]:
    with open(config.NGINX_ACCESS_LOG, "rb") as fh:
        fh.seek(offset)
        return [json.loads(line) for line in fh.read().splitlines() if line.strip()]


def wait_for_line(offset: int, predicate, seconds: float = 5.0) -> dict:
    """nginx logs after it answered: wait (bounded) for the line we expect."""
    deadline = time.monotonic() + seconds
    while True:
        found = [line for line in nginx_lines_since(offset) if predicate(line)]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no matching nginx line: {nginx_lines_since(offset)}"
        time.sleep(0.05)


def revoke_with_zt(workload: Workload) -> None:
    with rotation.locked():
        rotation.revoke(workload.serial)


def test_the_mtls_listener_hands_out_no_tls12_session_id(workload, token, tmp_path):
    """A TLS 1.2 client gets no session id to resume (`ssl_session_cache off`)."""
    saved = tmp_path / "session.pem"
    assert tls_request(token.get(), workload, "TLSv1.2", sess_out=saved).status == 200
    assert not saved.exists()  # s_client saves a session only when there is one


def test_the_mtls_listener_resumes_no_tls13_session(workload, token, tmp_path):
    saved = tmp_path / "session.pem"
    assert tls_request(token.get(), workload, "TLSv1.3", sess_out=saved).status == 200
    assert saved.exists()  # OpenSSL still sends a (stateful, never honoured) ticket
    again = tls_request(token.get(), workload, "TLSv1.3", sess_in=saved)
    assert (again.status, again.reused) == (200, False)
    # The saved session alone (no certificate) gets nothing either.
    alone = tls_request(token.get(), None, "TLSv1.3", sess_in=saved)
    assert (alone.status, alone.reused) == (400, False)


def test_a_tls13_session_saved_before_a_revocation_gets_no_request_in_after_it(
    workload, token, tmp_path
):
    saved = tmp_path / "session.pem"
    assert tls_request(token.get(), workload, "TLSv1.3", sess_out=saved).status == 200
    offset = config.NGINX_ACCESS_LOG.stat().st_size
    revoke_with_zt(workload)
    with_cert = tls_request(token.get(), workload, "TLSv1.3", sess_in=saved)
    without_cert = tls_request(token.get(), None, "TLSv1.3", sess_in=saved)
    assert (with_cert.status, with_cert.reused) == (400, False)
    assert (without_cert.status, without_cert.reused) == (400, False)
    line = wait_for_line(offset, workload.owns)
    assert line["ssl_client_verify"] == "FAILED:certificate revoked"


def test_chained_tls13_resumptions_never_carry_a_revoked_certificate(workload, token, tmp_path):
    """Each attempt offers the session the one before saved, across a revocation."""
    statuses = []
    for attempt in range(6):
        if attempt == 3:
            revoke_with_zt(workload)
        sess_in = tmp_path / f"session-{attempt - 1}.pem" if attempt else None
        answer = tls_request(
            token.get(),
            workload,
            "TLSv1.3",
            sess_in=sess_in,
            sess_out=tmp_path / f"session-{attempt}.pem",
        )
        assert not answer.reused
        statuses.append(answer.status)
    assert statuses == [200, 200, 200, 400, 400, 400]


def test_a_session_saved_before_an_nginx_reload_is_not_resumed_after_it(workload, token, tmp_path):
    saved = tmp_path / "session.pem"
    assert tls_request(token.get(), workload, "TLSv1.3", sess_out=saved).status == 200
    with rotation.locked():
        nginx.reload_nginx()
    answer = tls_request(token.get(), workload, "TLSv1.3", sess_in=saved)
    assert (answer.status, answer.reused) == (200, False)


def _session(workload: Workload, token: TokenSource) -> requests.Session:
    """A keep-alive client holding one connection, as a long-lived workload would."""
    session = requests.Session()
    session.cert = (str(workload.cert_file), str(workload.key_file))
    session.headers["Authorization"] = f"Bearer {token.get()}"
    return session


def _status(session: requests.Session, url: str) -> int | str:
    try:
        # verify per request: a session's own `verify` loses to REQUESTS_CA_BUNDLE.
        return session.get(url, verify=str(config.SERVER_CA_BUNDLE), timeout=10).status_code
    except requests.ConnectionError as e:
        return f"connection refused or reset: {type(e).__name__}"


def test_the_decision_cache_never_answers_for_a_certificate_revoked_after_it_cached(
    workload, token
):
    assert nginx.authz_cache_enabled(), "the decision cache is on by default"
    session = _session(workload, token)
    url = f"{config.GATEWAY_URL}/api/resource?cache-probe={workload.nginx_serial[:12]}"
    offset = config.NGINX_ACCESS_LOG.stat().st_size
    assert [_status(session, url) for _ in range(3)] == [200, 200, 200]
    wait_for_line(
        offset,
        lambda x: x["ssl_client_serial"] == workload.nginx_serial and x["auth_cache"] == "HIT",
    )
    revoked_at = config.NGINX_ACCESS_LOG.stat().st_size
    revoke_with_zt(workload)
    assert _status(session, url) != 200  # the keep-alive connection opened before
    assert _status(_session(workload, token), url) == 400  # a new one
    wait_for_line(revoked_at, lambda x: x["ssl_client_serial"] == workload.nginx_serial)
    after = [
        x for x in nginx_lines_since(revoked_at) if x["ssl_client_serial"] == workload.nginx_serial
    ]
    assert after and all(x["status"] != 200 and x["auth_cache"] != "HIT" for x in after), after


def test_a_certificate_revoked_in_openbao_by_the_revoker_approle_is_refused_within_the_bound(
    workload, token
):
    url = f"{config.GATEWAY_URL}/api/resource"
    keep_alive = _session(workload, token)
    assert _status(keep_alive, url) == 200
    mount = certs.pki_outputs()["mounts"]["client_issuing"]
    revoker = certs.approle_client("revoker")
    offset = config.NGINX_ACCESS_LOG.stat().st_size
    started = time.monotonic()
    revoker.write_data(f"{mount}/revoke", data={"serial_number": workload.serial})
    deadline = started + config.REVOCATION_BOUND_SECONDS + 5
    while tls_request(token.get(), workload, "TLSv1.3").status != 400:
        assert time.monotonic() < deadline, "a new handshake still succeeds"
        time.sleep(0.1)
    delay = time.monotonic() - started
    print(
        f"\nout-of-band revocation (revoker AppRole via hvac): new handshakes refused after "
        f"{delay:.2f}s (bound {config.REVOCATION_BOUND_SECONDS:g}s, watcher every "
        f"{config.CRL_WATCH_SECONDS:g}s)"
    )
    assert delay <= config.REVOCATION_BOUND_SECONDS
    assert _status(keep_alive, url) != 200  # the connection opened before the revocation
    line = wait_for_line(offset, lambda x: x["ssl_client_verify"].startswith("FAILED"))
    assert line["ssl_client_verify"] == "FAILED:certificate revoked"


def test_the_verifier_refuses_a_revoked_certificate_by_itself(workload, token):
    """As if nginx still trusted it (a stale CRL): the verifier reads the CRL itself."""
    revoke_with_zt(workload)
    leaf = workload.certificate.public_bytes(serialization.Encoding.PEM).decode()
    request_id = f"revoked-{workload.nginx_serial[:16].lower()}"
    offset = config.AUDIT_LOG.stat().st_size
    answer = unixhttp.request(
        config.VERIFIER_SOCKET,
        "GET",
        "/_authz",
        {
            "X-Client-Verify": "SUCCESS",
            "X-Client-Cert": urllib.parse.quote(leaf),
            "X-Original-Method": "GET",
            "X-Original-URI": "/api/resource",
            "X-Request-ID": request_id,
            "Authorization": f"Bearer {token.get()}",
        },
    )
    assert answer.status == 401
    assert answer.headers["X-Auth-Reason"] == "cert_revoked"
    with open(config.AUDIT_LOG, "rb") as fh:
        fh.seek(offset)
        audit = [json.loads(x) for x in fh.read().splitlines() if x.strip()]
    ours = [x for x in audit if x["request_id"] == request_id]
    assert [(x["decision"], x["reason"]) for x in ours] == [("deny", "cert_revoked")]


def test_revoke_with_disable_client_cuts_new_tokens_until_enable_client(workload, token):
    """The incident step: a workload whose key leaked gets no new token either."""

    def new_token() -> requests.Response:
        return request_token("python-client", workload.files)

    revoked = run_zt("revoke", workload.serial, "--disable-client", timeout=300)
    try:
        assert revoked.returncode == 0, revoked.stdout + revoked.stderr
        assert "disable the Keycloak client python-client" in revoked.stdout
        refused = new_token()
        assert refused.status_code in (400, 401), refused.text
        assert refused.json()["error"] in ("unauthorized_client", "invalid_client")
        changes, _ = terraform.plan_has_changes("identity", terraform.identity_env())
        assert not changes, "the disabled client is Terraform's own state, not drift"
    finally:
        enabled = run_zt("enable-client", "python-client", timeout=300)
        assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    assert new_token().status_code == 200
