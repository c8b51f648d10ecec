"""One partner's hanging webhook endpoint does not delay other partners' webhooks
(issue 12, point 5; docs/pricing.md "Webhooks").

Black box: a real gateway process takes the quotes, a real worker process prices them and
delivers the webhooks. acme's endpoint accepts the connection and never answers; four acme
webhooks are due before globex's. globex's webhook must still arrive promptly (bounded wait,
far below the four 10 s delivery timeouts a single delivery line would spend on acme first),
and acme never holds more than its per-partner share of delivery slots.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

from legacy_sim.pricing.samples import box_stl_binary
from tests.integration.legacy_adapters.pricing_support import worker_processes
from tests.security.webhook_support import quote_gateway, receiver_verify, receivers, submit_quote
from tests.support.partner_edge import make_keys

PER_PARTNER = 2  # the worker's default --webhook-per-partner
BOUND = 15.0  # s for globex's webhook; acme's four hanging deliveries alone would take 40 s in one line


def _secrets_file(path: Path, *partners: str) -> dict[str, str]:
    """The webhook secrets file in its documented format (docs/partner-api.md); partner → secret."""
    made = {p: "whsec_" + base64.b64encode(os.urandom(32)).decode() for p in partners}
    owners = {p: [{"id": f"{p}-1", "secret": s, "created": time.time(), "expires": None}]
              for p, s in made.items()}
    path.write_text(json.dumps({"version": 1, "owners": owners}))
    path.chmod(0o600)
    return made


async def test_a_hanging_partner_endpoint_does_not_delay_another_partners_webhook(
        tmp_path: Path, redis_url: str) -> None:
    store, (acme, globex) = make_keys(tmp_path, ("acme", "gold", ("quotes:read", "quotes:write")),
                                      ("globex", "gold", ("quotes:read", "quotes:write")))
    secrets = _secrets_file(tmp_path / "hooks.json", "acme", "globex")
    env = {"PRICING_WEBHOOK_SECRETS_FILE": str(tmp_path / "hooks.json"),
           "PRICING_WEBHOOK_SECRET": "isolation-test-global-secret"}  # what a pre-issue worker needs
    async with receivers(hang=("/acme/hook",)) as r, quote_gateway(tmp_path, redis_url, store) as gw:
        with worker_processes(redis_url, tmp_path, 1, env=env, extra=("--allow-private-callbacks",)):
            for i in range(4):
                await submit_quote(gw, acme, box_stl_binary(3, 4, 5 + i), r.url("/acme/hook"))
            # acme's deliveries hold every slot it may have before globex's quote exists (the queue
            # is fair across partners, so otherwise globex's could be priced and delivered first)
            await r.hanging_at_least("/acme/hook", PER_PARTNER, 60)
            job = await submit_quote(gw, globex, box_stl_binary(3, 4, 20), r.url("/globex/hook"))
            delivered = await r.next_for("/globex/hook", BOUND)
            acme_at_once = r.most_hanging.get("/acme/hook", 0)
            r.release.set()  # acme's endpoint answers 503 now: the worker stops without waiting
            await r.idle("/acme/hook", 10)  # (stopping the worker blocks this loop)
    assert delivered.headers["webhook-id"] == job["id"]
    assert receiver_verify(secrets["globex"], delivered.headers, delivered.body)
    assert acme_at_once == PER_PARTNER  # acme hung in its share of slots, never more
