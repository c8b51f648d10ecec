"""Locust load tests for mes-edge: the real traffic mix, load shapes, pass/fail thresholds.

Layout (``docs/capacity.md`` has the how-to and the figures):

* ``mix.yaml`` / :mod:`loadtests.settings` — weights, think times, targets (env overrides);
* :mod:`loadtests.scenarios` — the Locust users: partners, operators, CRM intake;
* :mod:`loadtests.shapes` — normal, 2x peak, spike, smoke (``LoadTestShape``);
* ``thresholds.yaml`` / :mod:`loadtests.thresholds` — pass/fail criteria per scenario;
* :mod:`loadtests.hooks` — status tally, request budget, verdict → process exit code;
* ``python -m loadtests`` (:mod:`loadtests.runner`) — one bounded headless run with reports;
* ``python -m loadtests.capacity`` — legacy direct vs platform at the 2x peak → ``docs/capacity.md``.

Only ``locustfile``, ``hooks``, ``shapes`` and ``scenarios`` import Locust (which monkey-patches
the standard library with gevent); everything else is safe to import from pytest or asyncio code.
"""
