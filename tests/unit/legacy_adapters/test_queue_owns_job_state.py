"""Every state change of a quote job goes through the queue module (issue 14, point 4).

Read from the source with ``ast``, over every production package:

* the only Lua that touches the pricing queue's keys (job records, the stream, the retry,
  dead-letter and webhook schedules, price cache, in-flight markers …) is in
  ``legacy_adapters/scripts.py``, run by ``legacy_adapters/queue.py``;
* outside ``legacy_adapters/queue.py``, no module that can hold a ``PricingQueue`` (``legacy_adapters``
  and every module importing it) sends a Redis write command, registers or evaluates a script on a
  ``….redis`` client, or writes through a pipeline opened on one — reads (job records, the state
  probe's pipeline) are fine.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PRODUCTION = ("gateway", "sidecar", "legacy_adapters", "telemetry", "contracts", "resilience", "configkit",
              "mesdb")
SCRIPTS = "legacy_adapters/scripts.py"
QUEUE = "legacy_adapters/queue.py"
#: Key fragments of the pricing queue's layout (legacy_adapters/redis_keys.py and the scripts).
QUEUE_KEYS = ("':job:'", "':stream'", "':delayed'", "':dead'", "':webhooks", "':inflight:'", "':waiters:'",
              "':price:'", "':exact:'", "':model", "':idem:'", "':workers'")
#: Redis commands (redis-py method names) that change data, and the ways to run a script.
WRITES = frozenset({
    "set", "setex", "setnx", "psetex", "mset", "msetnx", "getset", "getdel", "getex", "append", "incr",
    "incrby", "incrbyfloat", "decr", "decrby", "delete", "unlink", "expire", "expireat", "pexpire",
    "pexpireat", "persist", "rename", "renamenx", "copy", "hset", "hsetnx", "hmset", "hdel", "hincrby",
    "hincrbyfloat", "zadd", "zrem", "zincrby", "zpopmin", "zpopmax", "bzpopmin", "bzpopmax",
    "zremrangebyscore", "zremrangebyrank", "zremrangebylex", "zunionstore", "zinterstore", "zrangestore",
    "sadd", "srem", "spop", "smove", "sunionstore", "sinterstore", "sdiffstore", "lpush", "rpush", "lpop",
    "rpop", "lrem", "lset", "ltrim", "linsert", "lmove", "blpop", "brpop", "xadd", "xdel", "xtrim", "xack",
    "xclaim", "xautoclaim", "xgroup_create", "xgroup_destroy", "xgroup_delconsumer", "xgroup_setid",
    "xreadgroup", "flushdb", "flushall", "register_script", "eval", "evalsha", "eval_ro", "evalsha_ro",
    "fcall", "script_load",
})


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for package in PRODUCTION:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), str(path))


def _imports_legacy_adapters(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "legacy_adapters":
            return True
        if isinstance(node, ast.Import) and any(a.name.startswith("legacy_adapters") for a in node.names):
            return True
    return False


def _is_queue_client(node: ast.expr) -> bool:
    """``x.redis`` / ``redis`` — the client a ``PricingQueue`` (or a copy of it) holds."""
    return (isinstance(node, ast.Attribute) and node.attr == "redis") or (
        isinstance(node, ast.Name) and node.id == "redis")


def _pipelines(tree: ast.Module) -> set[str]:
    """Names bound to a pipeline opened on the queue's client (``with q.redis.pipeline() as pipe``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                call = item.context_expr
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and call.func.attr == "pipeline" and _is_queue_client(call.func.value)
                        and isinstance(item.optional_vars, ast.Name)):
                    names.add(item.optional_vars.id)
    return names


def queue_writes_outside_the_queue() -> list[str]:
    """``path:line command`` for every write on the queue's Redis outside ``queue.py``."""
    found = []
    for path, tree in _modules():
        if path == QUEUE or not (path.startswith("legacy_adapters/") or _imports_legacy_adapters(tree)):
            continue
        pipes = _pipelines(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver, command = node.func.value, node.func.attr
            through_pipe = isinstance(receiver, ast.Name) and receiver.id in pipes
            if command in WRITES and (_is_queue_client(receiver) or through_pipe):
                found.append(f"{path}:{node.lineno} {command}")
    return found


def queue_lua_outside_the_scripts() -> list[str]:
    """``path:line`` for every Lua text naming a queue key that is not in ``scripts.py``."""
    found = []
    for path, tree in _modules():
        if path == SCRIPTS:
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and "redis.call" in node.value
                    and any(key in node.value for key in QUEUE_KEYS)):
                found.append(f"{path}:{node.lineno}")
    return found


def test_only_the_queue_module_writes_the_queues_redis() -> None:
    assert queue_writes_outside_the_queue() == []


def test_only_the_queue_scripts_hold_lua_for_the_queues_keys() -> None:
    assert queue_lua_outside_the_scripts() == []


def test_the_scripts_are_run_by_the_queue_module() -> None:
    queue = ast.parse((ROOT / QUEUE).read_text())
    scripts = ast.parse((ROOT / SCRIPTS).read_text())
    defined = {t.id for node in scripts.body if isinstance(node, ast.Assign)
               for t in node.targets if isinstance(t, ast.Name) and not t.id.startswith("_")}
    registered = {c.value for node in ast.walk(queue) if isinstance(node, ast.Tuple)
                  for c in node.elts if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    assert defined
    assert defined <= registered


@pytest.mark.parametrize(("source", "expected"), [
    ("async def f(q):\n    await q.redis.hset(q.keys.job('1'), mapping={'a': 1})\n", ["hset"]),
    ("async def f(self):\n    self._s = self.queue.redis.register_script('return 1')\n", ["register_script"]),
    ("async def f(q):\n    async with q.redis.pipeline() as p:\n        p.zadd('k', {'a': 1})\n", ["zadd"]),
    ("async def f(q):\n    async with q.redis.pipeline() as p:\n        p.xlen('k')\n", []),
    ("async def f(q):\n    return await q.redis.hgetall('k')\n", []),
])
def test_the_check_sees_writes_and_lets_reads_pass(
        source: str, expected: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "legacy_adapters").mkdir()
    (tmp_path / "legacy_adapters" / "sample.py").write_text(source)
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert [f.split(" ")[1] for f in queue_writes_outside_the_queue()] == expected
