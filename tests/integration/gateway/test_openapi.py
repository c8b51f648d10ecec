"""The partner API's OpenAPI document: valid 3.1, served by the gateway without a key, and true —
schemathesis fuzzes the real gateway (real MES on PostgreSQL, quote API on Redis) against it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openapi_spec_validator import validate
from schemathesis import GenerationMode

from gateway.partner_api.openapi import SERVED_AT, load_document
from tests.integration.gateway.partner_api_support import ALL_SCOPES, partner_api_config
from tests.integration.gateway.partner_fuzz import fuzz_partner_api
from tests.support.gateway import gateway_process, run_gateway
from tests.support.legacy import mes_processes
from tests.support.partner_edge import make_keys

pytestmark = pytest.mark.timeout(120)
#: schemathesis' own configuration of these runs (one documented exception: STL content).
SCHEMATHESIS_CONFIG = Path(__file__).parent / "schemathesis.toml"


def test_document_is_a_valid_openapi_3_1_document() -> None:
    doc = load_document()
    validate(doc)  # openapi-spec-validator picks the 3.1 validator from `openapi`
    assert doc["openapi"].startswith("3.1.")
    ops = {f"{m.upper()} {p}" for p, item in doc["paths"].items() for m in item}
    assert {"POST /orders", "GET /orders", "GET /orders/{order_id}", "POST /quotes",
            "GET /quotes/{quote_id}"} <= ops


async def test_document_is_served_without_a_key_with_an_etag(tmp_path: Path) -> None:
    store, _ = make_keys(tmp_path)
    cfg = partner_api_config(tmp_path, ["http://127.0.0.1:9"], store)
    async with run_gateway(cfg, tmp_path, ready=False) as gw, aiohttp.ClientSession() as s:
        async with s.get(gw.external + SERVED_AT) as r:
            assert r.status == 200
            assert r.content_type == "application/json"
            assert await r.json() == load_document()
            etag = r.headers["ETag"]
        async with s.get(gw.external + SERVED_AT, headers={"If-None-Match": etag}) as r:
            assert r.status == 304
        async with s.post(gw.external + SERVED_AT) as r:
            assert r.status == 405
            assert r.content_type == "application/problem+json"
        async with s.get(gw.internal + SERVED_AT) as r:  # the partner API lives on the external listener
            assert r.status == 404


@pytest.mark.slow
async def test_fuzzing_the_running_gateway_finds_no_5xx_and_no_undocumented_answer(
        tmp_path: Path, pg_dsn: str, redis_url: str) -> None:
    store, (key,) = make_keys(tmp_path, ("acme", "gold", ALL_SCOPES))
    with mes_processes(pg_dsn, tmp_path, count=1) as mes:
        cfg = partner_api_config(tmp_path, [u for u, _ in mes], store, quotes_redis=redis_url)
        async with gateway_process(cfg, tmp_path) as gw:
            report: dict[str, Any] = await asyncio.to_thread(
                fuzz_partner_api, gw.external, key, modes=(GenerationMode.POSITIVE, GenerationMode.NEGATIVE))
    failures = report["failures"]
    assert not failures, "\n\n".join(failures)
    assert set(report["statuses"]) >= {"POST /orders", "GET /orders", "GET /orders/{order_id}",
                                       "POST /quotes", "GET /quotes/{quote_id}"}
    # valid orders reached the MES, invalid ones were refused (never a 5xx). Which refusal the negative
    # cases of POST /orders draw, 422 (schema) or 400 (malformed), varied once in a clean-clone run
    # ({201, 400}) and was not reproduced; test_partner_validation pins 422 vs 400 case by case
    assert 201 in report["statuses"]["POST /orders"]
    assert report["statuses"]["POST /orders"] & {400, 422}
    assert {200, 422} <= report["statuses"]["GET /orders"]


def schemathesis_command(base_url: str, key: str, *, max_examples: int) -> list[str]:
    """The CLI run of issue 20: every check, positive and negative data, every phase (stateful too)."""
    return [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(SCHEMATHESIS_CONFIG),
            "run", f"{base_url}/partner/v1/openapi.json", "--checks", "all", "--mode", "all",
            "--phases", "examples,coverage,fuzzing,stateful", "-H", f"Authorization: Bearer {key}",
            "--seed", "20", "--workers", "1", "--max-examples", str(max_examples), "--no-color"]


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_schemathesis_with_all_checks_negative_data_and_stateful_phase_finds_nothing(
        tmp_path: Path, pg_dsn: str, redis_url: str) -> None:
    """`--checks all --mode all` and the stateful phase: no 5xx, no failing check (no ST201 schema-
    violating request accepted, no ST202 schema-valid request rejected, no ST204/ST205 wrong answer
    to an undeclared method) — the document is the truth and the gateway enforces it."""
    store, (key,) = make_keys(tmp_path, ("acme", "gold", ALL_SCOPES))
    with mes_processes(pg_dsn, tmp_path, count=1) as mes:
        cfg = partner_api_config(tmp_path, [u for u, _ in mes], store, quotes_redis=redis_url)
        async with gateway_process(cfg, tmp_path) as gw:
            proc = await asyncio.create_subprocess_exec(
                *schemathesis_command(gw.external, key, max_examples=15), cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=540)
    report = out.decode(errors="replace")
    (tmp_path / "schemathesis.txt").write_text(report)  # the whole report, kept with the test's files
    failures = report[report.find("=== FAILURES ==="):][:8000] if "=== FAILURES ===" in report else ""
    assert proc.returncode == 0, failures or report[-4000:]
    assert "Stateful" in report
