"""Certificate and CRL lifetimes as settings of the stack (``zt lifetimes``).

terraform/pki owns the defaults and the bounds (``client_cert_ttl_seconds``,
``server_cert_ttl_seconds``, ``crl_expiry`` and their validations). What an
operator sets instead is kept in ``config.LIFETIMES`` and reaches Terraform as
``TF_VAR_`` through ``terraform.pki_env()``, which the bring-up, every ``zt``
command that applies and ``.state/env.sh`` all use: a hand-run ``terraform plan``
sees exactly what was applied (No changes). An absent file, or an absent key, means
Terraform's default, so the default profile is not re-typed here.

The short-lifetime profile (``zt lifetimes --client-cert 120 --crl 180``) exists to
prove scheduled renewal in minutes instead of days.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from scripts import config
from scripts.files import write_atomic
from scripts.steps import StepFailed

# Our setting -> the terraform/pki variable it feeds.
VARIABLES = {
    "client_cert_seconds": "client_cert_ttl_seconds",
    "server_cert_seconds": "server_cert_ttl_seconds",
    "crl_seconds": "crl_expiry",
}


@dataclass(frozen=True)
class Lifetimes:
    """Seconds per lifetime; None keeps terraform/pki's default."""

    client_cert_seconds: int | None = None
    server_cert_seconds: int | None = None
    crl_seconds: int | None = None

    def as_settings(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def updated(self, **changes: int | None) -> Lifetimes:
        """These lifetimes with ``changes`` (None: keep), checked like the file."""
        return parse({**self.as_settings(), **{k: v for k, v in changes.items() if v is not None}})

    def describe(self) -> str:
        set_ = self.as_settings()
        if not set_:
            return "terraform/pki's defaults"
        chosen = ", ".join(f"{k} = {v}" for k, v in sorted(set_.items()))
        return f"{chosen} (others: terraform/pki's defaults)"


def crl_expiry(seconds: int) -> str:
    """terraform/pki's ``crl_expiry`` (a Vault duration in whole minutes or hours)."""
    if seconds <= 0 or seconds % 60:
        raise StepFailed(f"a CRL lifetime of {seconds} s is not a whole number of minutes")
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m"


def tf_vars(lifetimes: Lifetimes) -> dict[str, str]:
    """The ``TF_VAR_`` environment of terraform/pki for ``lifetimes`` (defaults: none)."""
    out: dict[str, str] = {}
    for key, value in lifetimes.as_settings().items():
        text = crl_expiry(value) if key == "crl_seconds" else str(value)
        out[f"TF_VAR_{VARIABLES[key]}"] = text
    return out


def parse(settings: Mapping[str, object]) -> Lifetimes:
    """Strict: unknown keys and non-positive or non-integer values are errors naming them."""
    unknown = sorted(set(settings) - set(VARIABLES))
    if unknown:
        raise StepFailed(f"{config.LIFETIMES}: unknown setting(s) {', '.join(unknown)}")
    for key, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise StepFailed(f"{config.LIFETIMES}: {key} must be a positive whole number")
    lifetimes = Lifetimes(**settings)  # type: ignore[arg-type]
    tf_vars(lifetimes)  # a CRL lifetime must be whole minutes
    return lifetimes


def load() -> Lifetimes:
    """What the state folder sets (no file: every default)."""
    if not config.LIFETIMES.exists():
        return Lifetimes()
    try:
        settings = json.loads(config.LIFETIMES.read_text())
    except ValueError as e:
        raise StepFailed(f"{config.LIFETIMES} is not JSON: {e}") from e
    if not isinstance(settings, dict):
        raise StepFailed(f"{config.LIFETIMES} must hold a JSON object")
    return parse(settings)


def save(lifetimes: Lifetimes) -> None:
    """Keep ``lifetimes`` (only what differs from the defaults; none: remove the file)."""
    settings = lifetimes.as_settings()
    if not settings:
        config.LIFETIMES.unlink(missing_ok=True)
        return
    write_atomic(config.LIFETIMES, json.dumps(settings, sort_keys=True) + "\n")
