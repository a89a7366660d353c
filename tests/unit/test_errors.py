"""The error tree: stable, unique reason codes, statuses decided by category only."""

from __future__ import annotations

from pathlib import Path

from verifier import errors
from verifier.errors import VerifierError, all_reasons

EXPECTED_STATUS = {
    errors.TransportError: 401,
    errors.TokenError: 401,
    errors.BindingError: 401,
    errors.AuthorizationError: 403,
    errors.ServiceUnavailable: 503,
}


def leaf_classes() -> list[type[VerifierError]]:
    return [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, VerifierError) and not cls.__subclasses__()
    ]


def test_every_reason_code_is_unique_and_snake_case():
    reasons = [cls.reason for cls in leaf_classes()]
    assert len(reasons) == len(set(reasons))
    assert all(r.isascii() and r == r.lower() and " " not in r for r in reasons)


def test_each_category_maps_to_one_status_and_no_leaf_overrides_it():
    for cls in leaf_classes():
        for category, status in EXPECTED_STATUS.items():
            if issubclass(cls, category):
                assert cls.status == status, cls
                assert "status" not in vars(cls), cls


def test_faults_of_the_verifier_itself_have_their_documented_status():
    assert (errors.InternalError.reason, errors.InternalError.status) == ("internal_error", 401)
    assert (errors.AuditUnavailable.status, errors.AuditUnavailable().reason) == (
        503,
        "audit_unavailable",
    )
    assert (errors.CrlUnavailable.status, errors.CrlUnavailable().reason) == (
        503,
        "crl_unavailable",
    )


def test_a_revoked_certificate_is_a_transport_refusal_with_401():
    assert issubclass(errors.ClientCertRevoked, errors.TransportError)
    assert (errors.ClientCertRevoked.reason, errors.ClientCertRevoked.status) == (
        "cert_revoked",
        401,
    )


def test_every_error_has_a_one_line_docstring():
    for cls in leaf_classes():
        assert cls.__doc__ and "\n" not in cls.__doc__.strip(), cls


def test_all_reasons_lists_every_leaf():
    assert set(all_reasons()) == {cls.reason for cls in leaf_classes()}


def test_every_reason_code_is_documented_in_the_verifier_readme():
    readme = (Path(errors.__file__).parent / "README.md").read_text()
    for reason, status in all_reasons().items():
        assert f"| `{reason}` | {status} |" in readme, reason
