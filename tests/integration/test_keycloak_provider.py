"""The Go tests of our Keycloak provider (terraform/providers/keycloak), run by `make test`.

`go vet`, `gofmt` and `go test -count=1 ./...`: the resource tests against a recording
fake of Keycloak's admin API (plan, create, read, update, the client authenticator and
``extra_config``), and the admin-API client against the stack's real Keycloak — given
its URL, the bootstrap admin and the server CA, so that test runs instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from scripts import config
from scripts.services import keycloak

PROVIDER = config.REPO / "terraform" / "providers" / "keycloak"


def _go(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    go = shutil.which("go")
    assert go is not None, "`go` is not on PATH (make up builds the providers with it)"
    return subprocess.run(
        [go, *args],
        cwd=PROVIDER,
        env={**os.environ, "GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0", **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_the_provider_is_vetted_and_formatted(stack):
    vet = _go("vet", "./...")
    assert vet.returncode == 0, vet.stdout + vet.stderr
    fmt = subprocess.run(
        ["gofmt", "-l", "."], cwd=PROVIDER, capture_output=True, text=True, timeout=120
    )
    assert fmt.returncode == 0 and fmt.stdout.strip() == "", f"not gofmt'ed: {fmt.stdout}"


@pytest.mark.slow
def test_the_provider_go_tests_pass_including_against_the_real_keycloak(stack):
    admin = keycloak.admin_credentials()
    run = _go(
        "test",
        "-count=1",
        "-v",
        "./...",
        env={
            "KEYCLOAK_URL": config.KEYCLOAK_URL,
            "KEYCLOAK_USER": admin["username"],
            "KEYCLOAK_PASSWORD": admin["password"],
            "SSL_CERT_FILE": str(config.SERVER_CA_BUNDLE),  # Go trusts our server CA
        },
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "--- PASS: TestAgainstKeycloak" in out, out[-4000:]
    assert "--- SKIP" not in out, [line for line in out.splitlines() if "SKIP" in line]
    assert admin["password"] not in out
    for name in ("client_authenticator_type", "extra_config"):
        assert (
            name in (PROVIDER / "internal" / "provider" / "resource_openid_client.go").read_text()
        )
