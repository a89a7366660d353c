"""Settings: defaults, environment variables, and configurations refused at start-up."""

from __future__ import annotations

import pytest

from verifier.settings import DEFAULT_ISSUER, Settings


@pytest.fixture
def ca_file(tmp_path, pki):
    path = tmp_path / "client-ca.pem"
    path.write_text(pki.client_ca.pem)
    return path


def test_defaults_match_the_realm_and_the_api_client(settings):
    assert settings.issuer == "https://localhost:8443/realms/zerotrust"
    assert settings.audience == "zerotrust-api"
    assert settings.jwks_url == DEFAULT_ISSUER + "/protocol/openid-connect/certs"
    assert settings.algorithms == ("RS256",)
    assert (settings.leeway_seconds, settings.max_token_lifetime_seconds) == (30, 3600)
    assert (settings.jwks_cooldown_seconds, settings.jwks_timeout_seconds) == (30, 2)
    assert settings.max_token_bytes == 8192
    assert settings.require_verify_header is True


def test_every_setting_can_come_from_zt_verifier_environment_variables(ca_file):
    env = {
        "ZT_VERIFIER_CLIENT_CA_CERT": str(ca_file),
        "ZT_VERIFIER_CLIENT_CRL": "/etc/zt/client-ca.crl.pem",
        "ZT_VERIFIER_ISSUER": "https://kc.test/realms/r",
        "ZT_VERIFIER_AUDIENCE": "api",
        "ZT_VERIFIER_JWKS_CA_BUNDLE": "/ca/server.pem",
        "ZT_VERIFIER_POLICY_PATH": "/etc/policy.json",
        "ZT_VERIFIER_AUDIT_LOG": "/var/log/audit.jsonl",
        "ZT_VERIFIER_ALGORITHMS": "RS256, PS256",
        "ZT_VERIFIER_LEEWAY_SECONDS": "5",
        "ZT_VERIFIER_MAX_TOKEN_LIFETIME_SECONDS": "600",
        "ZT_VERIFIER_MAX_TOKEN_BYTES": "4096",
        "ZT_VERIFIER_JWKS_COOLDOWN_SECONDS": "10",
        "ZT_VERIFIER_JWKS_MAX_AGE_SECONDS": "60",
        "ZT_VERIFIER_JWKS_TIMEOUT_SECONDS": "1.5",
        "ZT_VERIFIER_REQUIRE_VERIFY_HEADER": "false",
        "UNRELATED": "ignored",
    }
    settings = Settings.from_env(env)
    assert settings.issuer == "https://kc.test/realms/r"
    assert settings.jwks_url == "https://kc.test/realms/r/protocol/openid-connect/certs"
    assert settings.audience == "api"
    assert settings.jwks_ca_bundle == "/ca/server.pem"
    assert settings.policy_path == "/etc/policy.json"
    assert settings.audit_log == "/var/log/audit.jsonl"
    assert settings.algorithms == ("RS256", "PS256")
    assert settings.leeway_seconds == 5
    assert settings.max_token_lifetime_seconds == 600
    assert settings.max_token_bytes == 4096
    assert settings.jwks_cooldown_seconds == 10
    assert settings.jwks_max_age_seconds == 60
    assert settings.jwks_timeout_seconds == 1.5
    assert settings.require_verify_header is False
    assert "zerotrust client issuing CA" in settings.client_cas[0].subject.rfc4514_string()
    assert settings.client_crl == "/etc/zt/client-ca.crl.pem"  # a path: the source reads it


@pytest.mark.parametrize("algorithms", [("none",), ("HS256",), ("RS256", "hs512"), ()])
def test_none_and_hmac_algorithms_are_refused_at_start_up(pki, crl_file, algorithms):
    with pytest.raises(ValueError, match="algorithm"):
        Settings(client_ca_pem=pki.client_ca.pem, client_crl=str(crl_file), algorithms=algorithms)


def test_a_missing_client_ca_is_refused_at_start_up():
    with pytest.raises(ValueError, match="CLIENT_CA_CERT"):
        Settings.from_env({})


def test_a_client_ca_file_without_a_certificate_is_refused(tmp_path, crl_file):
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here\n")
    with pytest.raises(ValueError, match="CLIENT_CA_CERT"):
        Settings.from_config({"CLIENT_CA_CERT": str(empty), "CLIENT_CRL": str(crl_file)})


@pytest.mark.parametrize("crl", [None, ""])
def test_a_missing_client_crl_is_refused_at_start_up_naming_the_variable(ca_file, crl):
    with pytest.raises(ValueError, match="ZT_VERIFIER_CLIENT_CRL"):
        Settings.from_config({"CLIENT_CA_CERT": str(ca_file), "CLIENT_CRL": crl})
    with pytest.raises(ValueError, match="CLIENT_CRL"):
        Settings.from_env({"ZT_VERIFIER_CLIENT_CA_CERT": str(ca_file)})


def test_settings_built_in_code_refuse_an_empty_crl_path_too(pki):
    with pytest.raises(ValueError, match="CLIENT_CRL"):
        Settings(client_ca_pem=pki.client_ca.pem, client_crl="")


@pytest.mark.parametrize("value", ["maybe", "", "2"])
def test_an_unreadable_boolean_is_refused_rather_than_guessed(ca_file, crl_file, value):
    with pytest.raises(ValueError, match="boolean"):
        Settings.from_config(
            {
                "CLIENT_CA_CERT": str(ca_file),
                "CLIENT_CRL": str(crl_file),
                "REQUIRE_VERIFY_HEADER": value,
            }
        )


def test_settings_are_immutable(settings):
    with pytest.raises(AttributeError):
        settings.issuer = "https://evil"  # type: ignore[misc]
