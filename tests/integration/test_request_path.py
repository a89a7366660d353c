"""The request path end to end: client -> nginx (mTLS) -> verifier -> API."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scripts import bringup, config
from scripts.services import procs
from scripts.steps import wait_until


def _log_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_demo_call_binds_token_and_certificate_to_the_same_identity(stack):
    body = bringup.demo_call()
    assert body["azp"] == "python-client"
    assert body["cert_cn"] == "python-client"
    assert "viewer" in body["realm_roles"]
    assert body["org"] == "acme"


def _lines_with(path, request_id: str) -> list[dict]:
    return [line for line in _log_lines(path) if line["request_id"] == request_id]


def test_allowed_request_leaves_one_audit_line_and_one_nginx_line_with_its_request_id(stack):
    body = bringup.demo_call()
    rid = body["request_id"]
    # nginx writes its line after it has answered: wait for it (bounded) before counting.
    wait_until(
        "nginx's access line",
        lambda: bool(_lines_with(config.NGINX_ACCESS_LOG, rid)),
        5,
        str(config.NGINX_ACCESS_LOG),
    )
    audit = _lines_with(config.AUDIT_LOG, rid)
    access = _lines_with(config.NGINX_ACCESS_LOG, rid)
    assert len(audit) == 1 and len(access) == 1
    assert audit[0]["decision"] == "allow" and audit[0]["reason"] == "ok"
    assert audit[0]["azp"] == "python-client"
    assert access[0]["status"] == 200 and access[0]["auth_reason"] == "ok"
    # Each hop's time (demo_call mints a new token: never a decision-cache hit).
    assert access[0]["auth_cache"] != "HIT"
    assert float(access[0]["auth_time"]) >= 0  # the verifier subrequest
    assert float(access[0]["upstream_time"]) >= 0  # the API


def test_the_audit_log_never_contains_a_token(stack):
    bringup.demo_call()
    text = config.AUDIT_LOG.read_text()
    assert "eyJ" not in text  # every JWT starts with a base64url '{"'
    assert "Bearer" not in text


def test_readme_curl_walkthrough_works_verbatim(stack):
    # The two commands from README "Call the API with curl", run by a shell.
    readme = (config.REPO / "README.md").read_text()
    block = readme.split("<!-- curl-walkthrough -->")[1].split("```sh")[1].split("```")[0]
    r = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=config.REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout.strip().splitlines()[-1])
    assert answer["azp"] == answer["cert_cn"] == "python-client"


def test_client_cli_calls_the_gateway(stack):
    r = subprocess.run(
        [sys.executable, "-m", "client", "call", "/api/resource"],
        cwd=config.REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("HTTP 200")


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_nginx_refuses_old_tls_versions(stack, flag):
    r = subprocess.run(
        [
            "openssl",
            "s_client",
            flag,
            "-connect",
            f"{config.HOST}:{config.NGINX_PORT}",
            "-CAfile",
            str(config.SERVER_CA_BUNDLE),
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "Cipher is (NONE)" in r.stdout or r.returncode != 0


def test_nginx_asks_only_for_client_ca_certificates(stack):
    r = subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"{config.HOST}:{config.NGINX_PORT}",
            "-CAfile",
            str(config.SERVER_CA_BUNDLE),
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    names = r.stdout.split("Acceptable client certificate CA names")[1]
    acceptable = names.split("Requested Signature Algorithms")[0]
    assert "Client" in acceptable and "Server" not in acceptable


def test_the_api_and_the_verifier_listen_on_no_tcp_port(stack):
    ss = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    assert procs.running(config.API) and procs.running(config.VERIFIER)
    assert '"gunicorn"' not in ss, f"a gunicorn listens on TCP:\n{ss}"
    listeners = {line.split()[3] for line in ss.splitlines()}
    assert f"{config.HOST}:{config.NGINX_PORT}" in listeners
    assert config.API_SOCKET.is_socket() and config.VERIFIER_SOCKET.is_socket()
    assert config.API_SOCKET.stat().st_mode & 0o007 == 0  # no access for others


def test_rendered_nginx_config_passes_nginx_t(stack):
    r = subprocess.run(
        ["nginx", "-t", "-c", str(config.NGINX_CONF)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
