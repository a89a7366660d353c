"""The HA profile's suite (`make test-ha`): it runs against the HA stack only.

Collected only with ``ZT_PROFILE=ha`` (tests/conftest.py); a missing stack is a failure,
never a skip: `make test-ha` brings it up before pytest runs.
"""

from __future__ import annotations

import pytest

from scripts import config
from scripts.services import supervisor


@pytest.fixture(scope="session", autouse=True)
def ha_stack() -> None:
    assert config.HA, "tests/ha runs with ZT_PROFILE=ha (`make test-ha`)"
    assert supervisor.pid() is not None, (
        f"the HA profile's stack is not running (state {config.STATE}); `make up-ha` first"
    )
