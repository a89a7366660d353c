"""The HA profile's PostgreSQL settings and Keycloak's password verifier (no server).

The verifier below was made by PostgreSQL 15 itself (``CREATE ROLE … PASSWORD 'pencil'``
with ``password_encryption=scram-sha-256``, then ``SELECT rolpassword``): a fixture, not a
secret of any stack.
"""

from __future__ import annotations

import base64

import pytest

from scripts import config, tools
from scripts.services import keycloak, postgres
from scripts.steps import StepFailed

POSTGRES_MADE = (
    "SCRAM-SHA-256$4096:yu37pvw14FiXhotZICHjkg==$/ilMVG532thGpTeYxP4NPtTORkeyjHZL/cIu/hra/js="
    ":7UwMoPcwHMrdusUi7daIixkDEs01D9tiHk081HoT5w4="
)


def test_our_scram_verifier_is_the_one_postgres_makes() -> None:
    salt = base64.b64decode("yu37pvw14FiXhotZICHjkg==")
    assert postgres.scram_verifier("pencil", salt, 4096) == POSTGRES_MADE
    assert postgres.verifier_matches(POSTGRES_MADE, "pencil")


def test_a_verifier_of_another_password_or_a_malformed_one_does_not_match() -> None:
    assert not postgres.verifier_matches(POSTGRES_MADE, "pencil2")
    assert not postgres.verifier_matches("md5d41d8cd98f00b204e9800998ecf8427e", "pencil")
    assert not postgres.verifier_matches("", "pencil")


def test_postgres_listens_on_loopback_with_two_hba_lines_only() -> None:
    args = postgres.argv()
    assert f"listen_addresses={config.HOST}" in args
    assert str(config.POSTGRES_PORT) in args
    assert f"unix_socket_directories={config.POSTGRES_SOCKET_DIR}" in args
    rules = [line.split() for line in postgres.hba_text().splitlines() if line[:1] != "#"]
    assert rules == [
        ["local", "all", postgres.superuser(), "peer"],
        ["host", "keycloak", "keycloak", f"{config.HOST}/32", "scram-sha-256"],
    ]


def test_a_psql_variable_with_a_quote_is_refused_before_anything_runs() -> None:
    with pytest.raises(StepFailed, match="quote"):
        postgres.psql("SELECT :'v';", v="x'; DROP DATABASE keycloak; --")


def test_the_single_keycloak_keeps_its_h2_home_and_local_cache() -> None:
    args = keycloak.argv()
    assert args[0] == str(tools.KEYCLOAK_HOME / "bin" / "kc.sh")
    assert "--cache=local" in args
    assert any(a.startswith("--db-url=jdbc:h2:file:") for a in args)
    assert tools.KEYCLOAK_BUILD_OPTIONS[0] == "--db=dev-file"
    assert tools.KEYCLOAK_PG_BUILD_OPTIONS[0] == "--db=postgres"
    assert tools.KEYCLOAK_PG_BUILD_OPTIONS[1:] == tools.KEYCLOAK_BUILD_OPTIONS[1:]
    assert tools.KEYCLOAK_PG_HOME != tools.KEYCLOAK_HOME
