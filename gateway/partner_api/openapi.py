"""The partner API's OpenAPI 3.1 document, served by the gateway itself (no API key needed).

``gateway/openapi/partner-v1.yaml`` is the source; it is read and checked once when the
external listener is built (a broken file fails at start-up) and answered as JSON with a strong
``ETag`` at ``GET /partner/v1/openapi.json``. The same document is the contract the gateway
enforces (``gateway.partner_api.contract``, ``gateway/filters/contract.py``). Tests validate it with
``openapi-spec-validator`` and fuzz the running gateway against it with ``schemathesis``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import ConfigError, MethodNotAllowed

DOCUMENT_PATH = Path(__file__).parent.parent / "openapi" / "partner-v1.yaml"
SERVED_AT = "/partner/v1/openapi.json"


def load_document(path: Path = DOCUMENT_PATH) -> dict[str, Any]:
    """The document as a dict; ConfigError if it is missing, not YAML or not OpenAPI 3.1."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"openapi document {path}", str(exc)) from None
    if not isinstance(data, dict) or not str(data.get("openapi", "")).startswith("3.1."):
        raise ConfigError(f"openapi document {path}", "not an OpenAPI 3.1 document")
    if any(not isinstance(code, str) for op in _operations(data) for code in op.get("responses", {})):
        raise ConfigError(f"openapi document {path}", "quote every response code (YAML reads 200 as int)")
    return data


def _operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in (doc.get("paths") or {}).values() for name, op in item.items()
            if name in ("get", "post", "put", "patch", "delete", "head", "options")]


def openapi_handler(*, document: dict[str, Any] | None = None) -> Handler:
    """Answer ``GET/HEAD`` with the document (``ETag``/``If-None-Match`` → 304); 405 otherwise.

    Registered on the external listener's router at ``SERVED_AT`` ahead of the route table, so
    the document needs no route and no key, and other requests pay for no extra filter layer.
    """
    body = orjson.dumps(document if document is not None else load_document())
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300",
               "Access-Control-Allow-Origin": "*"}  # browsers' API explorers may read it

    async def openapi(request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}", allow="GET, HEAD")
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers=headers, content_type="application/json")

    return openapi
