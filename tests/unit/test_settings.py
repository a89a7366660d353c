"""Settings: every source is strict, required settings have no default, every
problem is named and all of them are reported at once."""

from __future__ import annotations

import dataclasses
import re

import pytest

from tests.verifier_fixtures import CLIENT_ID, ISSUER, required_config
from verifier.errors import ConfigError
from verifier.settings import JWKS_PATH, Settings, SettingsError, settings_problems

REQUIRED = ("ISSUER", "AUDIENCE", "POLICY_PATH", "CLIENT_CA_CERT", "CLIENT_CRL")
SECONDS = (
    "LEEWAY_SECONDS",
    "MAX_TOKEN_LIFETIME_SECONDS",
    "JWKS_COOLDOWN_SECONDS",
    "JWKS_MAX_AGE_SECONDS",
    "JWKS_TIMEOUT_SECONDS",
    "JWKS_MAX_STALENESS_SECONDS",
    "JWKS_UNKNOWN_KID_WAIT_SECONDS",
    "DECISION_CACHE_SECONDS",
)
COUNTS = ("MAX_TOKEN_BYTES", "TOKEN_CACHE_SIZE")


@pytest.fixture
def ca_file(tmp_path, pki):
    path = tmp_path / "client-ca.pem"
    path.write_text(pki.client_ca.pem)
    return path


@pytest.fixture
def env(ca_file, crl_file):
    """The smallest environment that starts: the required settings only."""
    return {f"ZT_VERIFIER_{k}": v for k, v in required_config(ca_file, crl_file).items()}


def problems_of(environ) -> list[str]:
    """The problems ``from_env`` raises, checked to be what ``settings_problems`` lists."""
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environ)
    assert list(refused.value.problems) == settings_problems(environ)
    return list(refused.value.problems)


def test_the_required_settings_alone_start_with_the_documented_defaults(env):
    settings = Settings.from_env(env)
    assert (settings.issuer, settings.audience) == (ISSUER, CLIENT_ID)
    assert settings.jwks_url == ISSUER + JWKS_PATH
    assert settings.algorithms == ("RS256",)
    assert (settings.leeway_seconds, settings.max_token_lifetime_seconds) == (30, 3600)
    assert (settings.jwks_cooldown_seconds, settings.jwks_timeout_seconds) == (30, 2)
    assert settings.jwks_max_age_seconds == 300
    assert settings.jwks_max_staleness_seconds == 900
    assert settings.jwks_unknown_kid_wait_seconds == 1
    assert (settings.max_token_bytes, settings.token_cache_size) == (8192, 4096)
    assert settings.decision_cache_seconds == 0
    assert settings.require_verify_header is True
    assert settings.require_bound_tokens is True
    assert settings.jwks_ca_bundle is settings.audit_log is settings.assertion_key_file is None
    assert settings_problems(env) == []


def test_every_setting_can_come_from_zt_verifier_environment_variables(ca_file, tmp_path, pki):
    server_ca = tmp_path / "server-ca.pem"
    server_ca.write_text(pki.server_ca.pem)
    env = {
        "ZT_VERIFIER_CLIENT_CA_CERT": str(ca_file),
        "ZT_VERIFIER_CLIENT_CRL": "/etc/zt/client-ca.crl.pem",
        "ZT_VERIFIER_ISSUER": "https://kc.test/realms/r",
        "ZT_VERIFIER_AUDIENCE": "api",
        "ZT_VERIFIER_JWKS_CA_BUNDLE": str(server_ca),
        "ZT_VERIFIER_POLICY_PATH": "/etc/policy.json",
        "ZT_VERIFIER_AUDIT_LOG": "/var/log/audit.jsonl",
        "ZT_VERIFIER_ASSERTION_KEY_FILE": "/etc/zt/assertion.key",
        "ZT_VERIFIER_ALGORITHMS": "RS256, PS256",
        "ZT_VERIFIER_LEEWAY_SECONDS": "5",
        "ZT_VERIFIER_MAX_TOKEN_LIFETIME_SECONDS": "600",
        "ZT_VERIFIER_MAX_TOKEN_BYTES": "4096",
        "ZT_VERIFIER_JWKS_COOLDOWN_SECONDS": "10",
        "ZT_VERIFIER_JWKS_MAX_AGE_SECONDS": "60",
        "ZT_VERIFIER_JWKS_TIMEOUT_SECONDS": "1.5",
        "ZT_VERIFIER_JWKS_MAX_STALENESS_SECONDS": "120",
        "ZT_VERIFIER_JWKS_UNKNOWN_KID_WAIT_SECONDS": "0.5",
        "ZT_VERIFIER_TOKEN_CACHE_SIZE": "0",
        "ZT_VERIFIER_DECISION_CACHE_SECONDS": "30",
        "ZT_VERIFIER_REQUIRE_VERIFY_HEADER": "false",
        "ZT_VERIFIER_REQUIRE_BOUND_TOKENS": "false",
        "UNRELATED": "ignored",
    }
    settings = Settings.from_env(env)
    assert settings.issuer == "https://kc.test/realms/r"
    assert settings.jwks_url == "https://kc.test/realms/r/protocol/openid-connect/certs"
    assert settings.audience == "api"
    assert settings.jwks_ca_bundle == str(server_ca)
    assert settings.policy_path == "/etc/policy.json"
    assert settings.audit_log == "/var/log/audit.jsonl"
    assert settings.assertion_key_file == "/etc/zt/assertion.key"
    assert settings.algorithms == ("RS256", "PS256")
    assert settings.leeway_seconds == 5
    assert settings.max_token_lifetime_seconds == 600
    assert settings.max_token_bytes == 4096
    assert settings.jwks_cooldown_seconds == 10
    assert settings.jwks_max_age_seconds == 60
    assert settings.jwks_timeout_seconds == 1.5
    assert settings.jwks_max_staleness_seconds == 120
    assert settings.jwks_unknown_kid_wait_seconds == 0.5
    assert settings.token_cache_size == 0
    assert settings.decision_cache_seconds == 30
    assert settings.require_verify_header is False
    assert settings.require_bound_tokens is False
    assert "zerotrust client issuing CA" in settings.client_cas[0].subject.rfc4514_string()
    assert settings.client_crl == "/etc/zt/client-ca.crl.pem"  # a path: the source reads it


def test_an_explicit_jwks_url_replaces_the_one_derived_from_the_issuer(env):
    settings = Settings.from_env({**env, "ZT_VERIFIER_JWKS_URL": "https://kc.test/certs"})
    assert settings.jwks_url == "https://kc.test/certs"


# --- unknown names ------------------------------------------------------------------


def test_a_misspelt_variable_is_refused_with_the_closest_known_name(env):
    assert problems_of({**env, "ZT_VERIFIER_ISUER": "https://kc.test/realms/r"}) == [
        "ZT_VERIFIER_ISUER: unknown setting; did you mean ZT_VERIFIER_ISSUER?"
    ]


def test_an_unknown_variable_with_no_close_name_is_refused_too(env):
    (problem,) = problems_of({**env, "ZT_VERIFIER_FROBNICATE": "1"})
    assert problem.startswith("ZT_VERIFIER_FROBNICATE: unknown setting (")


def test_a_config_mapping_refuses_an_unknown_key_naming_it_without_prefix(ca_file, crl_file):
    with pytest.raises(SettingsError) as refused:
        Settings.from_config({**required_config(ca_file, crl_file), "AUDIENCES": "api"})
    assert refused.value.problems == ("AUDIENCES: unknown setting; did you mean AUDIENCE?",)


def test_a_config_mapping_accepts_only_the_extra_keys_its_caller_names(ca_file, crl_file):
    config = {**required_config(ca_file, crl_file), "KEY_SOURCE": object(), "TESTING": True}
    settings = Settings.from_config(config, also_allowed=("KEY_SOURCE", "TESTING"))
    assert settings.audience == CLIENT_ID
    with pytest.raises(SettingsError, match=r"KEY_SOURCE: unknown setting"):
        Settings.from_config(config, also_allowed=("TESTING",))


# --- required settings -----------------------------------------------------------------


@pytest.mark.parametrize("name", REQUIRED)
def test_each_required_setting_missing_is_named(env, name):
    del env[f"ZT_VERIFIER_{name}"]
    (problem,) = problems_of(env)
    assert problem.startswith(f"ZT_VERIFIER_{name}: required, not set (")


@pytest.mark.parametrize("name", REQUIRED)
def test_each_required_setting_given_empty_is_named(env, name):
    (problem,) = problems_of({**env, f"ZT_VERIFIER_{name}": ""})
    assert problem.startswith(f"ZT_VERIFIER_{name}: empty; expected ")


def test_an_empty_environment_is_refused_naming_every_required_setting_at_once():
    assert [p.split(":")[0] for p in problems_of({})] == [
        "ZT_VERIFIER_ISSUER",
        "ZT_VERIFIER_AUDIENCE",
        "ZT_VERIFIER_CLIENT_CA_CERT",
        "ZT_VERIFIER_CLIENT_CRL",
        "ZT_VERIFIER_POLICY_PATH",
    ]


def test_a_caller_can_require_an_optional_setting_and_say_why(env):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env, also_required={"AUDIT_LOG": "every decision is audited"})
    assert refused.value.problems == (
        "ZT_VERIFIER_AUDIT_LOG: required, not set (every decision is audited)",
    )


def test_requiring_a_setting_that_does_not_exist_is_a_programming_error(env):
    with pytest.raises(ValueError, match="AUDIT_LOGS"):
        Settings.from_env(env, also_required={"AUDIT_LOGS": "typo"})


# --- values ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SECONDS)
def test_each_number_of_seconds_that_does_not_parse_is_named(env, name):
    assert problems_of({**env, f"ZT_VERIFIER_{name}": "abc"}) == [
        f"ZT_VERIFIER_{name}: 'abc' is not a number of seconds"
    ]


@pytest.mark.parametrize("name", COUNTS)
def test_each_whole_number_that_does_not_parse_is_named(env, name):
    assert problems_of({**env, f"ZT_VERIFIER_{name}": "4k"}) == [
        f"ZT_VERIFIER_{name}: '4k' is not a whole number"
    ]


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_a_number_that_is_not_finite_is_refused_because_it_would_disable_a_check(env, value):
    (problem,) = problems_of({**env, "ZT_VERIFIER_LEEWAY_SECONDS": value})
    assert problem.startswith(f"ZT_VERIFIER_LEEWAY_SECONDS: '{value}' is not a number of seconds")


@pytest.mark.parametrize(
    ("name", "value", "bounds"),
    [
        ("LEEWAY_SECONDS", "-1", ">= 0"),
        ("MAX_TOKEN_LIFETIME_SECONDS", "-3600", ">= 0"),
        ("JWKS_COOLDOWN_SECONDS", "-0.5", ">= 0"),
        ("JWKS_MAX_AGE_SECONDS", "-1", ">= 0"),
        ("JWKS_TIMEOUT_SECONDS", "0", "> 0 and <= 10"),
        ("JWKS_TIMEOUT_SECONDS", "11", "> 0 and <= 10"),
        ("JWKS_UNKNOWN_KID_WAIT_SECONDS", "2.5", "0..2"),
        ("JWKS_UNKNOWN_KID_WAIT_SECONDS", "-1", "0..2"),
        ("DECISION_CACHE_SECONDS", "301", "0..300"),
        ("DECISION_CACHE_SECONDS", "-1", "0..300"),
        ("MAX_TOKEN_BYTES", "0", ">= 1"),
        ("TOKEN_CACHE_SIZE", "-1", ">= 0"),
    ],
)
def test_a_number_out_of_range_is_refused_naming_the_bounds(env, name, value, bounds):
    (problem,) = problems_of({**env, f"ZT_VERIFIER_{name}": value})
    assert re.fullmatch(
        rf"ZT_VERIFIER_{name}: \S+ is out of range \({re.escape(bounds)}\)", problem
    )


def test_a_staleness_bound_not_above_the_refresh_age_is_refused_naming_both(env):
    (problem,) = problems_of(
        {
            **env,
            "ZT_VERIFIER_JWKS_MAX_AGE_SECONDS": "300",
            "ZT_VERIFIER_JWKS_MAX_STALENESS_SECONDS": "300",
        }
    )
    assert problem.startswith(
        "ZT_VERIFIER_JWKS_MAX_STALENESS_SECONDS: 300 must be greater than "
        "ZT_VERIFIER_JWKS_MAX_AGE_SECONDS (300)"
    )


def test_the_staleness_bound_is_checked_along_with_every_other_problem(env):
    problems = problems_of(
        {
            **env,
            "ZT_VERIFIER_JWKS_MAX_STALENESS_SECONDS": "200",  # below the default max age, 300
            "ZT_VERIFIER_LEEWAY_SECONDS": "abc",
        }
    )
    assert [p.split(":")[0] for p in problems] == [
        "ZT_VERIFIER_LEEWAY_SECONDS",
        "ZT_VERIFIER_JWKS_MAX_STALENESS_SECONDS",
    ]


def test_settings_built_in_code_check_the_staleness_bound_too(env):
    settings = Settings.from_env(env)
    with pytest.raises(SettingsError, match="JWKS_MAX_STALENESS_SECONDS: 10 must be greater"):
        dataclasses.replace(settings, jwks_max_staleness_seconds=10)


BOOLEANS = {
    "REQUIRE_VERIFY_HEADER": "require_verify_header",
    "REQUIRE_BOUND_TOKENS": "require_bound_tokens",
}


@pytest.mark.parametrize("name", sorted(BOOLEANS))
@pytest.mark.parametrize("value", ["maybe", "", "2", "enabled"])
def test_an_unreadable_boolean_is_refused_rather_than_guessed(env, name, value):
    (problem,) = problems_of({**env, f"ZT_VERIFIER_{name}": value})
    assert problem.startswith(f"ZT_VERIFIER_{name}: ")
    assert "a boolean (true/false, yes/no, on/off, 1/0)" in problem


@pytest.mark.parametrize("name", sorted(BOOLEANS))
@pytest.mark.parametrize("value", ["1", "yes", "ON", "true"])
def test_the_documented_spellings_of_true_are_read_as_true(env, name, value):
    settings = Settings.from_env({**env, f"ZT_VERIFIER_{name}": value})
    assert getattr(settings, BOOLEANS[name]) is True


@pytest.mark.parametrize("name", sorted(BOOLEANS))
@pytest.mark.parametrize("value", ["0", "no", "OFF", "false"])
def test_the_documented_spellings_of_false_are_read_as_false(env, name, value):
    settings = Settings.from_env({**env, f"ZT_VERIFIER_{name}": value})
    assert getattr(settings, BOOLEANS[name]) is False


def test_bound_tokens_are_required_unless_a_deployment_says_otherwise(env, settings):
    assert Settings.from_env(env).require_bound_tokens is True
    assert settings.require_bound_tokens is True  # built in code: the same default


def test_a_json_value_in_the_environment_is_not_parsed_as_json(env):
    (problem,) = problems_of({**env, "ZT_VERIFIER_ALGORITHMS": '["RS256"]'})
    assert problem.startswith("""ZT_VERIFIER_ALGORITHMS: '["RS256"]'""")


@pytest.mark.parametrize("name", ["ISSUER", "JWKS_URL"])
@pytest.mark.parametrize("url", ["http://kc.test/realms/r", "kc.test/realms/r", "https://"])
def test_the_issuer_and_the_jwks_url_must_be_https_urls(env, name, url):
    (problem,) = problems_of({**env, f"ZT_VERIFIER_{name}": url})
    assert problem.startswith(f"ZT_VERIFIER_{name}: '{url}' is not an https:// URL")


def test_a_value_with_surrounding_whitespace_is_refused(env):
    assert problems_of({**env, "ZT_VERIFIER_AUDIENCE": "zerotrust-api "}) == [
        "ZT_VERIFIER_AUDIENCE: 'zerotrust-api ' is not a client id (leading or trailing whitespace)"
    ]


def test_an_empty_optional_value_is_refused_instead_of_read_as_unset(env):
    assert problems_of({**env, "ZT_VERIFIER_AUDIT_LOG": ""}) == [
        "ZT_VERIFIER_AUDIT_LOG: empty; expected a file path"
    ]


@pytest.mark.parametrize("algorithms", ["none", "HS256", "RS256,hs512"])
def test_none_and_hmac_algorithms_are_refused_at_start_up(env, algorithms):
    (problem,) = problems_of({**env, "ZT_VERIFIER_ALGORITHMS": algorithms})
    assert re.fullmatch(r"ZT_VERIFIER_ALGORITHMS: algorithm '\w+' is never allowed", problem)


def test_an_algorithm_pyjwt_does_not_know_is_refused(env):
    assert problems_of({**env, "ZT_VERIFIER_ALGORITHMS": "RS265"}) == [
        "ZT_VERIFIER_ALGORITHMS: 'RS265' is not an algorithm PyJWT knows"
    ]


def test_an_empty_name_in_the_algorithm_list_is_refused(env):
    assert problems_of({**env, "ZT_VERIFIER_ALGORITHMS": "RS256,"}) == [
        "ZT_VERIFIER_ALGORITHMS: 'RS256,' is not a comma-separated list of JWS algorithms "
        "(an empty name)"
    ]


# --- files read at start-up ----------------------------------------------------------


def test_a_client_ca_file_that_does_not_exist_is_refused_naming_the_variable(env, tmp_path):
    missing = tmp_path / "absent.pem"
    assert problems_of({**env, "ZT_VERIFIER_CLIENT_CA_CERT": str(missing)}) == [
        f"ZT_VERIFIER_CLIENT_CA_CERT: '{missing}' is not a readable PEM file of CA "
        "certificates (No such file or directory)"
    ]


def test_a_client_ca_file_without_a_certificate_is_refused(tmp_path, ca_file, crl_file):
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here\n")
    with pytest.raises(SettingsError) as refused:
        Settings.from_config({**required_config(ca_file, crl_file), "CLIENT_CA_CERT": str(empty)})
    assert refused.value.problems == (
        f"CLIENT_CA_CERT: '{empty}' is not a readable PEM file of CA certificates "
        "(it holds no certificate)",
    )


def test_a_jwks_ca_bundle_that_does_not_exist_stops_the_start_not_every_fetch(env, tmp_path):
    (problem,) = problems_of({**env, "ZT_VERIFIER_JWKS_CA_BUNDLE": str(tmp_path / "no.pem")})
    assert problem.startswith("ZT_VERIFIER_JWKS_CA_BUNDLE: ")
    assert problem.endswith("(No such file or directory)")


@pytest.mark.parametrize("crl", [None, ""])
def test_a_missing_client_crl_is_refused_at_start_up_naming_the_variable(ca_file, crl):
    config = {**required_config(ca_file, "x"), "CLIENT_CRL": crl}
    with pytest.raises(SettingsError, match=r"^verifier settings refused \(1 problem\):\n  "):
        Settings.from_config(config)
    with pytest.raises(SettingsError, match=r"\n  CLIENT_CRL: (required, not set|empty)"):
        Settings.from_config(config)
    env = {f"ZT_VERIFIER_{k}": v for k, v in config.items() if v is not None}
    with pytest.raises(SettingsError, match=r"\n  ZT_VERIFIER_CLIENT_CRL: "):
        Settings.from_env(env)


# --- all problems at once ---------------------------------------------------------------


def test_every_problem_is_listed_in_one_error_in_table_order(env):
    del env["ZT_VERIFIER_AUDIENCE"]
    environ = {
        **env,
        "ZT_VERIFIER_ISUER": "x",
        "ZT_VERIFIER_LEEWAY_SECONDS": "abc",
        "ZT_VERIFIER_REQUIRE_VERIFY_HEADER": "maybe",
        "ZT_VERIFIER_DECISION_CACHE_SECONDS": "900",
    }
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environ)
    assert [p.split(":")[0] for p in refused.value.problems] == [
        "ZT_VERIFIER_ISUER",
        "ZT_VERIFIER_AUDIENCE",
        "ZT_VERIFIER_LEEWAY_SECONDS",
        "ZT_VERIFIER_REQUIRE_VERIFY_HEADER",
        "ZT_VERIFIER_DECISION_CACHE_SECONDS",
    ]
    message = str(refused.value)
    assert message.startswith("verifier settings refused (5 problems):\n  ZT_VERIFIER_ISUER: ")
    assert all(f"\n  {p}" in message for p in refused.value.problems)
    assert isinstance(refused.value, ConfigError)
    assert isinstance(refused.value, ValueError)


# --- settings built in code ---------------------------------------------------------------


@pytest.mark.parametrize("algorithms", [("none",), ("HS256",), ("RS256", "hs512"), ()])
def test_settings_built_in_code_refuse_none_and_hmac_algorithms(settings, algorithms):
    with pytest.raises(SettingsError, match=r"ALGORITHMS: .*algorithm"):
        dataclasses.replace(settings, algorithms=algorithms)


def test_settings_built_in_code_refuse_an_empty_crl_path_too(settings):
    with pytest.raises(SettingsError, match=r"\n  CLIENT_CRL: empty$"):
        dataclasses.replace(settings, client_crl="")


def test_settings_built_in_code_refuse_every_bad_value_at_once(settings):
    with pytest.raises(SettingsError) as refused:
        dataclasses.replace(
            settings, issuer="http://kc", leeway_seconds=float("nan"), max_token_bytes=0
        )
    assert [p.split(":")[0] for p in refused.value.problems] == [
        "ISSUER",
        "LEEWAY_SECONDS",
        "MAX_TOKEN_BYTES",
    ]


def test_settings_built_in_code_have_no_default_issuer_audience_jwks_url_or_policy(pki):
    with pytest.raises(TypeError, match=r"issuer.*audience.*jwks_url.*policy_path"):
        Settings(client_ca_pem=pki.client_ca.pem, client_crl="/crl.pem")  # type: ignore[call-arg]


def test_settings_are_immutable(settings):
    with pytest.raises(AttributeError):
        settings.issuer = "https://evil"  # type: ignore[misc]
