"""Decisions while Keycloak's JWKS endpoint misbehaves: known keys never wait.

The endpoint is real (``tests/unit/local_jwks.py``: TLS on loopback) and trickles
its status line and headers one byte every 0.2 s, each byte well within any
per-read timeout, so only a total deadline ends the fetch. Before issue 17 a
due refresh ran under one lock inside the request: every decision waited for
the trickle (43 s measured). Now the refresh runs in the background:

* decisions for tokens of a known kid all complete while the fetch still hangs
  (the proof that none waited for it; the timings are printed, not asserted
  beyond generous bounds);
* a token with an unknown kid waits at most ``unknown_kid_wait`` and is refused
  with ``token_key_unknown``;
* the fetch itself ends at its total deadline and the last good keys stay;
* keys past the hard maximum staleness, with refreshes failing, are refused
  (``jwks_stale``).
"""

from __future__ import annotations

import threading
import time

from tests.unit.local_jwks import LocalJwks
from tests.verifier_fixtures import NOW
from verifier.jwks import JWKSKeySource

FETCH_DEADLINE = 3.0
UNKNOWN_KID_WAIT = 0.5
SLACK = 2.0
THREADS, PER_THREAD = 4, 25


def _source(server: LocalJwks, **kwargs: float) -> JWKSKeySource:
    timings = {
        "timeout": FETCH_DEADLINE,
        "cooldown": 30.0,
        "max_age": 60.0,
        "max_staleness": 900.0,
        "unknown_kid_wait": UNKNOWN_KID_WAIT,
    }
    return JWKSKeySource(server.url, server.ca_file, **{**timings, **kwargs})


def test_known_kid_decisions_finish_while_a_header_trickle_holds_the_refresh(
    tmp_path, signing_key, other_signing_key, make_token, make_event, run, caches
):
    with LocalJwks(tmp_path, {"keys": [signing_key.jwk]}, interval=0.2) as server:
        keys = _source(server)
        keys.refresh_if_stale(NOW - 100, wait=5)  # loaded 100 s ago: due (max_age 60)
        assert keys.key_count == 1
        server.mode = "trickle-head"
        event = make_event(token=make_token())
        latencies: list[float] = []
        reasons: list[str] = []

        def decide_many() -> None:
            for _ in range(PER_THREAD):
                started = time.monotonic()
                reasons.append(run(event, keys_=keys).reason)
                latencies.append(time.monotonic() - started)

        started = time.monotonic()
        threads = [threading.Thread(target=decide_many) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(FETCH_DEADLINE + SLACK)
        all_done = time.monotonic() - started
        still_hanging = keys.status(NOW).refreshing
        print(
            f"{len(reasons)} known-kid decisions in {all_done:.2f}s during the trickle "
            f"(slowest {max(latencies) * 1000:.0f} ms); fetch still in flight: {still_hanging}"
        )
        assert reasons == ["ok"] * THREADS * PER_THREAD
        assert still_hanging, "the decisions must not have waited for the trickled fetch"
        assert max(latencies) < FETCH_DEADLINE

        unknown = make_event(token=make_token(key=other_signing_key.private, kid="rotated-key-2"))
        asked = time.monotonic()
        response = run(unknown, keys_=keys)
        waited = time.monotonic() - asked
        print(f"unknown kid refused after {waited:.2f}s (bound {UNKNOWN_KID_WAIT}s)")
        assert response.reason == "token_key_unknown"
        assert UNKNOWN_KID_WAIT <= waited < UNKNOWN_KID_WAIT + SLACK

        assert keys.wait_for_refresh(FETCH_DEADLINE + SLACK)
        ended = time.monotonic() - started
        print(f"trickled fetch abandoned {ended:.2f}s after the first due decision")
        assert ended < FETCH_DEADLINE + SLACK
        assert "Timeout" in (keys.last_error or "")
        assert run(event, keys_=keys).reason == "ok"  # the last good key stays


def test_a_key_past_the_maximum_staleness_is_refused_while_refreshes_fail(
    tmp_path, signing_key, make_token, make_event, run
):
    with LocalJwks(tmp_path, {"keys": [signing_key.jwk]}) as server:
        keys = _source(server, max_age=300, max_staleness=900)
        keys.refresh_if_stale(NOW - 1000, wait=5)  # the last good fetch, 1000 s ago
        server.mode = "status-503"
        keys.refresh_if_stale(NOW - 500, wait=5)  # a refresh since: failed
        assert "503" in (keys.last_error or "")
        response = run(make_event(token=make_token()), keys_=keys)
        assert (response.reason, response.status) == ("jwks_stale", 401)
        assert "1000s ago" in response.detail
        keys.wait_for_refresh(5)  # the refresh that decision started (fails too)
        assert run(make_event(token=make_token()), keys_=keys).reason == "jwks_stale"
