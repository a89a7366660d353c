"""Each client AppRole issues exactly one name, its identity's, and nothing else.

OpenBao's role matches ``allowed_domains`` case-insensitively, so the exact match is
the ``client-<id>`` policy (terraform/pki/policies.tf): ``common_name`` must be sent
and must equal the identity, and only ``ttl`` (plus ``csr`` for sign) may come with
it. The roles refuse e-mail CNs, wildcards, subdomains, IP/URI/other SANs and a
CSR's own names as a second line. Every test runs through each identity's own
AppRole against the real OpenBao; the operator AppRole only inspects.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass

import hvac
import hvac.exceptions
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scripts import cli, config
from tests.x509_helpers import csr_pem, new_key


def _identities() -> list[str]:
    """Workload identities as terraform/pki outputs them, read when tests are collected."""
    if not config.PKI_OUTPUTS.exists():  # as the `stack` fixture would, a moment earlier
        assert cli.main(["up"]) == 0, "`python -m scripts.zt up` failed; see its output above"
    return sorted(json.loads(config.PKI_OUTPUTS.read_text())["client_roles"])


IDENTITIES = _identities()


def _another(identity: str) -> str:
    """A different workload identity."""
    others = [i for i in IDENTITIES if i != identity]
    assert others, "these tests need at least two workload identities"
    return others[0]


def _load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _common_names(cert: x509.Certificate) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def _sans(cert: x509.Certificate) -> list[x509.GeneralName]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def _names(cert: x509.Certificate) -> set[str]:
    """Every name a certificate carries (CN and each SAN's value), as text."""
    return set(_common_names(cert)) | {str(san.value) for san in _sans(cert)}


def _assert_names_exactly(cert: x509.Certificate, identity: str) -> None:
    """Subject is CN=<identity> and nothing else; the only SAN is DNS:<identity>."""
    assert cert.subject == x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)])
    assert _sans(cert) == [x509.DNSName(identity)]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def _csr_with_sans(common_name: str, sans: list[x509.GeneralName]) -> str:
    """A CSR naming ``common_name`` and asking for ``sans`` (csr_pem makes CN-only CSRs)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(new_key(), hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


# Names a client role must refuse, from its identity.
NAME_VARIANTS: dict[str, Callable[[str], str]] = {
    "upper-case": str.upper,
    "mixed-case": str.capitalize,
    "e-mail": lambda i: f"x@{i}",
    "trailing-dot": lambda i: f"{i}.",
    "subdomain": lambda i: f"a.{i}",
    "another-identity": _another,
}

# What a client request must not be able to add beside its name: the request
# parameters, and how a certificate would show it had been granted.
EXTRAS: dict[str, tuple[Callable[[str], dict[str, str]], Callable[[x509.Certificate], bool]]] = {
    "alt_names": (
        lambda i: {"alt_names": f"a.{i}"},
        lambda c: any(isinstance(n, x509.DNSName) and n.value.startswith("a.") for n in _sans(c)),
    ),
    "alt_names-e-mail": (
        lambda i: {"alt_names": f"x@{i}"},
        lambda c: any(isinstance(n, x509.RFC822Name) for n in _sans(c)),
    ),
    "ip_sans": (
        lambda i: {"ip_sans": "127.0.0.1"},
        lambda c: any(isinstance(n, x509.IPAddress) for n in _sans(c)),
    ),
    "uri_sans": (
        lambda i: {"uri_sans": f"spiffe://zerotrust/{i}"},
        lambda c: any(isinstance(n, x509.UniformResourceIdentifier) for n in _sans(c)),
    ),
    "other_sans": (
        lambda i: {"other_sans": f"1.3.6.1.4.1.311.20.2.3;UTF8:{i}@zerotrust"},
        lambda c: any(isinstance(n, x509.OtherName) for n in _sans(c)),
    ),
    "not_after": (
        lambda i: {"not_after": "2099-01-01T00:00:00Z"},
        lambda c: c.not_valid_after_utc.year >= 2099,
    ),
}


@pytest.fixture
def client_mount(pki_outputs) -> str:
    return pki_outputs["mounts"]["client_issuing"]


@pytest.fixture
def issued_since(operator_client, client_mount) -> Callable[[], list[x509.Certificate]]:
    """Certificates the client issuing mount stored since the test began (operator: inspection)."""

    def serials() -> set[str]:
        return set(operator_client.list(f"{client_mount}/certs")["data"]["keys"])

    before = serials()

    def new() -> list[x509.Certificate]:
        return [
            _load(operator_client.read(f"{client_mount}/cert/{s}")["data"]["certificate"])
            for s in serials() - before
        ]

    return new


def _issue(client: hvac.Client, mount: str, role: str, common_name: str, **extra) -> dict:
    return client.secrets.pki.generate_certificate(
        name=role, common_name=common_name, extra_params=extra or None, mount_point=mount
    )["data"]


def _sign(client: hvac.Client, mount: str, role: str, csr: str, **params) -> dict:
    return client.write_data(f"{mount}/sign/{role}", data={"csr": csr, **params})["data"]


@pytest.mark.parametrize("identity", IDENTITIES)
def test_each_client_approle_issues_a_certificate_naming_exactly_its_identity(
    approle, pki_outputs, client_mount, identity
):
    role = pki_outputs["client_roles"][identity]
    issued = _issue(approle(f"client-{identity}"), client_mount, role, identity)
    _assert_names_exactly(_load(issued["certificate"]), identity)


@pytest.mark.parametrize("variant", NAME_VARIANTS)
@pytest.mark.parametrize("identity", IDENTITIES)
def test_each_client_approle_is_refused_any_name_but_its_exact_identity(
    approle, pki_outputs, client_mount, issued_since, identity, variant
):
    name = NAME_VARIANTS[variant](identity)
    role = pki_outputs["client_roles"][identity]
    with pytest.raises(hvac.exceptions.Forbidden):
        _issue(approle(f"client-{identity}"), client_mount, role, name)
    if name not in IDENTITIES:  # another identity's own certificates may be issued meanwhile
        assert not [c for c in issued_since() if name in _names(c)]


# Other spellings of a request for the upper-case variant, sent raw (not through
# hvac): OpenBao's ACL checks every parameter whatever its key case or encoding.
SMUGGLED: dict[str, Callable[[str], dict]] = {
    "key-in-another-case": lambda i: {"json": {"Common_Name": i.upper()}},
    "both-keys": lambda i: {"json": {"common_name": i, "COMMON_NAME": i.upper()}},
    "query-string": lambda i: {"params": {"common_name": i.upper()}},
    "form-encoded": lambda i: {"data": {"common_name": i.upper()}},
    "list-value": lambda i: {"json": {"common_name": [i.upper()]}},
}


@pytest.mark.parametrize("spelling", SMUGGLED)
@pytest.mark.parametrize("identity", IDENTITIES)
def test_each_client_approle_cannot_smuggle_a_case_variant_past_the_policy(
    approle, pki_outputs, client_mount, issued_since, identity, spelling
):
    role = pki_outputs["client_roles"][identity]
    r = requests.post(
        f"{config.VAULT_ADDR}/v1/{client_mount}/issue/{role}",
        headers={"X-Vault-Token": approle(f"client-{identity}").token},
        verify=str(config.VAULT_TLS_CA),
        timeout=10,
        **SMUGGLED[spelling](identity),
    )
    assert r.status_code == 403, r.text
    assert not [c for c in issued_since() if identity.upper() in _names(c)]


@pytest.mark.parametrize("extra", EXTRAS)
@pytest.mark.parametrize("identity", IDENTITIES)
def test_each_client_approle_is_refused_anything_besides_its_name(
    approle, pki_outputs, client_mount, issued_since, identity, extra
):
    params, granted = EXTRAS[extra]
    role = pki_outputs["client_roles"][identity]
    with pytest.raises(hvac.exceptions.Forbidden):
        _issue(approle(f"client-{identity}"), client_mount, role, identity, **params(identity))
    assert not [c for c in issued_since() if _common_names(c) == [identity] and granted(c)]


@pytest.mark.parametrize("identity", IDENTITIES)
def test_sign_is_refused_when_the_request_asks_for_the_case_variant_its_csr_names(
    approle, pki_outputs, client_mount, issued_since, identity
):
    variant = identity.upper()
    role = pki_outputs["client_roles"][identity]
    with pytest.raises(hvac.exceptions.Forbidden):
        _sign(
            approle(f"client-{identity}"),
            client_mount,
            role,
            csr_pem(variant, new_key()),
            common_name=variant,
        )
    assert not [c for c in issued_since() if variant in _names(c)]


@pytest.mark.parametrize("identity", IDENTITIES)
def test_sign_is_refused_without_a_common_name_so_the_csr_cannot_choose_it(
    approle, pki_outputs, client_mount, issued_since, identity
):
    variant = identity.upper()
    role = pki_outputs["client_roles"][identity]
    with pytest.raises(hvac.exceptions.Forbidden):
        _sign(approle(f"client-{identity}"), client_mount, role, csr_pem(variant, new_key()))
    assert not [c for c in issued_since() if variant in _names(c)]


@pytest.mark.parametrize("identity", IDENTITIES)
def test_sign_issues_the_identity_and_not_the_case_variant_the_csr_names(
    approle, pki_outputs, client_mount, identity
):
    role = pki_outputs["client_roles"][identity]
    c = approle(f"client-{identity}")
    issued = c.secrets.pki.sign_certificate(
        name=role,
        csr=csr_pem(identity.upper(), new_key()),
        common_name=identity,
        mount_point=client_mount,
    )["data"]
    _assert_names_exactly(_load(issued["certificate"]), identity)


@pytest.mark.parametrize("identity", IDENTITIES)
def test_sign_ignores_the_subject_alternative_names_a_csr_asks_for(
    approle, pki_outputs, client_mount, identity
):
    role = pki_outputs["client_roles"][identity]
    csr = _csr_with_sans(
        identity,
        [
            x509.DNSName(_another(identity)),
            x509.DNSName(f"a.{identity}"),
            x509.RFC822Name(f"x@{identity}"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.UniformResourceIdentifier(f"spiffe://zerotrust/{identity}"),
        ],
    )
    issued = _sign(approle(f"client-{identity}"), client_mount, role, csr, common_name=identity)
    _assert_names_exactly(_load(issued["certificate"]), identity)


@dataclass(frozen=True)
class Target:
    """What one client AppRole's negative matrix aims at."""

    mount: str
    root_mount: str
    issuer_id: str
    identity: str
    role: str
    other: str
    other_role: str


# (hvac method, path, body) per operation a client AppRole must be refused. Each body
# is a well-formed request, so only the ACL can be what refuses it.
FORBIDDEN: dict[str, Callable[[Target], tuple[str, str, dict]]] = {
    "revoke": lambda t: ("write", f"{t.mount}/revoke", {"serial_number": "01:02:03"}),
    "issue-through-the-default-issuer": lambda t: (
        "write",
        f"{t.mount}/issuer/default/issue/{t.role}",
        {"common_name": t.identity},
    ),
    "sign-through-its-issuer-id": lambda t: (
        "write",
        f"{t.mount}/issuer/{t.issuer_id}/sign/{t.role}",
        {"csr": csr_pem(t.identity, new_key()), "common_name": t.identity},
    ),
    "read-its-role": lambda t: ("read", f"{t.mount}/roles/{t.role}", {}),
    "write-its-role": lambda t: ("write", f"{t.mount}/roles/{t.role}", {"allow_any_name": True}),
    "tidy": lambda t: ("write", f"{t.mount}/tidy", {"tidy_cert_store": True}),
    "crl-rotate": lambda t: ("read", f"{t.mount}/crl/rotate", {}),
    "sign-verbatim": lambda t: (
        "write",
        f"{t.mount}/sign-verbatim",
        {"csr": csr_pem(t.identity, new_key())},
    ),
    "root-sign-intermediate": lambda t: (
        "write",
        f"{t.root_mount}/root/sign-intermediate",
        {"csr": csr_pem(t.identity, new_key()), "common_name": t.identity},
    ),
    "revoke-its-issuer": lambda t: ("write", f"{t.mount}/issuer/{t.issuer_id}/revoke", {}),
    "write-the-crl-config": lambda t: ("write", f"{t.mount}/config/crl", {"expiry": "8760h"}),
    "issue-from-another-identitys-role": lambda t: (
        "write",
        f"{t.mount}/issue/{t.other_role}",
        {"common_name": t.other},
    ),
    "sign-with-another-identitys-role": lambda t: (
        "write",
        f"{t.mount}/sign/{t.other_role}",
        {"csr": csr_pem(t.other, new_key()), "common_name": t.other},
    ),
}


def _target(pki_outputs: dict, operator_client: hvac.Client, identity: str) -> Target:
    mount = pki_outputs["mounts"]["client_issuing"]
    other = _another(identity)
    return Target(
        mount=mount,
        root_mount=pki_outputs["mounts"]["client_root"],
        issuer_id=operator_client.read(f"{mount}/config/issuers")["data"]["default"],
        identity=identity,
        role=pki_outputs["client_roles"][identity],
        other=other,
        other_role=pki_outputs["client_roles"][other],
    )


@pytest.mark.parametrize("operation", FORBIDDEN)
@pytest.mark.parametrize("identity", IDENTITIES)
def test_each_client_approle_is_refused_every_other_pki_operation(
    approle, pki_outputs, operator_client, identity, operation
):
    method, path, body = FORBIDDEN[operation](_target(pki_outputs, operator_client, identity))
    c = approle(f"client-{identity}")
    with pytest.raises(hvac.exceptions.Forbidden):
        c.read(path) if method == "read" else c.write_data(path, data=body)


@pytest.mark.parametrize("identity", IDENTITIES)
def test_the_revoker_approle_can_neither_issue_nor_sign_a_client_certificate(
    approle, pki_outputs, client_mount, identity
):
    role = pki_outputs["client_roles"][identity]
    c = approle("revoker")
    with pytest.raises(hvac.exceptions.Forbidden):
        _issue(c, client_mount, role, identity)
    with pytest.raises(hvac.exceptions.Forbidden):
        _sign(c, client_mount, role, csr_pem(identity, new_key()), common_name=identity)
    with pytest.raises(hvac.exceptions.Forbidden):
        c.write_data(f"{client_mount}/issuer/default/issue/{role}", data={"common_name": identity})


def test_the_revoker_approle_cannot_issue_a_server_certificate(approle, pki_outputs):
    with pytest.raises(hvac.exceptions.Forbidden):
        _issue(
            approle("revoker"),
            pki_outputs["mounts"]["server_issuing"],
            pki_outputs["server_role"],
            "localhost",
        )


@pytest.mark.parametrize("identity", IDENTITIES)
def test_each_client_role_also_refuses_by_itself_what_the_policy_refuses(
    operator_client, pki_outputs, identity
):
    # Defence in depth, read with the operator AppRole (inspection): were the policy
    # ever widened, the role still refuses e-mail CNs, wildcards, subdomains,
    # IP/URI/other SANs and the names in a CSR.
    mount = pki_outputs["mounts"]["client_issuing"]
    role = operator_client.read(f"{mount}/roles/{pki_outputs['client_roles'][identity]}")["data"]
    assert role["allowed_domains"] == [identity]
    assert role["cn_validations"] == ["hostname"]
    assert role["use_csr_common_name"] is False
    assert role["use_csr_sans"] is False
    for flag in (
        "allow_any_name",
        "allow_subdomains",
        "allow_glob_domains",
        "allow_wildcard_certificates",
        "allow_localhost",
        "allow_ip_sans",
        "server_flag",
    ):
        assert role[flag] is False, flag
    assert role["allowed_uri_sans"] == role["allowed_other_sans"] == []
    assert role["enforce_hostnames"] is True and role["client_flag"] is True


SERVER_REFUSED: dict[str, tuple[str, dict[str, str]]] = {
    "upper-case-common-name": ("LOCALHOST", {"ip_sans": "127.0.0.1"}),
    "another-common-name": ("python-client", {}),
    "another-ip": ("localhost", {"ip_sans": "127.0.0.2"}),
    "alt_names": ("localhost", {"alt_names": "localhost"}),
    "uri_sans": ("localhost", {"uri_sans": "spiffe://zerotrust/localhost"}),
}


def test_the_server_certs_approle_issues_what_the_bring_up_asks_for(approle, pki_outputs):
    # scripts/pki/certs.py issue_server_cert: common_name=localhost, ip_sans=127.0.0.1.
    issued = _issue(
        approle("server-certs"),
        pki_outputs["mounts"]["server_issuing"],
        pki_outputs["server_role"],
        "localhost",
        ip_sans=config.HOST,
    )
    cert = _load(issued["certificate"])
    assert _common_names(cert) == ["localhost"]
    assert set(_sans(cert)) == {
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address(config.HOST)),
    }


@pytest.mark.parametrize("case", SERVER_REFUSED)
def test_the_server_certs_approle_is_refused_any_other_name(approle, pki_outputs, case):
    common_name, extra = SERVER_REFUSED[case]
    with pytest.raises(hvac.exceptions.Forbidden):
        _issue(
            approle("server-certs"),
            pki_outputs["mounts"]["server_issuing"],
            pki_outputs["server_role"],
            common_name,
            **extra,
        )
