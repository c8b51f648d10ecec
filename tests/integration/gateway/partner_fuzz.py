"""Schemathesis against a running gateway: every documented operation, bounded and deterministic.

Synchronous (schemathesis calls go through ``requests``): run it in a thread next to the event
loop that owns the servers.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
MAX_EXAMPLES = 40


def _fuzz_operation(operation: Any, base_url: str, auth: dict[str, str], max_examples: int,
                    failures: list[str], statuses: set[int],
                    mode: GenerationMode = GenerationMode.POSITIVE) -> None:
    label = f"{operation.method.upper()} {operation.path}"

    @hypothesis.settings(max_examples=max_examples, derandomize=True, deadline=None, database=None,
                         phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=f"{base_url}/partner/v1", headers=auth, timeout=15)
        statuses.add(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS, headers=auth)
        except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failures
            failures.append(f"{label}: {exc}\n  reproduce: {case.as_curl_command(headers=auth)}")

    run()


def fuzz_partner_api(base_url: str, key: str, *, max_examples: int = MAX_EXAMPLES,
                     modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE,)) -> dict[str, Any]:
    """Fuzz every operation of the served document; returns ``{"failures", "statuses"}``."""
    schema = schemathesis.openapi.from_url(f"{base_url}/partner/v1/openapi.json")
    failures: list[str] = []
    statuses: dict[str, set[int]] = defaultdict(set)
    auth = {"Authorization": f"Bearer {key}"}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in modes:
            _fuzz_operation(operation, base_url, auth, max_examples, failures,
                            statuses[f"{operation.method.upper()} {operation.path}"], mode)
    return {"failures": failures, "statuses": dict(statuses)}
