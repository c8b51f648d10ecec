"""mes-edge gateway: listeners, filter chain, route table and cluster manager (aiohttp + uvloop).

Entry point: ``python -m gateway --config FILE [--workers N]``. Deliberately
imports nothing at package level: the multi-process master must decide on the
Prometheus multiprocess directory before prometheus_client is imported.
"""
