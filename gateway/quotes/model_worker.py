"""What runs inside a model-check process (``gateway/quotes/model_pool.py``); stdlib imports only.

The limits are set before numpy is imported: the address-space limit (``RLIMIT_AS``) covers the
whole process, and the CPU-time limit (``RLIMIT_CPU``) is re-armed before every check as *CPU
used so far + the per-check budget*, so a long-lived process never trips it by accumulation.
A check that runs past its CPU budget gets SIGXCPU and dies; the pool replaces the process.
"""

from __future__ import annotations

import os
import resource
import signal
from typing import Any

_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def init_worker(memory_bytes: int) -> None:
    """Process initializer: no metrics, one BLAS thread, the memory limit, then warm imports."""
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # this process records no gateway metrics
    for name in _BLAS_THREADS:
        os.environ[name] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the gateway's to handle
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    import gateway.quotes.model_check  # noqa: F401  numpy + numpy-stl, under the limit


def warm() -> int:
    """A no-op task: makes the executor start its process at start-up, not on the first upload."""
    return os.getpid()


def run_check(data: bytes, material: str, rules_version: str, limits: Any, cpu_seconds: int) -> str:
    """Arm the CPU budget for this check, then fingerprint the model (raises InvalidModel)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime) + cpu_seconds + 1
    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))
    from gateway.quotes.model_check import model_fingerprint

    return model_fingerprint(data, material=material, rules_version=rules_version, limits=limits)
