"""PostgreSQL for the HA profile: Keycloak's database (docs/scaling.md).

Placeholder until the HA profile's database lands: ``start`` refuses loudly."""

from __future__ import annotations

from scripts.steps import StepFailed


def start() -> str:
    raise StepFailed("the HA profile's PostgreSQL is not built yet; use `make up`")
