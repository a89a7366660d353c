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
at unit level (``client_cert_not_yet_valid`` in tests/unit/test_decision.py).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from scripts import config
from tests.attacks.conftest import assert_refused_by_nginx, bearer, call, sign_verbatim
from tests.x509_helpers import build_cert, cert_pem, extended_key_usage, name, new_key, write_pair


def test_a_client_ca_cert_with_only_server_auth_is_refused_by_nginx(log_since, token_for, tmp_path):
    key = new_key()
    issued = sign_verbatim("client_issuing", key, ext_key_usage=["ServerAuth"], ttl="5m")
    # really from our client CA
    assert extended_key_usage(issued["certificate"]) == [ExtendedKeyUsageOID.SERVER_AUTH]
    pair = write_pair(tmp_path, issued["certificate"] + "\n", key)
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=pair, headers=bearer(token_for("python-client")))
    assert_refused_by_nginx(r, window, "unsuitable certificate purpose")


def test_an_expired_client_ca_cert_is_refused_by_nginx(log_since, token_for, tmp_path):
    # OpenBao signs a notAfter in the past without complaint (sign-verbatim +
    # not_after), which gives an already-expired cert without waiting.
    key = new_key()
    issued = sign_verbatim(
        "client_issuing", key, ext_key_usage=["ClientAuth"], not_after="2020-01-01T00:00:00Z"
    )
    leaf = x509.load_pem_x509_certificate(issued["certificate"].encode())
    assert leaf.not_valid_after_utc < dt.datetime.now(dt.UTC)
    pair = write_pair(tmp_path, issued["certificate"] + "\n", key)
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=pair, headers=bearer(token_for("python-client")))
    assert_refused_by_nginx(r, window, "expired")


def test_a_client_ca_cert_that_expires_after_issuance_is_refused_by_nginx(
    log_since, token_for, tmp_path
):
    # ttl=2s: valid when issued, presented once it has run out.
    key = new_key()
    issued = sign_verbatim("client_issuing", key, ext_key_usage=["ClientAuth"], ttl="2s")
    leaf = x509.load_pem_x509_certificate(issued["certificate"].encode())
    wait = (leaf.not_valid_after_utc - dt.datetime.now(dt.UTC)).total_seconds() + 1.5
    assert 0 < wait < 10, wait
    time.sleep(wait)
    pair = write_pair(tmp_path, issued["certificate"] + "\n", key)
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=pair, headers=bearer(token_for("python-client")))
    assert_refused_by_nginx(r, window, "expired")


def _rogue_ca(subject: x509.Name, issuer_key: Any, issuer_name: x509.Name, key: Any):
    return build_cert(
        subject,
        key,
        issuer=issuer_name,
        signing_key=issuer_key,
        ca=True,
        subject_key_id=True,
        authority_key=issuer_key,
    )


def _rogue_leaf(ca: x509.Certificate, ca_key: Any, key: Any) -> x509.Certificate:
    return build_cert(
        "python-client",
        key,
        issuer=ca.subject,
        signing_key=ca_key,
        ca=False,
        client_auth=True,
        authority_key=ca_key,
    )


def test_a_chain_through_a_foreign_intermediate_is_refused_by_nginx(log_since, token_for, tmp_path):
    # leaf <- rogue intermediate <- rogue root, the whole chain presented: nginx
    # may only build paths to the client CA bundle, so the extra certs don't help.
    root_key, int_key, leaf_key = (new_key() for _ in range(3))
    root_name = name("Rogue Root")
    root = _rogue_ca(root_name, root_key, root_name, root_key)
    intermediate = _rogue_ca(
        name("Rogue Intermediate"),
        root_key,
        root_name,
        int_key,
    )
    leaf = _rogue_leaf(intermediate, int_key, leaf_key)
    pair = write_pair(tmp_path, cert_pem(leaf) + cert_pem(intermediate) + cert_pem(root), leaf_key)
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=pair, headers=bearer(token_for("python-client")))
    assert_refused_by_nginx(r, window, "FAILED:")


def test_a_foreign_intermediate_named_like_our_issuing_ca_is_refused_by_nginx(
    log_since, token_for, tmp_path
):
    # Name collision: the rogue intermediate copies our issuing CA's subject and
    # claims our client ROOT as its issuer; only the signature gives it away.
    ours = x509.load_pem_x509_certificates(config.CLIENT_CA_BUNDLE.read_bytes())
    issuing = next(c for c in ours if c.subject != c.issuer)
    rogue_key, leaf_key = (
        new_key(),
        new_key(),
    )
    rogue = _rogue_ca(issuing.subject, rogue_key, issuing.issuer, rogue_key)
    leaf = _rogue_leaf(rogue, rogue_key, leaf_key)
    pair = write_pair(tmp_path, cert_pem(leaf) + cert_pem(rogue), leaf_key)
    window = log_since()
    r = call(window, "GET", "/api/resource", cert=pair, headers=bearer(token_for("python-client")))
    assert_refused_by_nginx(r, window, "FAILED:")
