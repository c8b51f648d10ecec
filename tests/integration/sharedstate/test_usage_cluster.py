"""Usage counts on a real Redis Cluster: a partner's batch over two days is one script call (no
CROSSSLOT), applied once per sequence and once per job; the export's index spans the nodes."""

from __future__ import annotations

import pytest
from redis.asyncio.cluster import RedisCluster

from sharedstate.usage_counts import UsageCounts

pytestmark = pytest.mark.timeout(120)




async def test_batches_and_jobs_apply_once_on_cluster(cluster_client: RedisCluster) -> None:
    usage = UsageCounts(cluster_client, prefix="t-usage")
    days = ("2026-12-31", "2027-01-01")
    partners = [f"p{i}" for i in range(12)]  # spread over the three primaries
    for partner in partners:
        batch = {days[0]: {"requests": 3, "rate_limited": 1}, days[1]: {"requests": 2}}
        assert await usage.add(partner, batch, mode="seq", token="w1:1")
        assert not await usage.add(partner, batch, mode="seq", token="w1:1")  # a retried batch
        assert await usage.add(partner, {days[1]: {"models_priced": 1}}, mode="once", token="job-1")
        assert not await usage.add(partner, {days[1]: {"models_priced": 1}}, mode="once", token="job-1")
    assert await usage.read("p3", list(days)) == {days[0]: {"requests": 3, "rate_limited": 1},
                                                  days[1]: {"requests": 2, "models_priced": 1}}
    assert await usage.partners(days) == {d: sorted(partners) for d in days}
