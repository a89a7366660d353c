"""OpenBao lifecycle: render config, start, init (first time), unseal, TLS switch.

Chicken-and-egg: OpenBao's listener needs a TLS cert before the server CA
exists, and the server CA lives in OpenBao. So the very first start serves a
short-lived self-signed *bootstrap* cert (generated here, trusted by pinning
it); once `terraform/pki` has created the server CA, `switch_to_server_ca()`
issues OpenBao's serving cert from it through the `server-certs` AppRole,
swaps the files atomically, and SIGHUPs OpenBao to reload them. From then on
every client trusts the server CA bundle only.

No permanent root token: ``init_and_unseal()`` keeps the unseal key in its own
file and the root token in a bootstrap file, ``terraform_token()`` hands
Terraform that root token for the one bootstrap apply, and after it (and a
clean plan as the operator AppRole, see ``terraform.export_pki_outputs``)
``revoke_bootstrap_root()`` revokes it. From then on Terraform and ``zt`` log
in as the operator AppRole (terraform/pki operator.tf). A state folder from
before (``init.json``: key + root token together) migrates the same way.

The HA profile (``config.HA_OPENBAO``) runs three raft nodes instead of one
(``scripts/services/baonodes.py``): ``start`` starts each, ``init_and_unseal``
initialises through the first node's own port and unseals every node, the listener
switch and reloads signal all three; everything else goes through the edge.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import signal
import string
from pathlib import Path

import hvac
import hvac.exceptions
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scripts import config, tools
from scripts.files import read_json, write_atomic, write_secret, write_secret_json
from scripts.pki import certs
from scripts.services import baonodes, procs
from scripts.steps import StepFailed, say, wait_until

BOOTSTRAP_CN = "OpenBao bootstrap (self-signed, replaced by the server CA)"


def cert_paths() -> tuple[Path, Path]:
    return config.server_cert_paths("vault")


def config_text(
    data_dir: Path, cert: Path, key: Path, node: baonodes.Node | None = None, *, joins: bool = True
) -> str:
    """vault/config.hcl.tmpl for a node storing in ``data_dir`` and serving ``cert``:
    the single node, or one raft node of the HA profile (its ports, ``node_id``, the
    ``retry_join`` blocks naming the others).

    The audit log path is always the stack's: OpenBao records the declared device with
    its path in its data and refuses to unseal when the config names another (so a
    restore's throwaway node, scripts/backup.py, names the final path too, and every
    raft node declares the same one: the declaration is replicated). ``joins=False``: no
    ``retry_join`` (a restore's throwaway first node, which must not join anything)."""
    tmpl = string.Template((config.REPO / "vault" / "config.hcl.tmpl").read_text())
    return tmpl.substitute(
        data_dir=data_dir,
        host=config.HOST,
        port=config.VAULT_PORT if node is None else node.port,
        cluster_port=config.VAULT_CLUSTER_PORT if node is None else node.cluster_port,
        node_id="zerotrust-1" if node is None else node.name,
        retry_join="" if node is None or not joins else baonodes.retry_join(node),
        cluster_settings="" if node is None else baonodes.CLUSTER_SETTINGS,
        tls_cert=cert,
        tls_key=key,
        audit_device=config.VAULT_AUDIT_DEVICE,
        audit_log=config.VAULT_AUDIT_LOG,
    )


# Settings OpenBao reads only at start (a SIGHUP does not apply them): a config.hcl
# that changes one of these lines needs a restart.
RESTART_ONLY = re.compile(
    r"^\s*(log_format|telemetry|prometheus_retention_time|disable_hostname"
    r"|unauthenticated_metrics_access)\b.*$",
    re.M,
)


def render_config(node: baonodes.Node | None = None) -> tuple[bool, bool]:
    """Write config.hcl (the single node's, or ``node``'s) from the template; (its text
    changed, a restart is needed)."""
    if node is None:
        path, text = config.VAULT_CONFIG, config_text(config.VAULT_DATA, *cert_paths())
    else:
        path, text = node.config_file, config_text(node.data_dir, *cert_paths(), node)
    old = path.read_text() if path.exists() else None
    if old == text:
        return False, False
    write_atomic(path, text, mode=0o600)
    return True, old is not None and RESTART_ONLY.findall(old) != RESTART_ONLY.findall(text)


def write_bootstrap_cert() -> None:
    """A 1-day self-signed cert for 127.0.0.1/localhost, trusted by pinning."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BOOTSTRAP_CN)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(config.HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file = cert_paths()
    write_secret(
        key_file,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    write_atomic(cert_file, pem)
    write_atomic(config.VAULT_TLS_CA, pem)


def listener_is_bootstrap() -> bool:
    cert_file, _ = cert_paths()
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return cert.subject == cert.issuer


def listener_lapsed() -> bool:
    """True when the listener's certificate on disk is past its notAfter."""
    cert_file, _ = cert_paths()
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return cert.not_valid_after_utc <= dt.datetime.now(dt.UTC)


def health() -> dict | None:
    """``sys/health`` over TLS verified against what we trust now; None if unreachable."""
    try:
        r = requests.get(
            f"{config.VAULT_ADDR}/v1/sys/health",
            params={"standbyok": "true", "sealedcode": "200", "uninitcode": "200"},
            verify=str(config.VAULT_TLS_CA),
            timeout=2,
        )
        return r.json()
    except (requests.RequestException, ValueError):
        return None


def client(token: str | None = None) -> hvac.Client:
    return hvac.Client(
        url=config.VAULT_ADDR,
        token=token,
        verify=str(config.VAULT_TLS_CA),
        **baonodes.hvac_options(),  # HA: a sealed or leaderless node is retried
    )


def argv(node: baonodes.Node | None = None) -> list[str]:
    conf = config.VAULT_CONFIG if node is None else node.config_file
    return [str(tools.BAO), "server", f"-config={conf}"]


def unseal_spec(node: baonodes.Node | None = None) -> dict[str, str]:
    """What the launcher needs to unseal OpenBao after a start (scripts/services/launch.py):
    a node is unsealed through its own port, never through the edge."""
    return {
        "addr": config.VAULT_ADDR if node is None else node.addr,
        "ca": str(config.VAULT_TLS_CA),
        "key_file": str(config.VAULT_UNSEAL),
    }


def start() -> None:
    """Start OpenBao if it is not running (the single node, or every raft node); wait
    until its API answers."""
    config.VAULT_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(config.VAULT_DIR, 0o700)
    if not config.HA_OPENBAO:
        config.VAULT_DATA.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_file, _ = cert_paths()
    lapsed = cert_file.exists() and listener_lapsed()
    if not cert_file.exists() or lapsed:
        # A lapsed listener certificate (the stack was down past its end) cannot be
        # renewed through OpenBao, which nobody can then verify: serve a bootstrap
        # certificate again, and `switch_to_server_ca` issues a new one.
        say(
            "    listener certificate expired: self-signed bootstrap cert again"
            if lapsed
            else "    first start: self-signed bootstrap cert for OpenBao's listener"
        )
        write_bootstrap_cert()
    if config.HA_OPENBAO:
        for node in baonodes.NODES:
            start_node(node, lapsed)
        return
    changed, restart = render_config()
    if procs.running(config.VAULT) and restart:
        say("    config.hcl changed a setting read only at start (logs, telemetry): restarting")
        procs.stop(config.VAULT)
    if procs.running(config.VAULT):
        say(f"    already running (pid {procs.read_pid(config.VAULT.pid_file)})")
        if changed or lapsed:
            # SIGHUP re-reads what OpenBao can reload live, the declared audit
            # devices included: a state folder from before the audit device
            # gets it without a restart.
            say("    config.hcl changed: SIGHUP to reload it")
            reload_listener()
    else:
        # The launcher unseals it after every start (a restart by supervisord included).
        procs.start(config.VAULT, argv(), launch="child", unseal=unseal_spec())
    wait_until(
        "OpenBao API",
        lambda: procs.alive_or_fail(config.VAULT) and health() is not None,
        60,
        str(config.VAULT.log_file),
    )


def start_node(node: baonodes.Node, lapsed: bool = False) -> None:
    """One raft node, as ``start`` does the single one (restart only for a setting read
    at start, SIGHUP for the rest); wait until its own port answers."""
    node.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(config.VAULT_NODES_DIR, 0o700)
    changed, restart = render_config(node)
    if procs.running(node.svc) and restart:
        say(f"    {node.name}: config.hcl changed a setting read only at start: restarting")
        procs.stop(node.svc)
    if procs.running(node.svc):
        say(f"    {node.name}: already running (pid {procs.read_pid(node.svc.pid_file)})")
        if changed or lapsed:
            say(f"    {node.name}: config.hcl changed: SIGHUP to reload it")
            os.kill(procs.running(node.svc) or 0, signal.SIGHUP)
    else:
        procs.start(node.svc, argv(node), launch="child", unseal=unseal_spec(node))
        say(f"    {node.name}: started ({node.addr}, cluster {node.cluster_addr})")
    wait_until(
        f"OpenBao {node.name} API",
        lambda: procs.alive_or_fail(node.svc) and baonodes.health(node) is not None,
        60,
        str(node.svc.log_file),
    )


def init_and_unseal() -> None:
    """Initialise once, then unseal from the state folder.

    Initialisation writes the unseal key (``unseal.json``) and the root token
    (``bootstrap-root-token.json``) to two files, both 0600; the root token is
    revoked once terraform/pki has created the operator AppRole. A state folder
    from before keeps both in ``init.json``: it is split the same way here."""
    if config.HA_OPENBAO:
        init_cluster()
        return
    c = client()
    if not c.sys.is_initialized():
        say("    first start: initialising OpenBao (1 key share; see README)")
        result = c.sys.initialize(secret_shares=1, secret_threshold=1)
        write_secret_json(config.VAULT_UNSEAL, {"unseal_keys_b64": result["keys_base64"]})
        write_secret_json(config.VAULT_BOOTSTRAP_ROOT, {"root_token": result["root_token"]})
    if config.VAULT_INIT.exists():
        _split_legacy_init()
    if c.sys.is_sealed():
        c.sys.submit_unseal_keys(unseal_keys())
    wait_until(
        "OpenBao unsealed and active",
        lambda: (h := health()) is not None and not h.get("sealed") and not h.get("standby"),
        30,
        str(config.VAULT.log_file),
    )


def init_cluster() -> None:
    """The HA profile: initialise through the first node's own port (once), unseal it,
    then unseal each other node (a node that has not joined yet joins the leader through
    its ``retry_join`` blocks and needs the key to finish); wait until all three are
    unsealed, one is active and, while the root token from init is at hand, all three
    are raft voters."""
    first = baonodes.FIRST
    c = hvac.Client(url=first.addr, verify=str(config.VAULT_TLS_CA))
    if not c.sys.is_initialized():
        say(f"    first start: initialising OpenBao through {first.name} (1 key share)")
        result = c.sys.initialize(secret_shares=1, secret_threshold=1)
        write_secret_json(config.VAULT_UNSEAL, {"unseal_keys_b64": result["keys_base64"]})
        write_secret_json(config.VAULT_BOOTSTRAP_ROOT, {"root_token": result["root_token"]})
    keys = unseal_keys()
    for node in baonodes.NODES:
        wait_until(
            f"OpenBao {node.name} unsealed",
            lambda n=node: _unsealed(n, keys),
            120,
            str(node.svc.log_file),
            interval=1.0,
        )
    wait_until(
        "OpenBao: one node active",
        lambda: "active" in baonodes.states().values(),
        120,  # all three starting together: a raft election, ~20 s on 2 shared cores
        str(first.svc.log_file),
    )
    # With the root token from init at hand (first start), the raft configuration says
    # who votes; afterwards the active node's autopilot metrics say it without a token.
    token = _bootstrap_root()
    wait_until(
        "OpenBao: every node a healthy raft voter",
        (lambda: _all_voters(token)) if token is not None else baonodes.all_voters_healthy,
        120,
        str(first.svc.log_file),
        interval=1.0,
    )
    say(f"    nodes: {', '.join(f'{k} {v}' for k, v in baonodes.states().items())}")


def _unsealed(node: baonodes.Node, keys: list[str]) -> bool:
    """True once ``node`` is unsealed; else submit the key (a joining node takes it once
    it has the leader's challenge) and poll again."""
    status = baonodes.seal_status(node)
    if status is None:
        return False
    if status.get("initialized") and not status.get("sealed"):
        return True
    after = baonodes.unseal(node, keys)
    return bool(after and after.get("initialized") and not after.get("sealed"))


def _all_voters(token: str) -> bool:
    try:
        servers = baonodes.voters(token)
    except (requests.RequestException, KeyError, ValueError):
        return False
    return all(servers.get(n.name, {}).get("voter") for n in baonodes.NODES)


def _split_legacy_init() -> None:
    """init.json (unseal key + root token) -> unseal.json + the bootstrap file."""
    say(f"    {config.VAULT_INIT.name}: unseal key and root token to separate files")
    legacy = read_json(config.VAULT_INIT)
    write_secret_json(config.VAULT_UNSEAL, {"unseal_keys_b64": legacy["unseal_keys_b64"]})
    write_secret_json(config.VAULT_BOOTSTRAP_ROOT, {"root_token": legacy["root_token"]})
    config.VAULT_INIT.unlink()


def unseal_keys() -> list[str]:
    try:
        return read_json(config.VAULT_UNSEAL)["unseal_keys_b64"]
    except FileNotFoundError as e:
        raise StepFailed(
            f"OpenBao is sealed and {config.VAULT_UNSEAL} is missing; restore it or "
            "`make clean` to start over"
        ) from e


def _bootstrap_root() -> str | None:
    """The root token from init while OpenBao still accepts it, else None.

    Revoked but still on file (the bring-up stopped between the revocation and
    the move): finish the move now."""
    if not config.VAULT_BOOTSTRAP_ROOT.exists():
        return None
    token = read_json(config.VAULT_BOOTSTRAP_ROOT)["root_token"]
    try:
        client(token).auth.token.lookup_self()
    except hvac.exceptions.Forbidden:
        _keep_as_revoked(token)
        return None
    return token


def bootstrap_pending() -> bool:
    """True until the root token from init has been revoked."""
    return _bootstrap_root() is not None


def operator_token() -> str:
    """A token of the operator AppRole (short-lived, policy terraform-pki only)."""
    return certs.approle_client(config.VAULT_OPERATOR_APPROLE).token


def terraform_token() -> str:
    """The token terraform/pki applies with: the root token for the one bootstrap
    apply (no operator AppRole exists yet), the operator AppRole's after it."""
    return _bootstrap_root() or operator_token()


def revoke_bootstrap_root() -> None:
    """Revoke the root token from init (revoke-self), check OpenBao refuses it,
    and keep it only in the clearly named revoked file (for the tests)."""
    token = _bootstrap_root()
    if token is None:
        return
    root = client(token)
    root.auth.token.revoke_self()
    try:
        root.auth.token.lookup_self()
    except hvac.exceptions.Forbidden:
        _keep_as_revoked(token)
        return
    raise StepFailed("OpenBao still accepts the root token after revoke-self; it stays on file")


def _keep_as_revoked(token: str) -> None:
    revoked_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    write_secret_json(config.VAULT_REVOKED_ROOT, {"root_token": token, "revoked_at": revoked_at})
    config.VAULT_BOOTSTRAP_ROOT.unlink()


def reload_listener() -> None:
    """SIGHUP makes OpenBao re-read its listener cert/key without dropping state (every
    raft node in the HA profile: they share the files)."""
    for svc in baonodes.services():
        pid = procs.running(svc)
        if pid is None:
            raise StepFailed(f"OpenBao ({svc.name}) is not running; `make up` starts it")
        os.kill(pid, signal.SIGHUP)


def serving_cert_matches_ca() -> bool:
    """True when a TLS handshake to OpenBao (each node) verifies against the server CA."""
    try:
        for addr in baonodes.addresses():
            requests.get(f"{addr}/v1/sys/health", verify=str(config.SERVER_CA_BUNDLE), timeout=2)
    except requests.RequestException:
        return False
    return True


def switch_to_server_ca() -> None:
    """Replace the bootstrap listener cert with one from the server CA (once)."""
    if not listener_is_bootstrap():
        say("    OpenBao already serves a server-CA certificate")
        return
    certs.issue_server_cert("vault")
    write_atomic(config.VAULT_TLS_CA, config.SERVER_CA_BUNDLE.read_bytes())
    reload_listener()
    wait_until(
        "OpenBao serving the server-CA certificate",
        serving_cert_matches_ca,
        20,
        str(baonodes.services()[0].log_file),
    )


def seal_status_line() -> str:
    if config.HA_OPENBAO:
        nodes = baonodes.states()
        ok = all(s in ("active", "standby") for s in nodes.values())
        active = [n for n, s in nodes.items() if s == "active"]
        head = f"unsealed, active {active[0]}" if ok and len(active) == 1 else "DEGRADED"
        return f"{head}: " + ", ".join(f"{n} {s}" for n, s in nodes.items())
    h = health()
    if h is None:
        return "unreachable"
    if not h.get("initialized"):
        return "not initialised"
    if h.get("sealed"):
        return "sealed"
    return f"unsealed, active, version {h.get('version')}"


def audit_status_line() -> str:
    """The declared audit device as OpenBao reports it (operator token: sys/audit)."""
    if (h := health()) is None or h.get("sealed") or not h.get("initialized"):
        return "unknown (OpenBao unreachable or sealed)"
    try:
        devices = client(terraform_token()).sys.list_enabled_audit_devices()["data"]
    except (StepFailed, hvac.exceptions.VaultError, requests.RequestException) as e:
        return f"unknown ({e})"
    device = devices.get(f"{config.VAULT_AUDIT_DEVICE}/")
    if device is None:
        return f"NOT enabled (no {config.VAULT_AUDIT_DEVICE}/ device; `make up` declares it)"
    options = device.get("options", {})
    hashed = "secrets HMAC'd" if options.get("log_raw", "false") == "false" else "RAW secrets"
    path = options.get("file_path")
    return f"{device['type']} device {config.VAULT_AUDIT_DEVICE}/ enabled, {hashed}: {path}"
