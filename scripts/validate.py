"""`zt validate`: every configuration the stack would load, checked without loading it.

Each check returns a list of problems (one line each, naming the file, rule, variable
or key); nothing is changed and no service is signalled:

* the route policy (``verifier/policy.json``) with the verifier's own strict loader;
* the verifier's settings as the bring-up would pass them (``ZT_VERIFIER_*``);
* the API's settings (``ZT_API_*``);
* nginx's config rendered from the template into a scratch file, ``nginx -t``;
* ``terraform validate`` of both roots;
* Prometheus's config and alert rules, ``promtool check config`` + ``check rules``.

A check that needs what `make up` creates (Terraform outputs, certificates) and cannot
run yet says so as a problem naming the fix, so a fresh checkout never passes
silently.
"""

from __future__ import annotations

import os
import string
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from api.app import settings_from_env as api_settings
from scripts import config, terraform, tools
from scripts.services import accounts, apps, nginx, prometheus
from verifier.app import ENV_REQUIRED
from verifier.policy import policy_problems
from verifier.settings import settings_problems

Check = Callable[[], list[str]]


def policy() -> list[str]:
    return policy_problems(str(config.VERIFIER_POLICY))


def _needs_up(what: str, missing: Path) -> list[str]:
    return [f"{what}: not checked, {missing} does not exist yet (run `make up`)"]


def verifier_settings() -> list[str]:
    if not config.IDENTITY_OUTPUTS.exists():
        return _needs_up("verifier settings", config.IDENTITY_OUTPUTS)
    return settings_problems(apps.verifier_env(), also_required=ENV_REQUIRED)


def api_settings_check() -> list[str]:
    try:
        api_settings(apps.api_env())
    except (ValueError, OSError) as e:
        return [f"API settings: {e}"]
    return []


def nginx_config() -> list[str]:
    """Render the template with the saved choices into a scratch file; ``nginx -t`` it."""
    cert, _ = config.server_cert_paths("nginx")
    if not cert.exists() or not config.IDENTITY_OUTPUTS.exists():
        missing = cert if not cert.exists() else config.IDENTITY_OUTPUTS
        return _needs_up("nginx config", missing)
    with tempfile.TemporaryDirectory(prefix="zt-validate-") as scratch:
        folder = Path(scratch)
        cache = nginx.authz_cache_values(
            nginx.authz_cache_enabled(), folder / "cache", folder / "authz-cache.conf"
        )
        values = nginx.nginx_values(cache, run_dir=folder, log_dir=folder, tmp_dir=folder)
        try:
            text = string.Template(nginx.NGINX_TEMPLATE.read_text()).substitute(values)
        except (KeyError, ValueError) as e:
            return [f"{nginx.NGINX_TEMPLATE}: placeholder {e} is not filled"]
        conf = folder / "nginx.conf"
        conf.write_text(accounts.nginx_user_directive() + text)
        test = subprocess.run(
            ["nginx", "-t", "-q", "-c", str(conf)], capture_output=True, text=True
        )
    if test.returncode != 0:
        return [f"nginx -t ({nginx.NGINX_TEMPLATE} rendered): {test.stderr.strip()}"]
    return []


def terraform_roots() -> list[str]:
    problems = []
    for root, folder in terraform.ROOTS.items():
        if not (folder / ".terraform").exists():
            problems += _needs_up(f"terraform/{root}", folder / ".terraform")
            continue
        proc = subprocess.run(
            [str(tools.TERRAFORM), f"-chdir={folder}", "validate", "-no-color"],
            capture_output=True,
            text=True,
            env={**os.environ, "TF_CLI_CONFIG_FILE": str(tools.TERRAFORM_RC)},
        )
        if proc.returncode != 0:
            detail = " ".join((proc.stderr or proc.stdout).split())
            problems.append(f"terraform/{root}: terraform validate: {detail[:1500]}")
    return problems


CHECKS: dict[str, Check] = {
    "policy": policy,
    "verifier settings": verifier_settings,
    "API settings": api_settings_check,
    "nginx": nginx_config,
    "terraform": terraform_roots,
    "prometheus": prometheus.validate,
}


def everything() -> dict[str, list[str]]:
    """Every check's problems by name (an empty list: passed)."""
    return {name: check() for name, check in CHECKS.items()}
