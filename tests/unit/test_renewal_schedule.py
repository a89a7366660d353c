"""The renewer's pure parts: its interval, its record of a run, its bounded loop, and
the lifetimes profile it is proven with (no servers: ``renew`` is passed in)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from scripts import config
from scripts.pki import lifetimes, schedule
from scripts.steps import StepFailed

MINUTE = dt.timedelta(minutes=1)


@pytest.mark.parametrize(
    ("shortest", "expected"),
    [
        (dt.timedelta(seconds=150), 15.0),  # a 120 s certificate, backdated 30 s by OpenBao
        (dt.timedelta(minutes=3), 18.0),
        (dt.timedelta(seconds=20), config.RENEW_INTERVAL_MIN_SECONDS),
        (dt.timedelta(hours=24), config.RENEW_INTERVAL_MAX_SECONDS),
    ],
)
def test_the_interval_is_a_tenth_of_the_shortest_lifetime_within_bounds(shortest, expected):
    assert schedule.interval_for([dt.timedelta(days=30), shortest, 72 * 60 * MINUTE]) == expected


def test_with_nothing_in_play_the_interval_is_the_maximum():
    assert schedule.interval_for([]) == config.RENEW_INTERVAL_MAX_SECONDS


def test_a_certificate_due_at_two_thirds_is_renewed_with_a_fifth_of_its_life_left():
    """The bound docs/operations.md states: due at 2/3, noticed within one interval."""
    for seconds in (150, 210, 3600, 86400):
        life = dt.timedelta(seconds=seconds)
        interval = schedule.interval_for([life])
        assert 2 / 3 * seconds + interval <= 0.8 * seconds, seconds


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "RENEW_STATUS", tmp_path / "renewer.json")
    monkeypatch.setattr(config, "RUN", tmp_path)
    monkeypatch.setattr(config, "LIFETIMES", tmp_path / "lifetimes.json")
    monkeypatch.setattr(schedule.rotation, "LOCK", tmp_path / "rotation.lock")
    return tmp_path


def test_a_failed_run_is_recorded_with_what_it_did_first_and_does_not_raise(state):
    def renew(done: list[str]) -> None:
        done.append("client/python-client: a -> b")
        raise StepFailed("server/vault: OpenBao is unreachable at https://127.0.0.1:8200.\nmore")

    record = schedule.run_once(15.0, renew)
    assert record["ok"] is False
    assert record["actions"] == ["client/python-client: a -> b"]
    assert record["error"] == "server/vault: OpenBao is unreachable at https://127.0.0.1:8200."
    assert record["interval_seconds"] == 15.0


def test_an_unexpected_error_does_not_end_the_loop(state, capsys):
    calls = []

    def renew(done: list[str]) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("surprise")
        done.append("client CRL refreshed")

    assert schedule.run(0.01, runs=2, renew=renew) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["ok"] for line in lines] == [False, True]
    assert lines[0]["error"].startswith("KeyError")
    assert schedule.last_run()["actions"] == ["client CRL refreshed"]


def test_every_run_is_one_json_line_even_when_steps_print(state, capsys):
    def renew(done: list[str]) -> None:
        print("    nginx serving serial 01: ready after 0.2s")
        done.append("server/nginx: a -> b")

    schedule.run(0.01, runs=3, renew=renew)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert all(json.loads(line)["actions"] == ["server/nginx: a -> b"] for line in lines)


def test_the_supervisor_command_line_is_the_auto_renewer():
    assert schedule.command()[-4:] == ["scripts.zt", "renew", "--every", "auto"]


@pytest.mark.parametrize(
    ("seconds", "duration"), [(180, "3m"), (3600, "1h"), (259200, "72h"), (5400, "90m")]
)
def test_a_crl_lifetime_becomes_a_vault_duration(seconds, duration):
    assert lifetimes.crl_expiry(seconds) == duration


def test_a_crl_lifetime_in_seconds_is_refused():
    with pytest.raises(StepFailed, match="whole number of minutes"):
        lifetimes.crl_expiry(150)


def test_only_the_lifetimes_set_reach_terraform():
    assert lifetimes.tf_vars(lifetimes.Lifetimes()) == {}
    short = lifetimes.Lifetimes(client_cert_seconds=120, crl_seconds=180)
    assert lifetimes.tf_vars(short) == {
        "TF_VAR_client_cert_ttl_seconds": "120",
        "TF_VAR_crl_expiry": "3m",
    }


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"client_cert": 120}, "unknown setting"),
        ({"client_cert_seconds": "120"}, "positive whole number"),
        ({"client_cert_seconds": 0}, "positive whole number"),
        ({"crl_seconds": True}, "positive whole number"),
        ({"crl_seconds": 150}, "whole number of minutes"),
    ],
)
def test_the_lifetimes_file_is_strict(settings, problem):
    with pytest.raises(StepFailed, match=problem):
        lifetimes.parse(settings)


def test_the_default_profile_leaves_no_file(state):
    lifetimes.save(lifetimes.Lifetimes(client_cert_seconds=120))
    assert lifetimes.load() == lifetimes.Lifetimes(client_cert_seconds=120)
    lifetimes.save(lifetimes.Lifetimes())
    assert not config.LIFETIMES.exists()
    assert lifetimes.load() == lifetimes.Lifetimes()


def test_options_change_only_the_lifetimes_they_name():
    short = lifetimes.Lifetimes(client_cert_seconds=120, crl_seconds=180)
    assert short.updated(server_cert_seconds=300, crl_seconds=None) == lifetimes.Lifetimes(
        client_cert_seconds=120, server_cert_seconds=300, crl_seconds=180
    )
    with pytest.raises(StepFailed, match="whole number of minutes"):
        short.updated(crl_seconds=90)
