"""order-journey against Elasticsearch: the queries it sends, through the real client on a fake node.

No Elasticsearch can run on this machine, so the official client talks to a fake transport
node that records each request and answers with canned hits; what a real cluster's mapping
does with the queries is not tested here.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport._node import NodeApiResponse
from elasticsearch import Elasticsearch

from devstack.ports import free_port
from telemetry.__main__ import main
from telemetry.journey import ElasticsearchLogs, collect_journey, render_journey

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
ORDER_HITS = [  # nested documents, as after an ingest pipeline that expands dotted names
    {"@timestamp": "2026-03-02T10:00:00.050Z", "service": {"name": "legacy-mes"},
     "message": "order 42 created", "event": {"action": "order-created", "outcome": "success"},
     "order": {"id": 42, "status": {"new": "SUBMITTED"}}, "http": {"request": {"id": "req-create"}},
     "trace": {"id": TRACE}},
]
JOINED_HITS = [
    ORDER_HITS[0],  # the second query finds the order's own lines again: shown once
    {"@timestamp": "2026-03-02T10:00:00.100Z", "service": {"name": "gateway"},
     "message": "POST /partner/v1/orders 201", "http": {"request": {"id": "req-create"}},
     "trace": {"id": TRACE}},
]


class FakeNode(BaseNode):
    """Answers ``_search`` from :attr:`answers` in turn and keeps every request body."""

    requests: ClassVar[list[tuple[str, str, dict[str, Any]]]] = []
    answers: ClassVar[list[list[dict[str, Any]]]] = []

    def perform_request(self, method: str, target: str, body: bytes | None = None,
                        headers: HttpHeaders | None = None, request_timeout: Any = None) -> NodeApiResponse:
        self.requests.append((method, target, json.loads(body or b"{}")))
        hits = self.answers.pop(0)
        payload = {"took": 1, "timed_out": False, "hits": {"total": {"value": len(hits), "relation": "eq"},
                                                            "hits": [{"_source": h} for h in hits]}}
        meta = ApiResponseMeta(status=200, http_version="1.1", duration=0.0, node=self.config,
                               headers=HttpHeaders({"content-type": "application/json",
                                                    "x-elastic-product": "Elasticsearch"}))
        return NodeApiResponse(meta, json.dumps(payload).encode())


@pytest.fixture
def es() -> ElasticsearchLogs:
    FakeNode.requests.clear()
    FakeNode.answers[:] = [list(ORDER_HITS), list(JOINED_HITS)]
    client = Elasticsearch("http://es.invalid:9200", node_class=FakeNode)
    return ElasticsearchLogs(client, "mes-edge-logs-*")


def test_first_query_is_a_bool_on_the_order_id() -> None:
    query = ElasticsearchLogs.order_query("42")
    assert query == {"bool": {"should": [{"term": {"order.id": "42"}}, {"term": {"order.id.keyword": "42"}}],
                              "minimum_should_match": 1}}


def test_second_query_asks_for_the_collected_request_and_trace_ids() -> None:
    query = ElasticsearchLogs.join_query({"http.request.id": {"r2", "r1"}, "trace.id": {TRACE}})
    should = query["bool"]["should"]
    assert {"terms": {"http.request.id": ["r1", "r2"]}} in should
    assert {"terms": {"trace.id.keyword": [TRACE]}} in should
    assert query["bool"]["minimum_should_match"] == 1


def test_journey_from_elasticsearch_joins_sorts_and_dedups(es: ElasticsearchLogs) -> None:
    journey = collect_journey(es, "42")
    assert [e.get("service.name") for e in journey.events] == ["legacy-mes", "gateway"]
    [(method, target, first), (_, _, second)] = FakeNode.requests
    assert (method, target.split("?")[0]) == ("POST", "/mes-edge-logs-*/_search")
    assert first["query"] == ElasticsearchLogs.order_query("42")
    assert first["sort"] == [{"@timestamp": {"order": "asc", "unmapped_type": "date"}}]
    assert second["query"] == ElasticsearchLogs.join_query({"http.request.id": {"req-create"},
                                                            "trace.id": {TRACE}})
    assert f"/trace/{TRACE}" in render_journey(journey)


def test_no_hits_means_no_second_query(es: ElasticsearchLogs) -> None:
    FakeNode.answers[:] = [[]]
    assert collect_journey(es, "404").events == []
    assert len(FakeNode.requests) == 1


def test_unreachable_elasticsearch_exits_2_with_a_message(capsys) -> None:
    assert main(["order-journey", "42", "--es-url", f"http://127.0.0.1:{free_port()}"]) == 2
    assert "cannot read logs" in capsys.readouterr().err

