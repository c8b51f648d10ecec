# mes-edge — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: deps run test lint bench loadtest chaos clean

deps:
	@./scripts/install-deps.sh

run: deps  ## the whole platform on embedded defaults (Ctrl-C stops everything)
	$(PY) -m devstack run

test: deps lint  ## installs what it needs, runs every test
	$(PY) -m pytest

lint: deps
	.venv/bin/ruff check .
	.venv/bin/mypy gateway legacy_sim telemetry devstack bench sidecar legacy_adapters loadtests contracts resilience configkit mesdb sharedstate

bench: deps  ## gateway vs nginx vs bare aiohttp, printed side by side with ratios
	$(PY) -m bench.proxy

loadtest: deps  ## Locust against the running `make run` (SHAPE=normal|peak|spike|smoke, ARGS=...)
	$(PY) -m loadtests --shape $(or $(SHAPE),normal) $(ARGS)

chaos: deps  ## the fault matrix under load on its own shifted platform (~17 min) → docs/resilience.md
	$(PY) -m loadtests.chaos $(ARGS)

clean:
	rm -rf .run .mypy_cache .ruff_cache .pytest_cache
