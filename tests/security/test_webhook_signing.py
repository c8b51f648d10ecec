"""Webhooks a partner can trust (issue 12, point 5; docs/security.md, docs/partner-api.md).

Every partner gets its own signing secret with its first API key (``python -m gateway.api_keys
create``); webhooks carry Standard Webhooks headers, signed over ``id.timestamp.body``. Black
box: the key CLI, a real gateway process, a real worker process, partner receivers that verify
exactly as the docs tell them to. A partner can neither verify nor forge another partner's
webhook; a rotation signs with old and new secret during the overlap, then only with the new.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from legacy_sim.pricing.samples import box_stl_binary
from tests.integration.legacy_adapters.pricing_support import ROOT, worker_processes
from tests.security.webhook_support import Delivery, quote_gateway, receiver_verify, receivers, submit_quote
from tests.support.partner_edge import PEPPER

TIMEOUT = 30.0  # s: bound for a webhook to arrive (it normally takes well under a second)


def _cli(tmp_path: Path, *args: str) -> str:
    """``python -m gateway.api_keys`` on the test's key store and webhook-secrets file: stdout."""
    done = subprocess.run([sys.executable, "-m", "gateway.api_keys", "--store", str(tmp_path / "keys.json"),
                           "--webhook-secrets", str(tmp_path / "hooks.json"), *args], cwd=ROOT,
                          env={**os.environ, "GATEWAY_API_KEY_PEPPER": PEPPER}, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _partner(tmp_path: Path, partner: str) -> tuple[str, str]:
    """(API key, webhook secret) as ``create`` hands them out."""
    out = json.loads(_cli(tmp_path, "create", "--partner", partner, "--tier", "gold",
                          "--scopes", "quotes:read,quotes:write", "--json"))
    return out["key"], out["webhook_secret"]


def _resign(secret: str, delivery: Delivery, *, msg_id: str, body: bytes) -> dict[str, str]:
    """What a partner holding only ``secret`` can produce: a signature of its own."""
    ts = delivery.headers["webhook-timestamp"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {**delivery.headers, "webhook-id": msg_id,
            "webhook-signature": "v1," + base64.b64encode(mac).decode()}


async def test_a_partner_cannot_verify_or_forge_another_partners_webhook(
        tmp_path: Path, redis_url: str) -> None:
    (acme_key, acme_secret), (globex_key, globex_secret) = (_partner(tmp_path, "acme"),
                                                             _partner(tmp_path, "globex"))
    assert acme_secret != globex_secret
    env = {"PRICING_WEBHOOK_SECRETS_FILE": str(tmp_path / "hooks.json")}
    async with receivers() as r, quote_gateway(tmp_path, redis_url, tmp_path / "keys.json") as gw:
        with worker_processes(redis_url, tmp_path, 1, env=env, extra=("--allow-private-callbacks",)):
            acme_job = await submit_quote(gw, acme_key, box_stl_binary(4, 5, 6), r.url("/acme/hook"))
            globex_job = await submit_quote(gw, globex_key, box_stl_binary(4, 5, 7), r.url("/globex/hook"))
            acme = await r.next_for("/acme/hook", TIMEOUT)
            globex = await r.next_for("/globex/hook", TIMEOUT)

    # each partner verifies its own webhook, bound to its job and to a fresh timestamp
    assert receiver_verify(acme_secret, acme.headers, acme.body)
    assert receiver_verify(globex_secret, globex.headers, globex.body)
    assert acme.headers["webhook-id"] == acme_job["id"] == json.loads(acme.body)["id"]
    assert globex.headers["webhook-id"] == globex_job["id"]
    assert abs(time.time() - int(acme.headers["webhook-timestamp"])) < 300
    # ... and cannot verify the other's
    assert not receiver_verify(globex_secret, acme.headers, acme.body)
    assert not receiver_verify(acme_secret, globex.headers, globex.body)
    # globex cannot forge a webhook acme accepts: not for acme's job with a changed price …
    forged_body = json.dumps({**json.loads(acme.body), "price": "0.01"}).encode()
    forged = _resign(globex_secret, acme, msg_id=acme.headers["webhook-id"], body=forged_body)
    assert not receiver_verify(acme_secret, forged, forged_body)
    # … nor by re-addressing its own genuine webhook to acme's job id
    readdressed = _resign(globex_secret, globex, msg_id=acme_job["id"], body=globex.body)
    assert not receiver_verify(acme_secret, readdressed, globex.body)
    # a captured webhook replayed more than 5 minutes later is rejected
    assert not receiver_verify(acme_secret, acme.headers, acme.body,
                               now=int(acme.headers["webhook-timestamp"]) + 301)
    # the body is the partner view: no dedup hints
    assert not {"cached", "shared_with"} & set(json.loads(acme.body))


async def test_a_rotated_webhook_secret_signs_alongside_the_old_one_only_during_the_overlap(
        tmp_path: Path, redis_url: str) -> None:
    key, first = _partner(tmp_path, "acme")
    env = {"PRICING_WEBHOOK_SECRETS_FILE": str(tmp_path / "hooks.json")}
    async with receivers() as r, quote_gateway(tmp_path, redis_url, tmp_path / "keys.json") as gw:
        with worker_processes(redis_url, tmp_path, 1, env=env, extra=("--allow-private-callbacks",)):
            second = _cli(tmp_path, "rotate-webhook-secret", "--partner", "acme", "--overlap", "3600").strip()
            await submit_quote(gw, key, box_stl_binary(5, 5, 6), r.url("/acme/hook"))
            during = await r.next_for("/acme/hook", TIMEOUT)

            third = _cli(tmp_path, "rotate-webhook-secret", "--partner", "acme", "--overlap", "0").strip()
            await submit_quote(gw, key, box_stl_binary(5, 5, 7), r.url("/acme/hook"))
            after = await r.next_for("/acme/hook", TIMEOUT)

    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert receiver_verify(first, during.headers, during.body)   # receivers not switched yet
    assert receiver_verify(second, during.headers, during.body)  # receivers already switched
    assert receiver_verify(third, after.headers, after.body)
    assert not receiver_verify(second, after.headers, after.body)  # overlap 0: retired at once
    assert not receiver_verify(first, after.headers, after.body)
