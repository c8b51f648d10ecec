"""The chaos harness: a fault matrix under the normal load mix, with loss accounting and detection.

``python -m loadtests.chaos`` (``make chaos``); see :mod:`loadtests.chaos.run` and
``docs/resilience.md``. Only ``journal`` and ``locustfile`` import Locust (they run in Locust's
child process).
"""
