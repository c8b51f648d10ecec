"""``python -m gateway.api_keys create|list|revoke|rotate-webhook-secret``: partner keys and webhook secrets.

    python -m gateway.api_keys create --partner acme --tier gold --scopes orders:read,orders:write
    python -m gateway.api_keys list
    python -m gateway.api_keys revoke 3f9a1c2b7d4e
    python -m gateway.api_keys rotate-webhook-secret --partner acme --overlap 86400

The store defaults to ``$GATEWAY_API_KEY_STORE`` or ``.run/api-keys.json`` (what ``make run``
uses); the pepper comes from ``$GATEWAY_API_KEY_PEPPER`` (else the dev pepper file beside the
store) and must be the gateway's. ``create`` prints the plain key once; nothing else ever does.
A partner's first key also creates its webhook signing secret (``--webhook-secrets``, default
``$PRICING_WEBHOOK_SECRETS_FILE`` or ``webhook-secrets.json`` beside the store: the file the pricing
workers read), printed once on stderr (``--json``: one JSON object on stdout). Rotation prints
the new secret; the old one keeps signing for ``--overlap`` seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from contracts.webhook_secrets import STORE_ENV, WebhookSecretStore
from gateway.auth.api_keys import ApiKeyStore, resolve_pepper
from gateway.auth.partners import SCOPES

DEFAULT_STORE = ".run/api-keys.json"
_PARTNER = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
RESERVED_OWNER = "internal"  # QuoteRequest.owner of jobs submitted on the internal listener


def _scopes(text: str) -> tuple[str, ...]:
    scopes = tuple(s.strip() for s in text.split(",") if s.strip())
    if bad := sorted(set(scopes) - SCOPES):
        raise argparse.ArgumentTypeError(f"unknown scope {bad[0]!r} (have: {', '.join(sorted(SCOPES))})")
    return scopes


def _partner(text: str) -> str:
    if not _PARTNER.match(text):
        raise argparse.ArgumentTypeError("partner ids are lowercase: letters, digits, . _ -")
    return text


def _new_partner(text: str) -> str:
    partner = _partner(text)
    if partner == RESERVED_OWNER:  # the owner of operators' quote jobs: a partner named so would see them
        raise argparse.ArgumentTypeError(f"{RESERVED_OWNER!r} is reserved for operators' jobs")
    return partner


def _when(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway.api_keys", description=__doc__.split("\n")[0])
    parser.add_argument("--store", default=os.environ.get("GATEWAY_API_KEY_STORE", DEFAULT_STORE),
                        help="key store file (default: $GATEWAY_API_KEY_STORE or %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--partner", required=True, type=_new_partner)
    create.add_argument("--tier", required=True, type=_partner, help="rate-limit tier, e.g. gold")
    create.add_argument("--scopes", required=True, type=_scopes, help="comma separated, e.g. orders:read")
    create.add_argument("--json", action="store_true", help="print {key_id, key, webhook_secret} on stdout")
    sub.add_parser("list", help="list keys (ids, partners, scopes; never secrets)")
    revoke = sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    rotate = sub.add_parser("rotate-webhook-secret",
                            help="new webhook secret; the old one keeps signing during --overlap")
    rotate.add_argument("--partner", required=True, type=_partner, help="partner id (or internal)")
    rotate.add_argument("--overlap", type=float, default=86400.0,
                        help="seconds the old secret keeps signing too (default: %(default)s; 0 = stop now)")
    for p in (create, revoke, rotate, sub.choices["list"]):  # --store also accepted after the command
        p.add_argument("--store", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--webhook-secrets", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--webhook-secrets", default=os.environ.get(STORE_ENV),
                        help=f"webhook secrets file the workers read (default: ${STORE_ENV} or "
                             "webhook-secrets.json beside the store)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    path = Path(args.store)
    hooks = WebhookSecretStore(args.webhook_secrets or path.with_name("webhook-secrets.json"))
    if args.command == "rotate-webhook-secret":
        fresh = hooks.rotate(args.partner, overlap=args.overlap)
        print(f"webhook secret {fresh.id} for {args.partner} (shown once; the previous one signs for "
              f"{args.overlap:g} s more):", file=sys.stderr)
        print(fresh.secret)
        return 0
    store = ApiKeyStore(path, resolve_pepper("", path))
    if args.command == "create":
        plain, record = store.create(partner=args.partner, tier=args.tier, scopes=args.scopes)
        secret = hooks.ensure(args.partner)
        if args.json:
            print(json.dumps({"key_id": record.key_id, "key": plain,
                              "webhook_secret": secret.secret if secret else None}))
            return 0
        print(f"key_id: {record.key_id}", file=sys.stderr)
        if secret is not None:
            print(f"webhook signing secret of {args.partner} (shown once, give it to the partner with "
                  f"the key): {secret.secret}", file=sys.stderr)
        print("the key below is shown once; store it in the partner's secret manager", file=sys.stderr)
        print(plain)
        return 0
    if args.command == "list":
        print(f"{'KEY ID':<14}{'PARTNER':<18}{'TIER':<10}{'CREATED':<22}{'REVOKED':<22}SCOPES")
        for r in sorted(store.records.values(), key=lambda r: (r.partner, r.created)):
            print(f"{r.key_id:<14}{r.partner:<18}{r.tier:<10}{_when(r.created):<22}{_when(r.revoked):<22}"
                  f"{','.join(r.scopes)}")
        return 0
    try:
        record = store.revoke(args.key_id)
    except KeyError:
        print(f"no key with id {args.key_id!r} in {path}", file=sys.stderr)
        return 1
    print(f"revoked {record.key_id} ({record.partner}); gateways stop accepting it within a second")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
