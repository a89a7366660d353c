"""python -m client — the workload client.

    python -m client token [--identity python-client] [--raw]
        fetch an access token (client_credentials, authenticated with the
        identity's certificate: RFC 8705) and print it decoded
    python -m client call [PATH] [--method GET] [--identity python-client]
        call the gateway with the identity's certificate and a token bound to it

There is no client secret: the certificate is the credential, for Keycloak and
for the gateway alike, and the token is bound to it (cnf.x5t#S256).

Defaults come from the identity's profile, which `make up` writes to
``<state>/workloads/<identity>.json`` (token endpoint, gateway URL, server CA,
certificate bundle; ``<state>`` is ``$ZT_STATE`` or the checkout's ``.state``):
the client reads that file and nothing else of the ops tool. Every value can be
overridden.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from client.api import GatewayClient
from client.credential import CredentialError, Identity
from client.token import TokenError, TokenSource, decode_unverified

STATE = Path(os.environ.get("ZT_STATE", Path(__file__).resolve().parent.parent / ".state"))


def _profile(args: argparse.Namespace) -> dict[str, str]:
    path = args.profile or STATE / "workloads" / f"{args.identity}.json"
    return json.loads(Path(path).read_text())


def _token_source(args: argparse.Namespace) -> TokenSource:
    """The identity's certificate (``--cert``/``--key`` or the profile's bundle),
    used for the token and for the gateway alike."""
    profile = _profile(args)
    server_ca = args.server_ca or profile["server_ca"]
    if args.cert:
        identity = Identity(args.cert, args.key, server_ca)
    else:
        identity = Identity(profile["bundle"], None, server_ca)
    return TokenSource(args.token_endpoint or profile["token_endpoint"], args.identity, identity)


def cmd_token(args: argparse.Namespace) -> int:
    token = _token_source(args).get()
    if args.raw:
        print(token)
    else:
        print(json.dumps(decode_unverified(token), indent=2, sort_keys=True))
    return 0


def cmd_call(args: argparse.Namespace) -> int:
    profile = _profile(args)
    client = GatewayClient(args.url or profile["gateway_url"], _token_source(args))
    r = client.request(args.method, args.path)
    print(f"HTTP {r.status_code}")
    try:
        print(json.dumps(r.json(), indent=2, sort_keys=True))
    except ValueError:
        print(r.text)
    return 0 if r.ok else 1


def _certificate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cert", help="client certificate (default: the identity's bundle.pem)")
    p.add_argument("--key", help="client key, if not inside --cert")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m client",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--identity", default="python-client", help="workload identity (client_id = cert CN)"
    )
    p.add_argument("--profile", help="the identity's profile (default: <state>/workloads/)")
    p.add_argument("--server-ca", help="CA bundle trusted for servers (default: the profile's)")
    p.add_argument("--token-endpoint", help="override the Keycloak token endpoint")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("token", help="print a decoded access token")
    t.add_argument("--raw", action="store_true", help="print the compact JWT instead")
    _certificate_options(t)
    t.set_defaults(fn=cmd_token)
    c = sub.add_parser("call", help="call the gateway with mTLS + bearer token")
    c.add_argument("path", nargs="?", default="/api/resource")
    c.add_argument("--method", default="GET")
    c.add_argument("--url", help="the gateway (default: the profile's)")
    _certificate_options(c)
    c.set_defaults(fn=cmd_call)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except (TokenError, CredentialError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head` ends quietly (CLI only)
    sys.exit(main())
