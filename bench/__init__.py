"""Benchmarks for mes-edge; run the proxy benchmark with ``python -m bench.proxy``."""
