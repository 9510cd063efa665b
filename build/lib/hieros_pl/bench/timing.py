"""Wall-time measurement shared by the hieros-bench suites."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def median_ms(run: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``run`` in milliseconds after ``warmup`` untimed calls.

    Synchronises CUDA after each call so asynchronous kernels are inside the measurement.
    """
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)
