"""The partner API document as the contract the gateway enforces (compiled once, at start-up).

``Contract.compile(document)`` turns every operation of ``gateway/openapi/partner-v1.yaml`` into
compiled JSON Schema validators (jsonschema-rs, Draft 2020-12 — the dialect of OpenAPI 3.1 —
with the whole document as the one resource ``$ref`` resolves in) plus a thin OpenAPI layer the
validator does not know: path templates, parameter locations, strings of the query and headers
read as the schema's type (``style: form``, ``explode: true`` arrays as repeated parameters),
required parameters and bodies, and media types. A document this layer cannot enforce (a
parameter style, a schema type or a ``$ref`` it does not know) fails at start-up, naming it.

Beyond what OpenAPI says, the contract is strict where the document says so in words: unknown
and repeated query parameters are refused (``info.description``), and so is a body on an
operation that declares none. What no document can express stays hand-written and named where
it is: the STL content of a quote (``gateway/quotes``), the 16 KiB cap of an order
(``MAX_JSON_BYTES``), duplicate members in a JSON object (``parse_json``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import jsonschema_rs
import orjson
from aiohttp import web
from multidict import CIMultiDictProxy, MultiMapping

from gateway.errors import ConfigError, MethodNotAllowed, RouteNotFound
from gateway.partner_api.violations import Violation, from_schema_errors, pointer_of

#: The URI the document is registered under, so ``#/components/...`` resolves inside it.
DOCUMENT_URI = "urn:mes-edge:partner-v1"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: The most of a JSON request body the gateway reads (an order is a few hundred bytes).
MAX_JSON_BYTES = 16 * 1024
#: Raw paths whose matches a contract remembers (as the route table's ``CACHE_PATHS``).
CACHE_PATHS = 4096
#: Parameter checks an operation remembers (each key is at most a request target and a few headers).
MEMO_ENTRIES = 1024
MEMO_KEY_CHARS = 512  # so the memo of one operation holds well under 1 MB
_SCALARS = frozenset({"string", "integer", "number", "boolean"})
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,30})")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]{0,30})(?:\.[0-9]{1,30})?(?:[eE][-+]?[0-9]{1,3})?")
_BOOLEANS = {"true": True, "false": False}


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True, slots=True)
class Parameter:
    """One declared parameter: where, whether required, how its strings are read, its validator."""

    name: str
    location: str
    required: bool
    kind: str                 # the schema's type: string, integer, number, boolean or array
    item_kind: str | None     # for arrays: the items' type
    validator: jsonschema_rs.Validator

    def value_of(self, raw: list[str]) -> tuple[Any, Violation | None]:
        """The values sent, read as the schema's type; a violation when they cannot be."""
        if self.kind == "array":
            items = [self._scalar(self.item_kind or "string", r) for r in raw]
            bad = next((i for i, (_, ok) in enumerate(items) if not ok), None)
            if bad is not None:
                return None, Violation(self.location, pointer_of([self.name, bad]),
                                       f"must be of type {self.item_kind}")
            return [v for v, _ in items], None
        if len(raw) > 1:
            return None, Violation(self.location, pointer_of([self.name]), "is given more than once",
                                   malformed=True)
        value, ok = self._scalar(self.kind, raw[0])
        if not ok:
            return None, Violation(self.location, pointer_of([self.name]), f"must be of type {self.kind}")
        return value, None

    @staticmethod
    def _scalar(kind: str, raw: str) -> tuple[Any, bool]:
        if kind == "integer":
            return (int(raw), True) if _INTEGER.fullmatch(raw) else (None, False)
        if kind == "number":
            return (float(raw), True) if _NUMBER.fullmatch(raw) else (None, False)
        if kind == "boolean":
            return (_BOOLEANS[raw], True) if raw in _BOOLEANS else (None, False)
        return raw, True


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of the document, compiled: its parameters and its request body's media types."""

    operation_id: str
    method: str               # upper case
    template: str             # e.g. /orders/{order_id}
    parameters: tuple[Parameter, ...]
    body_required: bool
    #: media type → compiled body schema (JSON media types), or None: the handler reads the body
    media: Mapping[str, jsonschema_rs.Validator | None]
    query_names: frozenset[str] = field(default=frozenset())
    header_names: tuple[str, ...] = ()
    #: (query string, path values, declared headers' values) → their violations: partners poll with
    #: the same few queries, so most requests are one dict lookup (bounded; cleared when full)
    _memo: dict[tuple[str, tuple[str, ...], tuple[tuple[str, ...], ...]], tuple[Violation, ...]] = field(
        default_factory=dict, compare=False, repr=False)

    @property
    def takes_body(self) -> bool:
        """Whether the document declares a request body for this operation."""
        return bool(self.media)

    def check_request(self, path: Mapping[str, str], request: web.Request) -> list[Violation]:
        """``check_parameters`` of the request, remembered for its query string, path values and
        declared headers (a pure function of them)."""
        if not self.parameters and not request.query_string:  # nothing to check (createOrder)
            return []
        key = (request.query_string, tuple(path.values()),
               tuple(tuple(request.headers.getall(name, ())) for name in self.header_names))
        found = self._memo.get(key)
        if found is None:
            found = tuple(self.check_parameters(path, request.query, request.headers))
            if len(repr(key)) <= MEMO_KEY_CHARS:  # long (hostile) targets are checked, not remembered
                if len(self._memo) >= MEMO_ENTRIES:
                    self._memo.clear()
                self._memo[key] = found
        return list(found)

    def check_parameters(self, path: Mapping[str, str], query: MultiMapping[str],
                         headers: CIMultiDictProxy[str]) -> list[Violation]:
        """Every violation of the path, query and header parameters (unknown query ones included)."""
        out = [] if self.query_names.issuperset(query.keys()) else [
            Violation("query", pointer_of([name]), "is not a parameter of this operation", malformed=True)
            for name in dict.fromkeys(query) if name not in self.query_names]
        for param in self.parameters:
            if param.location == "path":
                raw = [path[param.name]]
            elif param.location == "query":
                raw = query.getall(param.name, [])
            else:
                raw = headers.getall(param.name, [])
            if not raw:
                if param.required:
                    out.append(Violation(param.location, pointer_of([param.name]), "is required"))
                continue
            value, wrong = param.value_of(raw)
            if wrong is not None:
                out.append(wrong)
                continue
            if not param.validator.is_valid(value):  # the fast path; the errors only when there are some
                errors = param.validator.iter_errors(value)
                out.extend(from_schema_errors(param.location, [param.name], errors))
        return out

    def check_json(self, validator: jsonschema_rs.Validator, raw: bytes) -> tuple[Any, list[Violation]]:
        """The body parsed (``parse_json``) and every violation of its schema."""
        if not raw.strip():
            return None, ([Violation("body", "", "is required", malformed=True)] if self.body_required
                          else [])
        try:
            value = parse_json(raw)
        except ValueError as exc:
            return None, [Violation("body", "", f"is not valid JSON: {exc}"[:200], malformed=True)]
        if validator.is_valid(value):
            return value, []
        return value, from_schema_errors("body", [], validator.iter_errors(value))


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _Duplicate(f"member {dup[:40]!r} appears more than once")
    return out


#: a member name's end: its closing quote and the colon (JSON whitespace between). Every member of
#: every object in a document matches exactly once; a string value can only add matches.
_MEMBER_END = re.compile(rb'"[ \t\n\r]*:')


#: deepest nesting of arrays and objects a partner's JSON may have: no document of the partner API
#: comes near it, and the legacy's own parser (Python's json: about 1,000) must never be the limit
MAX_JSON_DEPTH = 64


def _members(value: Any) -> int:
    """How many members the objects in ``value`` have, all levels (iterative: no recursion limit);
    ``ValueError`` if it nests deeper than ``MAX_JSON_DEPTH``."""
    count, todo = 0, [(value, 1)]
    while todo:
        node, depth = todo.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(node, dict):
            count += len(node)
            node = node.values()
        for child in node:
            if isinstance(child, (dict, list)):
                todo.append((child, depth + 1))
    return count


def parse_json(raw: bytes) -> Any:
    """Strict JSON (RFC 8259, orjson): UTF-8 only, no NaN/Infinity, no lone surrogates, at most
    ``MAX_JSON_DEPTH`` levels deep — and, what no schema can say, no object with the same member
    twice (parsers disagree on which one wins: the gateway would check one value and the MES might
    use the other). ``ValueError`` names what is wrong.

    The repeated-member check is exact and mostly free: orjson keeps one member per name, so the
    parsed objects have fewer members than the text has member ends (``_MEMBER_END``) whenever a
    name repeats. Only when the two counts differ (a repeat, or a string value containing ``":``)
    does the slower pass with ``object_pairs_hook`` run to find it."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None
    if isinstance(value, dict | list) and _members(value) != len(_MEMBER_END.findall(raw)):
        try:  # look for the repeated member (orjson keeps the last silently)
            json.loads(raw, object_pairs_hook=_no_duplicates)
        except RecursionError:
            raise ValueError("nested too deeply") from None
    return value


def _resolve(doc: dict[str, Any], node: dict[str, Any], where: str) -> dict[str, Any]:
    """Follow local ``$ref``s (``#/components/...``) to the object they name."""
    seen = 0
    while "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/") or seen > 16:
            raise ConfigError(where, f"only local $ref are supported, not {ref!r}")
        target: Any = doc
        for token in ref[2:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or token not in target:
                raise ConfigError(where, f"$ref {ref!r} names nothing in the document")
            target = target[token]
        node, seen = target, seen + 1
    return node


def _kind(doc: dict[str, Any], schema: dict[str, Any], where: str) -> tuple[str, str | None]:
    schema = _resolve(doc, schema, where)
    kind = schema.get("type", "string" if "enum" not in schema else None)
    if kind is None and all(isinstance(o, str) for o in schema.get("enum", [])):
        kind = "string"
    if kind == "array":
        item, _ = _kind(doc, schema.get("items") or {}, where + ".items")
        if item not in _SCALARS:
            raise ConfigError(where, "array parameters must have scalar items")
        return "array", item
    if kind not in _SCALARS:
        raise ConfigError(where, f"parameter schema type {kind!r} is not supported")
    return kind, None


class Contract:
    """The compiled document: ``match`` a request to its operation, which checks it."""

    def __init__(self, base: str, operations: list[tuple[tuple[str | None, ...], Operation]]) -> None:
        #: The path every operation is under (the document's server URL), e.g. ``/partner/v1``.
        self.base = base.rstrip("/")
        self._ops = operations
        #: path → its operations and path parameters (raw paths are client-controlled: bounded)
        self._cache: dict[str, list[tuple[Operation, dict[str, str]]]] = {}
        self.operation_ids = tuple(dict.fromkeys(op.operation_id for _, op in operations))

    @classmethod
    def compile(cls, doc: dict[str, Any]) -> Contract:
        """Compile every operation; ConfigError names what this layer cannot enforce."""
        servers = doc.get("servers") or [{"url": "/"}]
        base = servers[0].get("url", "/")
        if len(servers) != 1 or not base.startswith("/"):
            raise ConfigError("openapi.servers", "one server with a relative URL (/partner/v1) is expected")
        registry = jsonschema_rs.Registry([(DOCUMENT_URI, doc)])

        def validator(*pointer: str) -> jsonschema_rs.Validator:
            ref = quote("/" + "/".join(_escape(p) for p in pointer), safe="/~")
            return jsonschema_rs.Draft202012Validator({"$ref": f"{DOCUMENT_URI}#{ref}"},
                                                      registry=registry, validate_formats=True)

        ops: list[tuple[tuple[str | None, ...], Operation]] = []
        for template, item in (doc.get("paths") or {}).items():
            segments = tuple(None if s.startswith("{") else s for s in template.split("/"))
            for method in METHODS:
                if method in item:
                    if item.get("parameters"):
                        raise ConfigError(f"openapi.paths.{template}", "declare parameters on the operations")
                    ops.append((segments, _operation(doc, template, method, validator)))
        # literal segments before templates, so /orders/mine would win over /orders/{order_id}
        ops.sort(key=lambda so: sum(s is None for s in so[0]))
        return cls(base, ops)

    def covers(self, path: str) -> bool:
        """Whether ``path`` is under the document's server URL."""
        return path == self.base or path.startswith(self.base + "/")

    def overlaps(self, prefix: str) -> bool:
        """Whether a route with this prefix can serve a path under the document's server URL."""
        return self.covers(prefix) or (self.base + "/").startswith(prefix.rstrip("/") + "/")

    def _candidates(self, path: str) -> Iterator[tuple[Operation, dict[str, str]]]:
        if not path.startswith(self.base + "/"):
            return
        parts = path[len(self.base):].split("/")
        for segments, op in self._ops:
            if len(segments) != len(parts):
                continue
            values: dict[str, str] = {}
            for want, part, name in zip(segments, parts, op.template.split("/"), strict=True):
                if want is None:
                    if not part:
                        break
                    values[name[1:-1]] = part
                elif want != part:
                    break
            else:
                yield op, values

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]]:
        """The operation and path parameters of ``method path``; RouteNotFound (404) when the
        document has no such path, MethodNotAllowed (405, ``Allow`` as the document says) when it
        has it for other methods only. ``HEAD`` is allowed wherever ``GET`` is."""
        candidates = self._cache.get(path)
        if candidates is None:
            candidates = list(self._candidates(path))
            if len(self._cache) < CACHE_PATHS:
                self._cache[path] = candidates
        allowed: list[str] = []
        template = None
        for op, values in candidates:
            if template is not None and op.template != template:
                break  # the most specific template decides
            template = op.template
            if op.method == method or (method == "HEAD" and op.method == "GET"):
                return op, values
            allowed.append(op.method)
        if not allowed:
            raise RouteNotFound(f"no operation of the partner API at {path}")
        if "GET" in allowed:
            allowed.append("HEAD")
        raise MethodNotAllowed(f"{method} is not allowed on {path}", allow=", ".join(sorted(allowed)))


def _operation(doc: dict[str, Any], template: str, method: str,
               validator: Callable[..., jsonschema_rs.Validator]) -> Operation:
    """One operation compiled; its schemas are validated where they are in the document."""
    op = doc["paths"][template][method]
    where = f"openapi.paths.{template}.{method}"
    params = []
    for i, raw in enumerate(op.get("parameters", [])):
        here = f"{where}.parameters[{i}]"
        style = raw.get("style", "form" if raw.get("in") == "query" else "simple")
        explode = raw.get("explode", style == "form")
        if "$ref" in raw or raw.get("in") not in ("path", "query", "header") \
                or style not in ("form", "simple") or explode is not (style == "form"):
            raise ConfigError(here, "only inline path, query (form, explode) and header parameters")
        kind, item_kind = _kind(doc, raw.get("schema") or {}, here)
        if kind == "array" and raw["in"] != "query":
            raise ConfigError(here, "array parameters only in the query (repeated)")
        schema = validator("paths", template, method, "parameters", str(i), "schema")
        params.append(Parameter(name=raw["name"], location=raw["in"],
                                required=bool(raw.get("required")) or raw["in"] == "path", kind=kind,
                                item_kind=item_kind, validator=schema))
    body = op.get("requestBody") or {}
    if "$ref" in body:
        raise ConfigError(f"{where}.requestBody", "declare the request body inline")
    media = {mt: validator("paths", template, method, "requestBody", "content", mt, "schema")
             if _is_json(mt) else None for mt in (body.get("content") or {})}
    return Operation(operation_id=op.get("operationId") or f"{method} {template}", method=method.upper(),
                     template=template, parameters=tuple(params), body_required=bool(body.get("required")),
                     media=media, query_names=frozenset(p.name for p in params if p.location == "query"),
                     header_names=tuple(p.name for p in params if p.location == "header"))


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")
