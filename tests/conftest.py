"""Suite-wide test order: a test marked ``runs_last`` runs after every other test.

tests/integration/test_backup.py runs ``zt clean`` and a restore on the very stack the
other tests use (it leaves it up and healthy, but logs start over and anything issued
meanwhile is gone), so it goes last in any run that collects it. The sort is stable:
every other test keeps pytest's order.
"""

from __future__ import annotations

import pytest

from scripts import config

# tests/ha needs the HA profile's stack (`make test-ha` brings it up); every other suite
# needs the single one (`make test`).
collect_ignore = [] if config.HA else ["ha"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "runs_last: run after every other test of the session (order-sensitive)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("runs_last") is not None)
