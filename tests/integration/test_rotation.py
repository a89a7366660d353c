"""Certificates rotate and are revoked through OpenBao with zero failed requests."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest
import requests
from cryptography import x509

from client.api import GatewayClient
from scripts import cli, config
from scripts.pki import certs, rotation
from scripts.services import openbao, procs
from tests.integration.conftest import run_zt
from tests.load import Load
from tests.tokens import gateway_client, token_source

LOAD_SECONDS = 15
LOAD_THREADS = 4
LOAD_INTERVAL = 0.05  # per thread: ~80 requests/s in total


def _client(identity: str = "python-client") -> GatewayClient:
    return gateway_client(identity)


def _int(serial: str) -> int:
    return int(serial.replace(":", ""), 16)


def _load(seconds: float) -> Load:
    """python-client at ~80 requests/s through the client library: its bundle.pem,
    a token bound to it, both renewed on the first request after a rotation."""
    return Load.as_workload(
        "python-client",
        seconds=seconds,
        threads=LOAD_THREADS,
        interval=LOAD_INTERVAL,
    )


def _throwaway_client_cert() -> x509.Certificate:
    """A second, unrelated python-client cert (not the one on disk)."""
    out = certs.pki_outputs()
    c = certs.approle_client("client-python-client")
    data = c.secrets.pki.generate_certificate(
        name="python-client",
        common_name="python-client",
        mount_point=out["mounts"]["client_issuing"],
    )["data"]
    return x509.load_pem_x509_certificate(data["certificate"].encode())


def test_rotations_and_a_revocation_under_load_fail_no_request(stack):
    unrelated = _throwaway_client_cert()
    with _load(LOAD_SECONDS) as load:
        time.sleep(3)
        server = rotation.rotate_server("nginx")
        time.sleep(3)
        client = rotation.rotate_client("python-client")
        time.sleep(3)
        rotation.revoke(certs.serial_hex(unrelated))
    total = sum(load.results.values())
    print(f"\nrotation under load: {load.summary()}")
    assert total > LOAD_SECONDS * LOAD_THREADS, load.results
    assert load.failed == 0, load.errors[:5]
    # The new serials are the ones presented afterwards.
    assert rotation.served_serial(config.NGINX_PORT) == _int(server.new_serial)
    body = _client().request("GET", "/api/resource").json()
    assert int(body["cert_serial"], 16) == _int(client.new_serial)


def _refusal_line_since(offset: int) -> dict:
    """The first 400 line appended since ``offset``.

    nginx writes a line only after it answered, so a caller may see its response before the
    line exists — and the line of an earlier request may land after ``offset``. Waiting for
    "any new line" therefore races; wait for the refusal itself (bounded).
    """
    deadline = time.monotonic() + 5
    while True:
        with open(config.NGINX_ACCESS_LOG, "rb") as fh:
            fh.seek(offset)
            lines = [json.loads(line) for line in fh.read().splitlines() if line.strip()]
        refused = [line for line in lines if line["status"] == 400]
        if refused:
            return refused[0]
        assert time.monotonic() < deadline, f"no 400 line logged since the refusal: {lines}"
        time.sleep(0.05)


def test_a_revoked_client_cert_is_refused_and_a_freshly_rotated_one_works(stack):
    cert_file, _ = config.client_cert_paths("python-client")
    current = certs.load(cert_file)
    assert _client().request("GET", "/api/resource").status_code == 200
    offset = config.NGINX_ACCESS_LOG.stat().st_size
    api_offset = config.API_REQUEST_LOG.stat().st_size
    rotation.revoke(certs.serial_hex(current))
    try:
        r = _client().request("GET", "/api/resource")  # a new client: a new TLS connection
        assert r.status_code == 400
        assert r.json() == {"error": "client certificate required"}
        line = _refusal_line_since(offset)
        assert line["ssl_client_verify"] == "FAILED:certificate revoked"
        assert config.API_REQUEST_LOG.stat().st_size == api_offset  # the API received nothing
    finally:
        rotation.rotate_client("python-client")  # never leave a revoked cert in place
    assert _client().request("GET", "/api/resource").status_code == 200


def _hashes() -> dict[str, str]:
    files = [p for p in config.PKI_DIR.glob("*/*/*.pem")]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_rotation_with_vault_sealed_fails_clearly_and_touches_nothing(stack):
    before = _hashes()
    # No token may seal OpenBao (there is no root token); a restart seals it, and its
    # launcher unseals it from the state folder — unless the unseal key is unreadable.
    procs.stop(config.VAULT)
    aside = config.VAULT_UNSEAL.with_name("unseal.json.aside")
    os.replace(config.VAULT_UNSEAL, aside)
    try:
        openbao.start()
        assert openbao.health()["sealed"] is True
        for args in (["rotate", "client", "python-client"], ["rotate", "server", "nginx"]):
            r = run_zt(*args, timeout=60)
            assert r.returncode == 1
            assert "OpenBao is sealed" in r.stdout
            assert "current certificate files are untouched" in r.stdout
            assert "Traceback" not in r.stdout + r.stderr
        assert _hashes() == before
        # Serving continues on the current certificates while OpenBao is sealed.
        assert _client().request("GET", "/api/resource").status_code == 200
    finally:
        os.replace(aside, config.VAULT_UNSEAL)
        assert cli.main(["up"]) == 0  # unseals from the state folder
    assert openbao.health()["sealed"] is False


def test_revoke_of_an_unknown_or_malformed_serial_is_a_clear_error(stack):
    for serial, message in (
        ("zz:zz", "is not a certificate serial"),
        ("01:02:03:04", "no certificate with serial"),
    ):
        r = run_zt("revoke", serial, timeout=60)
        assert r.returncode == 1
        assert message in r.stdout


def test_renew_is_idempotent_and_rotates_nothing_that_is_fresh(stack):
    r1 = run_zt("renew", timeout=120)
    before = _hashes()
    r2 = run_zt("renew", timeout=120)
    assert r1.returncode == 0 and r2.returncode == 0
    assert "nothing due" in r2.stdout
    assert _hashes() == before


@pytest.mark.parametrize("name", ["vault", "keycloak"])
def test_serving_cert_rotation_of_vault_and_keycloak_is_picked_up_without_restart(stack, name):
    pid_before = (config.RUN / f"{name}.pid").read_text()
    result = rotation.rotate_server(name)
    port = config.VAULT_PORT if name == "vault" else config.KEYCLOAK_PORT
    assert rotation.served_serial(port) == _int(result.new_serial)
    assert (config.RUN / f"{name}.pid").read_text() == pid_before


def _call_with_bundle(bundle) -> requests.Response:
    """A workload on ``bundle`` (its own token, bound to that certificate)."""
    c = GatewayClient(config.GATEWAY_URL, token_source("python-client", bundle))
    return c.request("GET", "/api/resource")


def test_client_ca_rollover_under_load_fails_no_request_and_retires_the_old_ca(stack, tmp_path):
    cert_file, _ = config.client_cert_paths("python-client")
    old_bundle = tmp_path / "old-bundle.pem"
    old_bundle.write_bytes(certs.bundle_path(cert_file).read_bytes())
    old_issuer = certs.load(cert_file).issuer
    with _load(LOAD_SECONDS) as load:
        time.sleep(3)
        rotation.rollover_begin()
        # Overlap: both generations are trusted.
        assert certs.load(cert_file).issuer != old_issuer
        assert _call_with_bundle(old_bundle).status_code == 200
        assert _call_with_bundle(certs.bundle_path(cert_file)).status_code == 200
        time.sleep(3)
        rotation.rollover_finish()
    total = sum(load.results.values())
    print(f"\nclient-CA rollover under load: {load.summary()}")
    assert total > LOAD_SECONDS * LOAD_THREADS
    assert load.failed == 0, load.errors[:5]
    offset = config.NGINX_ACCESS_LOG.stat().st_size
    r = _call_with_bundle(old_bundle)
    assert r.status_code == 400
    assert _refusal_line_since(offset)["ssl_client_verify"] == "FAILED:certificate revoked"
    assert _call_with_bundle(certs.bundle_path(cert_file)).status_code == 200
    # The retired CA is gone from every trust file.
    issuers = x509.load_pem_x509_certificates(config.CLIENT_ISSUING_CA.read_bytes())
    assert [c.subject for c in issuers] == [certs.load(cert_file).issuer]
    assert json.loads(config.CLIENT_CA_GENERATIONS.read_text()) != ["1"]
