"""Path canonicalisation: one spelling per path, everything else refused."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifier.errors import PathNotCanonical
from verifier.paths import canonical_path


@pytest.mark.parametrize(
    "raw",
    [
        "/api/../api/admin/x",
        "/api/./resource",
        "/api/resource/..",
        "/..",
        "/.",
        "/api/%2e%2e/admin",
        "/api/%2E%2E/admin",
        "/api/.%2e/admin",
        "/api/%252e%252e/admin",
        "//api/admin",
        "/api//admin",
        "/api/resource/",
        "/api%2Fadmin/x",
        "/api/admin%2fx",
        "/api/resource%00",
        "/api\\admin",
        "/api/resource;jsessionid=1",
        "/api/..;/admin",
        "/api/resource#fragment",
        "/api/res\x00ource",
        "/api/res\tource",
        "/api/res ource",
        "/api/r\u00e9sum\u00e9",
        "/api/resource\x7f",
        "api/resource",
        "",
        "*",
        "?/api/resource",
        "/" + "a/" * 1100 + "b",
    ],
)
def test_a_non_canonical_path_is_refused_with_path_not_canonical(raw):
    with pytest.raises(PathNotCanonical):
        canonical_path(raw)


@pytest.mark.parametrize(
    ("raw", "route"),
    [
        ("/", "/"),
        ("/api/resource", "/api/resource"),
        ("/api/resource?x=1", "/api/resource"),
        ("/api/resource?next=/../admin&y=%2F", "/api/resource"),
        ("/api/tenants/acme/items", "/api/tenants/acme/items"),
        ("/api/v1.2/file.txt", "/api/v1.2/file.txt"),
        ("/api/...", "/api/..."),
    ],
)
def test_a_canonical_path_is_returned_without_its_query(raw, route):
    assert canonical_path(raw) == route


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_any_accepted_path_is_its_own_normal_form(raw):
    try:
        route = canonical_path("/" + raw)
    except PathNotCanonical:
        return
    assert posixpath.normpath(route) == route or route == "/"
    assert "%" not in route and "\\" not in route and "//" not in route
    assert all(0x21 <= ord(c) <= 0x7E for c in route)
