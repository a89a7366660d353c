"""Property tests: whatever arrives, ``decide`` answers, and only allows what it should.

The last test is the short run of the long fuzzer (``tests.fuzz.long_run``):
the same inputs and the same invariant (``tests.fuzz.inputs``), a few hundred
examples.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.inputs import Tally, World, requests
from tests.verifier_fixtures import NOW
from verifier.caches import DecisionCaches
from verifier.decision import decide
from verifier.errors import all_reasons
from verifier.paths import canonical_path

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def core(keys, policy, settings, revocation):
    """``decide`` with the session's objects and this module's own caches."""
    caches = DecisionCaches.from_settings(settings)
    return lambda event: decide(
        event,
        keys=keys,
        policy=policy,
        settings=settings,
        revocation=revocation,
        caches=caches,
        now=NOW,
    )


@settings(max_examples=150)
@given(event=json_values)
def test_any_json_event_is_denied_without_raising(core, event):
    response = core(event)
    assert response.decision == "deny"
    assert response.reason in all_reasons()


@settings(max_examples=150)
@given(
    path=st.text(max_size=40).map(lambda s: "/" + s)
    | st.sampled_from(
        ["/api/resource", "/api/tenants/acme/x", "/api/admin/x", "/api/resource?a=b"]
    ),
    method=st.sampled_from(["GET", "HEAD", "POST", "DELETE", "get", "TRACE", ""]),
)
def test_a_valid_caller_is_allowed_only_on_canonical_routes_the_policy_grants(
    core, make_event, make_token, path, method
):
    response = core(make_event(token=make_token(), path=path, method=method))
    if response.decision == "allow":
        route = canonical_path(path)
        assert method in {"GET", "HEAD"}
        assert route == "/api/resource" or route.startswith("/api/tenants/acme")
    else:
        assert response.status in {401, 403}


@settings(max_examples=100)
@given(authorization=st.text(max_size=60), verify=st.text(max_size=10))
def test_arbitrary_authorization_and_verify_headers_never_allow(
    core, make_event, authorization, verify
):
    response = core(make_event(authorization=authorization, verify=verify))
    assert response.decision == "deny"
    assert response.reason != "internal_error"


@pytest.fixture(scope="module")
def world():
    return World.build()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_only_a_token_signed_by_the_key_and_bound_to_the_cert_is_allowed_and_nothing_is_a_bug(
    world, data
):
    request = data.draw(requests(world))
    tally = Tally()
    tally.record(world, request, world.decide(request))
    assert tally.allowed_unsigned == 0, tally.examples
    assert tally.allowed_unbound == 0, tally.examples
    assert tally.reasons["internal_error"] == 0, request
