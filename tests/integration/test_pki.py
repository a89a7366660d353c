"""terraform/pki built two independent CA hierarchies with least-privilege issuance."""

from __future__ import annotations

import datetime as dt

import hvac.exceptions
import pytest
from cryptography import x509
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


@pytest.mark.parametrize("cn", ["other-service", "batch-worker", "localhost", "x.python-client"])
def test_python_client_role_refuses_any_other_common_name(approle, pki_outputs, cn):
    c = approle("client-python-client")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not allowed by this role"):
        _issue(c, "python-client", pki_outputs["mounts"]["client_issuing"], cn)


def test_python_client_role_refuses_extra_names(approle, pki_outputs):
    c = approle("client-python-client")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        _issue(
            c,
            "python-client",
            pki_outputs["mounts"]["client_issuing"],
            "python-client",
            alt_names="localhost",
            ip_sans="127.0.0.1",
        )


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


def test_client_approle_cannot_issue_for_another_identity(approle, pki_outputs):
    c = approle("client-python-client")
    with pytest.raises(hvac.exceptions.Forbidden):
        _issue(c, "batch-worker", pki_outputs["mounts"]["client_issuing"], "batch-worker")


def test_client_approle_cannot_issue_from_the_server_ca(approle, pki_outputs):
    c = approle("client-python-client")
    with pytest.raises(hvac.exceptions.Forbidden):
        _issue(c, pki_outputs["server_role"], pki_outputs["mounts"]["server_issuing"], "localhost")


def test_client_approle_cannot_sign_verbatim(approle, pki_outputs):
    c = approle("client-python-client")
    with pytest.raises(hvac.exceptions.Forbidden):
        c.write_data(f"{pki_outputs['mounts']['client_issuing']}/sign-verbatim", data={"csr": "x"})


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
    with pytest.raises(hvac.exceptions.InvalidRequest):
        _issue(c, role, mount, "python-client")


def test_crl_and_issuing_urls_are_published_on_every_mount(root_client, pki_outputs):
    for mount in pki_outputs["mounts"].values():
        urls = root_client.secrets.pki.read_urls(mount_point=mount)["data"]
        assert urls["issuing_certificates"] == [f"{config.VAULT_ADDR}/v1/{mount}/ca"]
        assert urls["crl_distribution_points"] == [f"{config.VAULT_ADDR}/v1/{mount}/crl"]
        crl_cfg = root_client.secrets.pki.read_crl_configuration(mount_point=mount)["data"]
        assert crl_cfg["expiry"] == "72h"
        pem = root_client.secrets.pki.read_crl(mount_point=mount)
        crl = x509.load_pem_x509_crl(pem.encode())
        left = crl.next_update_utc - dt.datetime.now(dt.UTC)
        assert dt.timedelta(0) < left <= dt.timedelta(hours=72)


def test_issued_client_cert_subject_is_exactly_the_identity(stack):
    leaf, _ = _chain(config.client_cert_paths("batch-worker")[0])
    cns = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [a.value for a in cns] == ["batch-worker"]
