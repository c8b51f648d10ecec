"""The quote job API answered by the gateway itself: routes, upload reading and budgets, STL model
checks in a process pool, and the ``quotes:`` config section (docs/pricing.md). The queue and workers
are ``legacy_adapters``.
"""
