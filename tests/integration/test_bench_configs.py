"""`make bench`'s nginx configs stay loadable as the production snippets change.

Why: the bench's comparison template includes the production snippets (the
identity headers) but is not started by `make test`; a map added to production
once made `make bench` fail at `nginx -t` while every test passed.
"""

from __future__ import annotations

import pytest

from bench import servers

INSTANCES = [i for i in servers.INSTANCES if not i.tmpfs_cache]  # tmpfs: a folder per run


@pytest.mark.parametrize("instance", INSTANCES, ids=lambda i: i.name)
def test_bench_nginx_config_passes_nginx_t(stack, instance):
    servers.render(instance)  # raises with nginx's message when `nginx -t` refuses it
    assert instance.conf.exists()
