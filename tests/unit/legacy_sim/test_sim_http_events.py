"""The stand-ins' middlewares on a toy app: request/order context, error answers and their log events."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from legacy_sim.http_context import bind_order_id, request_context_middleware
from legacy_sim.problem import Problem, problem_middleware
from telemetry import order_id_var
from tests.integration.legacy_sim.sim_support import JsonLog

logger = logging.getLogger("legacy_sim.test")


async def bug(request: web.Request) -> web.Response:
    raise KeyError("price_eur")


async def create(request: web.Request) -> web.Response:
    bind_order_id(77)
    logger.info("after creation")
    return web.json_response({"id": 77}, status=201)


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def missing(request: web.Request) -> web.Response:
    raise Problem(404, f"order {request.match_info['order_id']} not found")


@pytest.fixture
def json_log() -> Iterator[JsonLog]:
    with JsonLog() as log:
        yield log


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = web.Application(middlewares=[request_context_middleware(order_id_param="order_id"),
                                       problem_middleware("toy")])
    app.router.add_get("/bug", bug)
    app.router.add_post("/orders", create)
    app.router.add_get("/orders/{order_id}", missing)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_a_bug_is_a_500_problem_and_an_internal_error_event_with_stack(client: TestClient,
                                                                           json_log: JsonLog) -> None:
    resp = await client.get("/bug")
    assert resp.status == 500
    assert resp.content_type == "application/problem+json"
    assert "KeyError" in (await resp.json())["detail"]
    [internal] = json_log.events("internal-error")
    assert internal["error.type"] == "KeyError"
    assert "raise KeyError" in str(internal["error.stack_trace"])
    [answered] = json_log.events("api-error")
    assert answered["http.response.status_code"] == 500
    assert answered["log.level"] == "error"


async def test_unknown_route_is_an_api_error_without_route(client: TestClient, json_log: JsonLog) -> None:
    assert (await client.get("/nope")).status == 404
    [answered] = json_log.events("api-error")
    assert answered["http.route"] is None
    assert answered["log.level"] == "warning"


async def test_path_order_id_is_on_every_line_of_the_request(client: TestClient, json_log: JsonLog) -> None:
    resp = await client.get("/orders/123", headers={"X-Request-ID": "req-0123456789"})
    assert resp.status == 404
    [answered] = json_log.events("api-error")
    assert (answered["order.id"], answered["http.request.id"]) == ("123", "req-0123456789")


async def test_bound_order_id_is_on_later_lines_and_cleared_after_the_request(client: TestClient,
                                                                              json_log: JsonLog) -> None:
    assert (await client.post("/orders")).status == 201
    [line] = [x for x in json_log.lines() if x["message"] == "after creation"]
    assert line["order.id"] == "77"
    assert order_id_var.get() is None


async def test_successful_answers_log_no_api_error(json_log: JsonLog) -> None:
    app = web.Application(middlewares=[problem_middleware("toy")])
    app.router.add_get("/ok", ok)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/ok")).status == 200
    assert json_log.events("api-error") == []
