"""Trace context rides inside the job message: PRODUCER at submit, CONSUMER (its child) in the worker."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from legacy_adapters.callable_backend import CallableBackend
from legacy_adapters.consumer import QuoteWorker, WorkerSettings
from legacy_adapters.queue import PricingQueue
from legacy_adapters.submit import QuoteSubmitter, SubmitSettings
from legacy_sim.pricing.samples import box_stl_binary
from tests.integration.legacy_adapters.conftest import submit
from tests.integration.legacy_adapters.pricing_support import LOCAL, wait_until


async def test_worker_span_is_a_child_of_the_submit_span(queue: PricingQueue) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    submitter = QuoteSubmitter(queue, SubmitSettings(), tracer_provider=provider)
    job_id = (await submit(submitter, box_stl_binary(4, 5, 6))).job_id
    worker = QuoteWorker(queue, CallableBackend(LOCAL), WorkerSettings(name="t", block_ms=100),
                         tracer_provider=provider)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))

    async def done() -> bool:
        return (await queue.job(job_id) or {}).get("status") == "done"

    try:
        await wait_until(done, 10, "job done")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    spans = {s.kind: s for s in exporter.get_finished_spans()}
    producer, consumer = spans[SpanKind.PRODUCER], spans[SpanKind.CONSUMER]
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.message.id"] == job_id
