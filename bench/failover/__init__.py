"""Failover figures for the shared state (issue 16): what clients see when Redis fails over.

    .venv/bin/python -m bench.failover --topology sentinel|cluster|reshard [--short]
    .venv/bin/python -m bench.failover --topology sentinel,cluster,reshard

Per scenario: a Redis topology on ephemeral ports (``topologies.py``), two gateway processes, the
pricing workers against the MES stand-in, the CRM stand-in and its relay (``stack.py``); the
partner route's capacity and the pricing pool's jobs/s are measured first, then the steady load
runs at fractions of them (``scenario.Plan``) while the primary is SIGKILLed (or its slots are
resharded), and the report gives: 5xx and unanswered requests, the rate-limited partner's
admissions beyond its limit during the failover window (and in a window of the same length
before it), how long the gateways' metrics said degraded, quote jobs lost / failed / priced
twice, CRM orders lost. ``tests/integration/sharedstate/test_failover_figures.py`` runs the short
version of each scenario in ``make test`` and asserts the loss counts only.
"""
