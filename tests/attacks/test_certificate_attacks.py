"""Client certificates that chain (or pretend to chain) to the client CA but are wrong.

All of them are refused by nginx in the handshake's verification
(``ssl_verify_client on``, OpenSSL's ``sslclient`` purpose, ``ssl_verify_depth 2``):
nginx answers 400 ``{"error":"client certificate required"}``, logs
``ssl_client_verify = FAILED:<reason>``, and the verifier is never asked — so the
verifier's own ``client_cert_not_client_auth`` / ``client_cert_expired`` /
``client_cert_not_yet_valid`` codes are defence in depth, covered by
``tests/unit`` (the PKI fixtures there include exactly these certificates).

Certificates from OUR client issuing CA with the wrong properties are minted by
the root token through ``pki_client/sign-verbatim`` (a simulated mis-issuance;
the workload AppRoles cannot do this). Each lives minutes at most.

Not reproducible against the real CA: a not-yet-valid certificate (OpenBao
always back-dates notBefore, ``not_before_duration`` >= 0), so that case stays
at unit level (``client_cert_not_yet_valid`` in tests/unit/test_handler.py).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scripts import certs, config, vault_server
from tests.attacks.conftest import LogWindow, bearer, call

CERT_REQUIRED = {"error": "client certificate required"}


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _write_pair(tmp_path: Path, chain_pem: str, key: ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_text(chain_pem)
    key_file.write_bytes(_key_pem(key))
    key_file.chmod(0o600)
    return str(cert_file), str(key_file)


def _sign_verbatim(key: ec.EllipticCurvePrivateKey, **params: Any) -> dict[str, Any]:
    """Root token signs a CN=python-client CSR on the CLIENT issuing mount, verbatim."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "python-client")]))
        .sign(key, hashes.SHA256())
    )
    mount = certs.pki_outputs()["mounts"]["client_issuing"]
    root = vault_server.client(vault_server.root_token())
    return root.write_data(
        f"{mount}/sign-verbatim",
        data={"csr": csr.public_bytes(serialization.Encoding.PEM).decode(), **params},
    )["data"]


def _assert_refused_by_nginx(r: requests.Response, window: LogWindow, reason_part: str) -> None:
    assert r.status_code == 400, r.text
    assert r.json() == CERT_REQUIRED
    trail = window.trail()
    assert trail.nginx["status"] == 400
    verify = trail.nginx["ssl_client_verify"]
    assert verify.startswith("FAILED:"), trail.nginx
    assert reason_part in verify, verify
    assert trail.audit == []
    assert trail.api == []


def test_a_client_ca_cert_with_only_server_auth_is_refused_by_nginx(log_since, token_for, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    issued = _sign_verbatim(key, ext_key_usage=["ServerAuth"], ttl="5m")
    leaf = x509.load_pem_x509_certificate(issued["certificate"].encode())
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]  # really from our client CA
    pair = _write_pair(tmp_path, issued["certificate"] + "\n", key)
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=pair, headers=bearer(token_for("python-client")))
    _assert_refused_by_nginx(r, window, "unsuitable certificate purpose")


def test_an_expired_client_ca_cert_is_refused_by_nginx(log_since, token_for, tmp_path):
    # OpenBao signs a notAfter in the past without complaint (sign-verbatim +
    # not_after), which gives an already-expired cert without waiting.
    key = ec.generate_private_key(ec.SECP256R1())
    issued = _sign_verbatim(key, ext_key_usage=["ClientAuth"], not_after="2020-01-01T00:00:00Z")
    leaf = x509.load_pem_x509_certificate(issued["certificate"].encode())
    assert leaf.not_valid_after_utc < dt.datetime.now(dt.UTC)
    pair = _write_pair(tmp_path, issued["certificate"] + "\n", key)
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=pair, headers=bearer(token_for("python-client")))
    _assert_refused_by_nginx(r, window, "expired")


def test_a_client_ca_cert_that_expires_after_issuance_is_refused_by_nginx(
    log_since, token_for, tmp_path
):
    # ttl=2s: valid when issued, presented once it has run out.
    key = ec.generate_private_key(ec.SECP256R1())
    issued = _sign_verbatim(key, ext_key_usage=["ClientAuth"], ttl="2s")
    leaf = x509.load_pem_x509_certificate(issued["certificate"].encode())
    wait = (leaf.not_valid_after_utc - dt.datetime.now(dt.UTC)).total_seconds() + 1.5
    assert 0 < wait < 10, wait
    time.sleep(wait)
    pair = _write_pair(tmp_path, issued["certificate"] + "\n", key)
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=pair, headers=bearer(token_for("python-client")))
    _assert_refused_by_nginx(r, window, "expired")


def _rogue_ca(subject: x509.Name, issuer_key: Any, issuer_name: x509.Name, key: Any):
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
        .sign(issuer_key, hashes.SHA256())
    )


def _rogue_leaf(ca: x509.Certificate, ca_key: Any, key: Any) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "python-client")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )


def test_a_chain_through_a_foreign_intermediate_is_refused_by_nginx(log_since, token_for, tmp_path):
    # leaf <- rogue intermediate <- rogue root, the whole chain presented: nginx
    # may only build paths to the client CA bundle, so the extra certs don't help.
    root_key, int_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Rogue Root")])
    root = _rogue_ca(root_name, root_key, root_name, root_key)
    intermediate = _rogue_ca(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Rogue Intermediate")]),
        root_key,
        root_name,
        int_key,
    )
    leaf = _rogue_leaf(intermediate, int_key, leaf_key)
    pair = _write_pair(tmp_path, _pem(leaf) + _pem(intermediate) + _pem(root), leaf_key)
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=pair, headers=bearer(token_for("python-client")))
    _assert_refused_by_nginx(r, window, "FAILED:")


def test_a_foreign_intermediate_named_like_our_issuing_ca_is_refused_by_nginx(
    log_since, token_for, tmp_path
):
    # Name collision: the rogue intermediate copies our issuing CA's subject and
    # claims our client ROOT as its issuer; only the signature gives it away.
    ours = x509.load_pem_x509_certificates(config.CLIENT_CA_BUNDLE.read_bytes())
    issuing = next(c for c in ours if c.subject != c.issuer)
    rogue_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    rogue = _rogue_ca(issuing.subject, rogue_key, issuing.issuer, rogue_key)
    leaf = _rogue_leaf(rogue, rogue_key, leaf_key)
    pair = _write_pair(tmp_path, _pem(leaf) + _pem(rogue), leaf_key)
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=pair, headers=bearer(token_for("python-client")))
    _assert_refused_by_nginx(r, window, "FAILED:")
