"""Nothing behind nginx trusts a caller it cannot authenticate.

* Only nginx's workers can open the verifier's and the API's unix sockets: they are
  ``zt-service:zt-gateway`` 0660 and only ``zt-nginx`` is in ``zt-gateway`` — not
  ``www-data``, the group the sockets used to share with every Debian nginx.
* The verifier's and the API's workers run as the unprivileged ``zt-service``.
* A process that can reach the API's socket anyway (root, here) still gets nothing
  with a forged ``X-Auth-Identity``: the API requires the verifier's
  ``X-Auth-Assertion`` and logs every refusal with its reason.

As a non-root user the stack creates no accounts; then the sockets are the user's
own, 0600, and the same API check applies (asserted below as well).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import config
from scripts.services import accounts, procs, unixhttp
from verifier import assertion

SOCKETS = (config.VERIFIER_SOCKET, config.API_SOCKET)
FORGED_IDENTITY = json.dumps(
    {"subject": "batch-worker", "azp": "batch-worker", "realm_roles": ["admin"]}
)
_CONNECT = (
    "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
    "print('connected')"
)


def _workers(svc: config.Service) -> list[int]:
    pid = procs.running(svc)
    assert pid is not None, f"{svc.name} is not running"
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _uid(pid: int) -> int:
    return Path(f"/proc/{pid}").stat().st_uid


@pytest.mark.parametrize("svc", [config.VERIFIER, config.API], ids=lambda s: s.name)
def test_the_verifier_and_api_workers_run_as_the_unprivileged_service_user(stack, svc):
    expected = pwd.getpwnam(config.SERVICE_USER).pw_uid if accounts.privileged() else os.getuid()
    workers = _workers(svc)
    assert workers
    assert {_uid(pid) for pid in workers} == {expected}
    assert expected != 0 or not accounts.privileged()


def test_nginx_workers_run_as_the_gateway_user(stack):
    expected = pwd.getpwnam(config.NGINX_USER).pw_uid if accounts.privileged() else os.getuid()
    assert {_uid(pid) for pid in _workers(config.NGINX)} == {expected}


@pytest.mark.parametrize("sock", SOCKETS, ids=lambda p: p.name)
def test_the_sockets_admit_only_the_gateway_group(stack, sock):
    st = sock.stat()
    assert stat.S_ISSOCK(st.st_mode)
    if accounts.privileged():
        assert (pwd.getpwuid(st.st_uid).pw_name, stat.S_IMODE(st.st_mode)) == (
            config.SERVICE_USER,
            0o660,
        )
        assert grp.getgrgid(st.st_gid).gr_name == config.GATEWAY_GROUP
        assert "www-data" not in grp.getgrgid(st.st_gid).gr_mem
    else:
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (os.getuid(), 0o600)


@pytest.mark.parametrize("sock", SOCKETS, ids=lambda p: p.name)
def test_a_process_in_nginxs_old_group_cannot_open_the_sockets(stack, sock):
    assert accounts.privileged(), "the stack's accounts exist only when it runs as root"
    denied = subprocess.run(
        [sys.executable, "-c", _CONNECT, str(sock)],
        user="www-data",
        group="www-data",
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert denied.returncode != 0
    assert "PermissionError" in denied.stderr
    allowed = subprocess.run(  # the same probe as nginx's worker user does connect
        [sys.executable, "-c", _CONNECT, str(sock)],
        user=config.NGINX_USER,
        group=config.GATEWAY_GROUP,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert allowed.stdout.strip() == "connected", allowed.stderr


def _api_lines_since(offset: int) -> list[dict]:
    with open(config.API_REQUEST_LOG, "rb") as fh:
        fh.seek(offset)
        return [json.loads(line) for line in fh.read().splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "assertion_missing"),
        ("v1.9999999999.AAAA", "assertion_mismatch"),
        ("forged", "assertion_malformed"),
    ],
)
def test_the_api_refuses_a_forged_identity_sent_straight_to_its_socket(stack, value, reason):
    headers = {"X-Auth-Identity": FORGED_IDENTITY, "X-Auth-Subject": "batch-worker"}
    if value is not None:
        headers[assertion.HEADER] = value
    offset = config.API_REQUEST_LOG.stat().st_size
    answer = unixhttp.request(config.API_SOCKET, "GET", "/api/admin/stats", headers)
    assert answer.status == 401
    assert json.loads(answer.body) == {"error": "unauthorized"}
    lines = [x for x in _api_lines_since(offset) if x["path"] == "/api/admin/stats"]
    assert [x["refused"] for x in lines] == [reason]


def _probe(sock, user: str, group: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _CONNECT, str(sock)],
        user=user,
        group=group,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_only_nginxs_workers_can_reach_the_lockout_hop(stack):
    """nginx makes its unix sockets 0666, so the lockout hop's (which forwards to the
    verifier) is guarded by its folder: nginx's workers only (0700) — not another
    user, not the verifier's and the API's workers (in zt-gateway too)."""
    assert accounts.privileged(), "the stack's accounts exist only when it runs as root"
    sock = config.LOCKOUT_HOP_SOCKET
    folder = sock.parent.stat()
    assert pwd.getpwuid(folder.st_uid).pw_name == config.NGINX_USER
    assert stat.S_IMODE(folder.st_mode) == 0o700
    for user, group in (("www-data", "www-data"), (config.SERVICE_USER, config.GATEWAY_GROUP)):
        denied = _probe(sock, user, group)
        assert denied.returncode != 0 and "PermissionError" in denied.stderr, (user, denied)
    allowed = _probe(sock, config.NGINX_USER, config.GATEWAY_GROUP)
    assert allowed.stdout.strip() == "connected", allowed.stderr
