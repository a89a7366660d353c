"""The alert rules (prometheus/rules), tested by the real ``promtool test rules``.

Each rule has a test in prometheus/tests that sees it fire and sees it stay quiet;
these tests run them, check that none is missing, and that the suite would notice a
changed threshold. No server: promtool evaluates the rules against series the tests
write out.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from scripts import config
from scripts.services import prometheus

RULES = config.PROMETHEUS_SOURCE / "rules"
TESTS = config.PROMETHEUS_SOURCE / "tests"
ALERT = re.compile(r"^\s*- alert:\s*(\S+)\s*$", re.M)
# An alert_rule_test case expecting an alert: `alertname: X` followed by a non-empty list.
FIRING_CASE = re.compile(r"alertname:\s*(\S+)\s*\n\s*exp_alerts:\s*\n\s*- exp_labels", re.M)

pytestmark = pytest.mark.skipif(
    not config.PROMTOOL_BIN.exists(), reason="promtool missing: `make up` installs it"
)


def _promtool_test(folder: Path) -> tuple[int, str]:
    out = prometheus.promtool("test", "rules", *map(str, sorted(folder.glob("*.yml"))))
    return out.returncode, out.stdout + out.stderr


def test_promtool_accepts_every_rule_file():
    assert prometheus.check_rules(prometheus.rule_files()) == []


def test_every_rule_test_passes_in_promtool():
    code, output = _promtool_test(TESTS)
    print(output)
    assert code == 0, output


def test_every_alert_rule_has_a_test_that_sees_it_fire():
    rules = {name for path in RULES.glob("*.yml") for name in ALERT.findall(path.read_text())}
    fired = {name for path in TESTS.glob("*.yml") for name in FIRING_CASE.findall(path.read_text())}
    assert len(rules) >= 12
    assert rules - fired == set(), "rules without a firing test"
    assert fired - rules == set(), "tests of rules that do not exist"


def test_every_rule_file_has_a_test_file():
    assert {p.stem + "_test" for p in RULES.glob("*.yml")} == {p.stem for p in TESTS.glob("*.yml")}


@pytest.mark.parametrize(
    ("rule_file", "old", "new"),
    [
        ("security.yml", ">= 10", ">= 13"),  # deny burst threshold
        ("pki.yml", "/ 3", "/ 4"),  # 1/3 of life
        ("request_path.yml", "> 0.1", "> 0.5"),  # latency budget
        ("targets.yml", "up == 0", "up == 2"),
    ],
)
def test_the_rule_tests_fail_when_a_threshold_changes(tmp_path, rule_file, old, new):
    copy = tmp_path / "prometheus"
    shutil.copytree(config.PROMETHEUS_SOURCE, copy)
    path = copy / "rules" / rule_file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    code, output = _promtool_test(copy / "tests")
    assert code != 0, output
    assert "FAILED" in output


def test_zt_validate_checks_the_rendered_config_and_the_rules_with_promtool():
    assert prometheus.validate() == []


def test_promtool_check_rules_names_a_broken_rule(tmp_path):
    broken = tmp_path / "broken.yml"
    text = (RULES / "targets.yml").read_text().replace("up == 0", "up == == 0")
    broken.write_text(text)
    problems = prometheus.check_rules([broken])
    assert len(problems) == 1 and "broken.yml" in problems[0]
