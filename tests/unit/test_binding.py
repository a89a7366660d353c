"""Binding: the certificate's CN is the token's azp; cnf thumbprint when present."""

from __future__ import annotations

import pytest

from verifier.binding import check_binding
from verifier.errors import BindingCnMismatch, BindingThumbprintMismatch


@pytest.fixture
def client_cert(presented):
    return presented()


def test_the_bound_principal_is_the_certificate_cn(client_cert):
    assert check_binding(client_cert, {"azp": "python-client"}) == "python-client"


@pytest.mark.parametrize("azp", ["Python-Client", "python-client ", "", None, ["python-client"]])
def test_azp_must_equal_the_cn_exactly(client_cert, azp):
    with pytest.raises(BindingCnMismatch):
        check_binding(client_cert, {"azp": azp})


def test_a_cnf_without_x5t_is_not_a_certificate_binding_and_is_ignored(client_cert):
    claims = {"azp": "python-client", "cnf": {"jkt": "abc"}}
    assert check_binding(client_cert, claims) == "python-client"


def test_a_matching_thumbprint_passes(client_cert):
    claims = {"azp": "python-client", "cnf": {"x5t#S256": client_cert.x5t_s256}}
    assert check_binding(client_cert, claims) == "python-client"


@pytest.mark.parametrize(
    "cnf",
    [{"x5t#S256": "AAAA"}, {"x5t#S256": None}, {"x5t#S256": 1}, "x5t", ["x5t#S256"]],
)
def test_an_unconfirmable_cnf_is_refused(client_cert, cnf):
    with pytest.raises(BindingThumbprintMismatch):
        check_binding(client_cert, {"azp": "python-client", "cnf": cnf})


def test_a_padded_thumbprint_does_not_match(client_cert):
    claims = {"azp": "python-client", "cnf": {"x5t#S256": client_cert.x5t_s256 + "="}}
    with pytest.raises(BindingThumbprintMismatch):
        check_binding(client_cert, claims)
