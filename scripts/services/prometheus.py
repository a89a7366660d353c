"""Prometheus (Debian's 2.42) scraping the stack and evaluating ``prometheus/rules``.

Like nginx's config, Prometheus's is a template (``prometheus/prometheus.yml.tmpl``)
rendered into the state folder, and the alert rules are copied beside it, so what runs
never changes under it when someone edits the repo. Every install is checked first:
the candidate config and rules go to a scratch folder, ``promtool check config`` (which
checks the rule files it names) and ``promtool check rules`` must accept them, and only
then are they renamed into place. A refused candidate raises ``StepFailed`` naming
promtool's complaint; the running Prometheus keeps its current rules.

``start`` is idempotent: not running -> start (supervised, loopback only, data in
``config.PROMETHEUS_DIR/data``); running with the same config and rules -> nothing;
changed -> SIGHUP, then wait until Prometheus reports that reload successful.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import string
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from scripts import config
from scripts.files import write_atomic
from scripts.services import accounts, baonodes, procs
from scripts.steps import StepFailed, wait_until

TEMPLATE = config.PROMETHEUS_SOURCE / "prometheus.yml.tmpl"
RULES_SOURCE = config.PROMETHEUS_SOURCE / "rules"
FINGERPRINT = config.RUN / "prometheus.fingerprint"
LAUNCH_FINGERPRINT = config.RUN / "prometheus.argv.fingerprint"  # what it was started with
READY_URL = f"{config.PROMETHEUS_URL}/-/ready"


def config_text(rules_dir: Path) -> str:
    """The rendered prometheus.yml, loading every ``*.yml`` of ``rules_dir``."""
    values = {
        "interval": config.PROMETHEUS_INTERVAL_SECONDS,
        "timeout": max(1, config.PROMETHEUS_INTERVAL_SECONDS - 1),
        "rules_dir": rules_dir,
        "host": config.HOST,
        "prometheus_port": config.PROMETHEUS_PORT,
        "health_port": config.NGINX_HEALTH_PORT,
        "vault_targets": ", ".join(f'"{a.split("//")[1]}"' for a in baonodes.addresses()),
        "keycloak_targets": ", ".join(f'"{config.HOST}:{port}"' for port in keycloak_ports()),
        "server_ca": config.SERVER_CA_BUNDLE,
        **{f"{job}_path": path for job, path in config.METRICS_PATHS.items()},
    }
    try:
        return string.Template(TEMPLATE.read_text()).substitute(values)
    except KeyError as e:
        raise StepFailed(f"{TEMPLATE} uses a placeholder nobody fills: {e}") from e


def keycloak_ports() -> tuple[int, ...]:
    """Keycloak's management ports to scrape: the single one, or each HA node's."""
    if config.HA_KEYCLOAK:
        return tuple(mgmt for _, mgmt, _ in config.KEYCLOAK_NODE_PORTS)
    return (config.KEYCLOAK_MGMT_PORT,)


def rule_files(folder: Path | None = None) -> list[Path]:
    """The rule files of ``folder`` (default: the repo's ``prometheus/rules``)."""
    return sorted((folder or RULES_SOURCE).glob("*.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(config.PROMTOOL_BIN), *args], capture_output=True, text=True, timeout=120
    )


def check_rules(files: list[Path]) -> list[str]:
    """``promtool check rules``: one problem line per refusal, [] when all pass."""
    if not files:
        return [f"no rule files in {RULES_SOURCE}"]
    out = promtool("check", "rules", *map(str, files))
    if out.returncode == 0:
        return []
    return [f"promtool check rules: {(out.stdout + out.stderr).strip()}"]


def check_candidate(folder: Path) -> list[str]:
    """Render config + rules into ``folder`` and have promtool check both."""
    rules = folder / "rules"
    rules.mkdir()
    for src in rule_files():
        shutil.copyfile(src, rules / src.name)
    conf = folder / "prometheus.yml"
    conf.write_text(config_text(rules))
    problems = check_rules(rule_files(rules))
    out = promtool("check", "config", str(conf))
    if out.returncode != 0:
        problems.append(f"promtool check config: {(out.stdout + out.stderr).strip()}")
    return problems


def validate() -> list[str]:
    """What ``zt validate`` runs: the repo's config and rules, in a scratch folder."""
    if not config.PROMTOOL_BIN.exists():
        return [f"{config.PROMTOOL_BIN} is missing (run `make up`: Debian's prometheus)"]
    with tempfile.TemporaryDirectory(prefix="zt-prometheus-") as scratch:
        return check_candidate(Path(scratch))


def install() -> None:
    """Check the repo's config and rules, then install them in the state folder.

    Rules go first, one atomic rename each, then the config: a Prometheus restarted by
    supervisord in between loads a complete, checked set either way."""
    # root's, in Prometheus's group: it reads its config and rules, cannot change them.
    accounts.folder_for(config.PROMETHEUS_DIR, config.PROMETHEUS_USER, 0o750, group_only=True)
    with tempfile.TemporaryDirectory(dir=config.PROMETHEUS_DIR, prefix=".candidate-") as tmp:
        problems = check_candidate(Path(tmp))
    if problems:
        raise StepFailed(
            "Prometheus config or rules refused; the running Prometheus keeps its own:\n"
            + "\n".join(problems)
        )
    config.PROMETHEUS_RULES.mkdir(exist_ok=True)
    wanted = {src.name for src in rule_files()}
    for src in rule_files():
        write_atomic(config.PROMETHEUS_RULES / src.name, src.read_bytes())
    for old in rule_files(config.PROMETHEUS_RULES):
        if old.name not in wanted:
            old.unlink()
    text = config_text(config.PROMETHEUS_RULES)
    if not config.PROMETHEUS_CONF.exists() or config.PROMETHEUS_CONF.read_text() != text:
        write_atomic(config.PROMETHEUS_CONF, text)


def fingerprint() -> str:
    """A digest of what the running Prometheus loaded: the config and every rule file."""
    digest = hashlib.sha256()
    for path in [config.PROMETHEUS_CONF, *rule_files(config.PROMETHEUS_RULES)]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def argv() -> list[str]:
    """As ``config.PROMETHEUS_USER`` when we are root (``accounts.run_as``)."""
    return [
        *accounts.run_as(config.PROMETHEUS_USER),
        str(config.PROMETHEUS_BIN),
        f"--config.file={config.PROMETHEUS_CONF}",
        f"--storage.tsdb.path={config.PROMETHEUS_DATA}",
        f"--storage.tsdb.retention.time={config.PROMETHEUS_RETENTION}",
        f"--web.listen-address={config.HOST}:{config.PROMETHEUS_PORT}",
        # No --web.enable-lifecycle: /-/quit and /-/reload stay off; we reload with SIGHUP.
        "--log.format=json",
    ]


def ready() -> bool:
    try:
        return requests.get(READY_URL, timeout=2).status_code == 200
    except requests.RequestException:
        return False


_RELOAD_METRICS = re.compile(
    r"^prometheus_config_last_reload_(successful|success_timestamp_seconds) (\S+)$", re.M
)


def reload_state() -> tuple[bool, float] | None:
    """(last reload successful, its time) from Prometheus's own metrics, None if
    unreachable."""
    try:
        text = requests.get(f"{config.PROMETHEUS_URL}/metrics", timeout=3).text
    except requests.RequestException:
        return None
    found = dict(_RELOAD_METRICS.findall(text))
    if len(found) != 2:
        return None
    return found["successful"] == "1", float(found["success_timestamp_seconds"])


def reload() -> None:
    """SIGHUP; returns once Prometheus says the new config loaded (fails loudly if not)."""
    pid = procs.running(config.PROMETHEUS)
    if pid is None:
        raise StepFailed("Prometheus is not running; `make up` starts it")
    before = reload_state()
    since = before[1] if before else time.time()
    os.kill(pid, signal.SIGHUP)

    def reloaded() -> bool:
        state = reload_state()
        if state is not None and not state[0]:
            raise StepFailed(f"Prometheus refused its new config; see {config.PROMETHEUS.log_file}")
        return state is not None and state[1] > since

    wait_until("Prometheus reload", reloaded, 30, str(config.PROMETHEUS.log_file), interval=0.2)


def start() -> str:
    """Start Prometheus, or reload it when its config or rules changed; returns what it did."""
    install()
    wanted = fingerprint()
    launched = hashlib.sha256("\0".join(argv()).encode()).hexdigest()
    did = "started"
    if procs.running(config.PROMETHEUS):
        before = LAUNCH_FINGERPRINT.read_text().strip() if LAUNCH_FINGERPRINT.exists() else ""
        recorded = FINGERPRINT.read_text().strip() if FINGERPRINT.exists() else ""
        if before != launched:  # another command line (e.g. its user): SIGHUP cannot apply it
            procs.stop(config.PROMETHEUS)
            did = "restarted (its command line changed)"
        elif recorded == wanted:
            did = "unchanged"
        else:
            reload()
            did = "reloaded (config or rules changed)"
    if not procs.running(config.PROMETHEUS):
        # its own, recursively: a data folder an older bring-up ran it as root on
        accounts.folder_for(config.PROMETHEUS_DATA, config.PROMETHEUS_USER, 0o700)
        if accounts.privileged():
            for path in config.PROMETHEUS_DATA.rglob("*"):
                shutil.chown(path, user=config.PROMETHEUS_USER, group=config.PROMETHEUS_USER)
        procs.start(config.PROMETHEUS, argv(), cwd=config.PROMETHEUS_DIR)
        write_atomic(LAUNCH_FINGERPRINT, launched + "\n")
    write_atomic(FINGERPRINT, wanted + "\n")
    wait_until(
        f"Prometheus on {READY_URL}",
        lambda: procs.alive_or_fail(config.PROMETHEUS) and ready(),
        60,
        str(config.PROMETHEUS.log_file),
    )
    return did
