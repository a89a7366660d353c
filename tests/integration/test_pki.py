"""terraform/pki built two independent CA hierarchies with least-privilege issuance."""

from __future__ import annotations

import datetime as dt
import time

import hvac.exceptions
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from scripts import config


def _bundle(path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def _roots_and_intermediates(path):
    certs = _bundle(path)
    roots = [c for c in certs if c.subject == c.issuer]
    inter = [c for c in certs if c.subject != c.issuer]
    return roots, inter


def _chain(path) -> tuple[x509.Certificate, list[x509.Certificate]]:
    leaf, *rest = _bundle(path)
    return leaf, rest


def _verify_client(leaf, intermediates, bundle_path):
    roots, inter = _roots_and_intermediates(bundle_path)
    verifier = PolicyBuilder().store(Store(roots)).build_client_verifier()
    return verifier.verify(leaf, intermediates + inter)


def _verify_server(leaf, intermediates, bundle_path):
    roots, inter = _roots_and_intermediates(bundle_path)
    verifier = PolicyBuilder().store(Store(roots)).build_server_verifier(x509.DNSName("localhost"))
    return verifier.verify(leaf, intermediates + inter)


def _eku(cert: x509.Certificate) -> set:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def _issue(client, role: str, mount: str, cn: str, **extra):
    return client.secrets.pki.generate_certificate(
        name=role, common_name=cn, extra_params=extra or None, mount_point=mount
    )


def test_client_cert_chains_to_the_client_ca_and_not_to_the_server_ca(stack):
    leaf, inter = _chain(config.client_cert_paths("python-client")[0])
    assert _verify_client(leaf, [], config.CLIENT_CA_BUNDLE)
    with pytest.raises(VerificationError):
        _verify_client(leaf, [], config.SERVER_CA_BUNDLE)
    with pytest.raises(VerificationError):  # even handed the client intermediate
        _verify_client(leaf, inter, config.SERVER_CA_BUNDLE)


def test_server_cert_chains_to_the_server_ca_and_not_to_the_client_ca(stack):
    leaf, inter = _chain(config.server_cert_paths("vault")[0])
    assert _verify_server(leaf, [], config.SERVER_CA_BUNDLE)
    with pytest.raises(VerificationError):
        _verify_server(leaf, inter, config.CLIENT_CA_BUNDLE)


def test_client_cert_is_client_auth_only_and_server_cert_server_auth_only(stack):
    client_leaf, _ = _chain(config.client_cert_paths("python-client")[0])
    server_leaf, _ = _chain(config.server_cert_paths("vault")[0])
    assert _eku(client_leaf) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert _eku(server_leaf) == {ExtendedKeyUsageOID.SERVER_AUTH}
    with pytest.raises(VerificationError):  # a client cert is refused as a server cert
        _verify_server(client_leaf, [], config.CLIENT_CA_BUNDLE)


def test_the_two_roots_are_independent_keys(stack):
    (server_root,), _ = _roots_and_intermediates(config.SERVER_CA_BUNDLE)
    (client_root,), _ = _roots_and_intermediates(config.CLIENT_CA_BUNDLE)
    assert server_root.subject != client_root.subject
    assert server_root.public_key() != client_root.public_key()


def test_server_issuing_ca_is_name_constrained_to_localhost(stack):
    _, (server_issuing,) = _roots_and_intermediates(config.SERVER_CA_BUNDLE)
    nc = server_issuing.extensions.get_extension_for_class(x509.NameConstraints).value
    assert nc.permitted_subtrees == [x509.DNSName("localhost")]


def test_python_client_role_never_issues_past_its_max_ttl(approle, pki_outputs):
    # OpenBao caps (with a warning) rather than rejecting a longer TTL; what
    # matters is that no certificate outlives the role's maximum (24 h).
    c = approle("client-python-client")
    resp = _issue(
        c, "python-client", pki_outputs["mounts"]["client_issuing"], "python-client", ttl="240h"
    )
    assert any("maxTTL" in w for w in resp.get("warnings") or [])
    cert = x509.load_pem_x509_certificate(resp["data"]["certificate"].encode())
    lifetime = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert lifetime <= dt.timedelta(hours=24, minutes=1)


def test_client_approle_cannot_issue_from_the_server_ca(approle, pki_outputs):
    c = approle("client-python-client")
    with pytest.raises(hvac.exceptions.Forbidden):
        _issue(c, pki_outputs["server_role"], pki_outputs["mounts"]["server_issuing"], "localhost")


@pytest.mark.parametrize("name", ["client-python-client", "server-certs", "revoker"])
def test_approles_cannot_read_sys(approle, name):
    c = approle(name)
    with pytest.raises(hvac.exceptions.Forbidden):
        c.sys.list_mounted_secrets_engines()
    with pytest.raises(hvac.exceptions.Forbidden):
        c.sys.list_policies()


def test_server_approle_cannot_issue_client_certs(approle, pki_outputs):
    c = approle("server-certs")
    with pytest.raises(hvac.exceptions.Forbidden):
        _issue(c, "python-client", pki_outputs["mounts"]["client_issuing"], "python-client")


def test_server_role_issues_server_auth_only_for_localhost(approle, pki_outputs):
    c = approle("server-certs")
    mount, role = pki_outputs["mounts"]["server_issuing"], pki_outputs["server_role"]
    resp = _issue(c, role, mount, "localhost")
    cert = x509.load_pem_x509_certificate(resp["data"]["certificate"].encode())
    assert _eku(cert) == {ExtendedKeyUsageOID.SERVER_AUTH}
    with pytest.raises(hvac.exceptions.Forbidden):  # the server-certs policy pins the CN
        _issue(c, role, mount, "python-client")


def test_crl_ocsp_and_issuing_urls_are_published_on_every_mount(operator_client, pki_outputs):
    for mount in pki_outputs["mounts"].values():
        urls = operator_client.secrets.pki.read_urls(mount_point=mount)["data"]
        assert urls["issuing_certificates"] == [f"{config.VAULT_ADDR}/v1/{mount}/ca"]
        assert urls["crl_distribution_points"] == [f"{config.VAULT_ADDR}/v1/{mount}/crl"]
        assert urls["ocsp_servers"] == [f"{config.VAULT_ADDR}/v1/{mount}/ocsp"]
        crl_cfg = operator_client.secrets.pki.read_crl_configuration(mount_point=mount)["data"]
        assert crl_cfg["expiry"] == "72h"
        assert crl_cfg["auto_rebuild"] is False  # rebuilt on every revocation instead
        assert crl_cfg["ocsp_expiry"] == "5m"
        pem = operator_client.secrets.pki.read_crl(mount_point=mount)
        crl = x509.load_pem_x509_crl(pem.encode())
        left = crl.next_update_utc - dt.datetime.now(dt.UTC)
        assert dt.timedelta(0) < left <= dt.timedelta(hours=72)


def _issuer_id(mount: str, issuing_ca_pem: str) -> str:
    """The id of ``mount``'s issuer whose certificate is ``issuing_ca_pem`` (unauthenticated)."""
    base, verify = f"{config.VAULT_ADDR}/v1/{mount}", str(config.VAULT_TLS_CA)
    wanted = x509.load_pem_x509_certificate(issuing_ca_pem.encode())
    listed = requests.request("LIST", f"{base}/issuers", verify=verify, timeout=5)
    assert listed.status_code == 200, listed.text
    for issuer in listed.json()["data"]["keys"]:
        r = requests.get(f"{base}/issuer/{issuer}/json", verify=verify, timeout=5)
        assert r.status_code == 200, r.text
        if x509.load_pem_x509_certificate(r.json()["data"]["certificate"].encode()) == wanted:
            return issuer
    raise AssertionError(f"no issuer of {mount} has the certificate that issued the leaf")


def test_a_certificate_revoked_through_the_revoker_approle_is_in_the_published_crl_at_once(
    approle, pki_outputs
):
    # auto_rebuild = false: OpenBao rebuilds the CRL inside the revoke call, so
    # nobody has to call crl/rotate (and the revoker below does not).
    mount = pki_outputs["mounts"]["client_issuing"]
    identity, role = sorted(pki_outputs["client_roles"].items())[0]
    issued = _issue(approle(f"client-{identity}"), role, mount, identity)["data"]
    serial = x509.load_pem_x509_certificate(issued["certificate"].encode()).serial_number
    issuing_ca = x509.load_pem_x509_certificate(issued["issuing_ca"].encode())
    url = f"{config.VAULT_ADDR}/v1/{mount}/issuer/{_issuer_id(mount, issued['issuing_ca'])}/crl/pem"

    resp = approle("revoker").secrets.pki.revoke_certificate(issued["serial_number"], mount)
    assert resp["data"]["state"] == "revoked"
    revoked_at = time.monotonic()
    while True:
        r = requests.get(url, verify=str(config.VAULT_TLS_CA), timeout=5)  # no token
        assert r.status_code == 200, r.text
        crl = x509.load_pem_x509_crl(r.content)
        assert crl.is_signature_valid(issuing_ca.public_key())
        if crl.get_revoked_certificate_by_serial_number(serial) is not None:
            break
        assert time.monotonic() - revoked_at < 2, "revoked serial not in the published CRL"
        time.sleep(0.1)


def _ocsp(mount: str, cert: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPResponse:
    """Ask ``mount``'s OCSP responder (unauthenticated, as a relying party would)."""
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    r = requests.post(
        f"{config.VAULT_ADDR}/v1/{mount}/ocsp",
        data=request.public_bytes(serialization.Encoding.DER),
        headers={"Content-Type": "application/ocsp-request"},
        verify=str(config.VAULT_TLS_CA),
        timeout=5,
    )
    assert r.status_code == 200, r.text
    return ocsp.load_der_ocsp_response(r.content)


def test_every_mount_answers_ocsp_with_responses_valid_for_the_configured_5_minutes(pki_outputs):
    mounts = pki_outputs["mounts"]
    leaf, _ = _chain(config.client_cert_paths("python-client")[0])
    for hierarchy, bundle in (
        ("client", config.CLIENT_CA_BUNDLE),
        ("server", config.SERVER_CA_BUNDLE),
    ):
        (root,), inter = _roots_and_intermediates(bundle)
        asked = [(mounts[f"{hierarchy}_root"], inter[0], root)]
        if hierarchy == "client":
            issuing = next(c for c in inter if c.subject == leaf.issuer)
            asked.append((mounts["client_issuing"], leaf, issuing))
        for mount, cert, issuer in asked:
            answer = _ocsp(mount, cert, issuer)
            assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL, mount
            assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD, mount
            assert answer.next_update_utc - answer.this_update_utc == dt.timedelta(minutes=5)


def test_issued_client_cert_subject_is_exactly_the_identity(stack):
    leaf, _ = _chain(config.client_cert_paths("batch-worker")[0])
    cns = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [a.value for a in cns] == ["batch-worker"]
