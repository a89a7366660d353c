"""The verifier's gunicorn parses with gunicorn_h1c's C parser; the API keeps the stock one.

Why it matters: the C parser takes ~24 µs off every uncached decision (issue 20), but
the subrequest's edge cases were written against gunicorn's Python parser: the bytes
it refuses in a header value (nginx/snippets/authz-maps.conf pre-empts them) and the
16 KiB field limit (an oversized token gets the verifier's own reason code). Both
parsers are run here on the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gunicorn.config import Config
from gunicorn.http.errors import LimitRequestHeaders
from gunicorn.http.message import Request
from gunicorn.http.unreader import IterUnreader

from scripts.services import apps

PARSERS = ("python", "fast")


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def verifier_config(parser: str) -> Config:
    """gunicorn's config with the verifier's own flags, and ``parser``."""
    cfg = Config()
    extra = apps.VERIFIER.extra
    cfg.set("limit_request_field_size", int(flag(list(extra), "--limit-request-field_size")))
    cfg.set("http_parser", parser)
    return cfg


def parse(parser: str, raw: bytes) -> Request:
    return Request(verifier_config(parser), IterUnreader([raw]), ("127.0.0.1", 0))


def subrequest(value: bytes = b"/api/resource", token: bytes = b"t" * 900) -> bytes:
    return (
        b"GET /_authz HTTP/1.1\r\nHost: localhost\r\nX-Original-Method: GET\r\n"
        b"X-Original-URI: " + value + b"\r\nAuthorization: Bearer " + token + b"\r\n\r\n"
    )


def test_the_verifier_runs_the_c_parser_and_fails_to_start_without_it():
    assert flag(apps.VERIFIER.argv(Path("/run/v.sock")), "--http-parser") == "fast"


def test_the_api_keeps_gunicorns_stock_parser():
    assert flag(apps.API.argv(Path("/run/a.sock")), "--http-parser") == "python"


def test_both_parsers_read_the_same_subrequest():
    python, fast = parse("python", subrequest()), parse("fast", subrequest())
    assert fast._use_fast and not python._use_fast  # the C parser really ran
    assert (fast.method, fast.path, fast.headers) == (python.method, python.path, python.headers)


def test_both_parsers_refuse_the_same_bytes_in_a_header_value():
    def refused(parser: str) -> set[int]:
        out = set()
        for byte in range(256):
            try:
                parse(parser, subrequest(b"/a" + bytes([byte]) + b"b"))
            except Exception:
                out.add(byte)
        return out

    python = refused("python")
    assert python and refused("fast") == python


@pytest.mark.parametrize("parser", PARSERS)
def test_a_token_over_the_field_limit_is_refused_by_either_parser(parser):
    limit = int(flag(list(apps.VERIFIER.extra), "--limit-request-field_size"))
    parse(parser, subrequest(token=b"a" * (limit - 200)))  # under it: read
    with pytest.raises(LimitRequestHeaders):
        parse(parser, subrequest(token=b"a" * (limit + 1)))
