"""systemd units for a production host: the same services, supervised by systemd.

``zt systemd-units --out DIR`` writes one ``zt-<service>.service`` per stack service and
a ``zt.target`` that wants them all, for this checkout and state folder. Each unit runs
the same launcher (``scripts/services/launch.py``) with the same argv and environment
the bring-up gives supervisord, from a spec file in ``<state>/systemd/`` (0600: it
holds the service's environment, secrets included, so neither the unit nor ``ps``
shows them). systemd restarts a unit that exits (``Restart=always``), and its default
``KillMode=control-group`` already takes a dead master's workers with it.

Differences from ``make up``, by design: the verifier and the API bind their stable
socket directly and ``systemctl reload`` re-forks their workers (gunicorn's HUP), where
``make up`` replaces them blue/green. Install: copy the files to ``/etc/systemd/system``,
``systemctl daemon-reload``, ``systemctl enable --now zt.target`` (after one ``make up``
created the state folder). ``systemd-analyze verify`` accepts every file
(tests/integration/test_systemd_units.py).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from scripts import config
from scripts.files import write_atomic, write_secret
from scripts.pki import schedule, watcher
from scripts.services import apps, auditsink, keycloak, openbao, prometheus

SPECS = config.STATE / "systemd"
LAUNCH = [sys.executable, "-m", "scripts.services.launch"]
RESTART_SECONDS = 1


@dataclass(frozen=True)
class Unit:
    svc: config.Service
    description: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    mode: str = "exec"
    unseal: dict[str, str] | None = None
    after: tuple[str, ...] = ()
    reload_hup: bool = False
    stop_seconds: int = 30
    stale_sockets: tuple[Path, ...] = ()

    @property
    def name(self) -> str:
        return f"zt-{self.svc.name}.service"


def units() -> list[Unit]:
    """Every stack service as systemd should run it, in start order."""
    base = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")}
    gunicorn = [
        Unit(
            app.svc,
            f"zero-trust gateway: {app.svc.name} (gunicorn on {app.stable_socket})",
            app.argv(app.stable_socket),
            {**base, **app.env(), **apps.metrics_env(app.stable_socket)},
            config.REPO,
            after=("zt-keycloak.service",),
            reload_hup=True,
        )
        for app in apps.APPS
    ]
    return [
        Unit(
            config.VAULT,
            "zero-trust gateway: OpenBao (PKI), unsealed after every start",
            openbao.argv(),
            base,
            config.REPO,
            mode="child",
            unseal=openbao.unseal_spec(),
        ),
        Unit(
            config.KEYCLOAK,
            "zero-trust gateway: Keycloak (tokens)",
            keycloak.argv(),
            {**base, **keycloak.service_env()},
            config.KEYCLOAK_DIR,
            mode="child",
            after=("zt-vault.service",),
            stop_seconds=60,
        ),
        *gunicorn,
        Unit(
            config.NGINX,
            "zero-trust gateway: nginx (mTLS + auth_request)",
            ["nginx", "-c", str(config.NGINX_CONF)],
            base,
            config.REPO,
            mode="child",
            after=tuple(f"zt-{app.svc.name}.service" for app in apps.APPS),
            reload_hup=True,
            stale_sockets=(config.LOCKOUT_HOP_SOCKET,),
        ),
        Unit(
            config.AUDIT_SINK,
            "zero-trust gateway: audit sink (a copy of every audit line, another user)",
            auditsink.argv(),
            base,
            config.REPO,
        ),
        Unit(
            config.CRL_WATCHER,
            "zero-trust gateway: CRL watcher (revocations reach nginx within seconds)",
            watcher.argv(),
            base,
            config.REPO,
            after=("zt-vault.service", "zt-nginx.service"),
        ),
        Unit(
            config.RENEWER,
            "zero-trust gateway: renewer (certificates at 2/3 of life, CRLs at 1/3)",
            schedule.command(),
            base,
            config.REPO,
            after=("zt-vault.service", "zt-nginx.service"),
        ),
        Unit(
            config.PROMETHEUS,
            "zero-trust gateway: Prometheus (metrics and alert rules, loopback)",
            prometheus.argv(),
            base,
            config.PROMETHEUS_DIR,
            after=("zt-nginx.service",),
            reload_hup=True,
        ),
    ]


def _spec(unit: Unit) -> dict:
    return {
        "name": unit.svc.name,
        "argv": unit.argv,
        "env": unit.env,
        "cwd": str(unit.cwd),
        "pid_file": str(unit.svc.pid_file),
        "mode": unit.mode,
        "unseal": unit.unseal,
        "stale_sockets": [str(p) for p in unit.stale_sockets],
    }


def unit_text(unit: Unit, spec_file: Path) -> str:
    after = " ".join(unit.after)
    ordering = f"After={after}\nWants={after}\n" if after else ""
    reload = "ExecReload=/bin/kill -HUP $MAINPID\n" if unit.reload_hup else ""
    command = " ".join([*LAUNCH, str(spec_file)])
    return f"""# Written by `zt systemd-units` (scripts/services/systemd.py) for {config.REPO}.
[Unit]
Description={unit.description}
PartOf=zt.target
{ordering}
[Service]
Type=simple
WorkingDirectory={config.REPO}
ExecStart={command}
{reload}Restart=always
RestartSec={RESTART_SECONDS}
TimeoutStopSec={unit.stop_seconds}
KillMode=control-group
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=full
StandardOutput=append:{unit.svc.log_file}
StandardError=inherit

[Install]
WantedBy=zt.target
"""


TARGET = """# Written by `zt systemd-units` (scripts/services/systemd.py).
[Unit]
Description=zero-trust gateway: every service
Wants={wants}

[Install]
WantedBy=multi-user.target
"""


def write_units(out: Path) -> list[Path]:
    """Write every unit and ``zt.target`` into ``out`` and the specs into the state
    folder; returns the unit files."""
    out.mkdir(parents=True, exist_ok=True)
    SPECS.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    every = units()
    for unit in every:
        spec_file = SPECS / f"{unit.svc.name}.json"
        write_secret(spec_file, json.dumps(_spec(unit), indent=1) + "\n")
        path = out / unit.name
        write_atomic(path, unit_text(unit, spec_file))
        written.append(path)
    target = out / "zt.target"
    write_atomic(target, TARGET.format(wants=" ".join(u.name for u in every)))
    written.append(target)
    return written
