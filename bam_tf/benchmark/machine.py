"""Probes of the machine the benchmark runs on: load average, CPU model and the measured matmul peak."""

from __future__ import annotations

import os
import time

import numpy as np


def load_average() -> str:
    """The 1/5/15-minute load averages, as the report shows them."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or "unknown"


def matmul_peak(dtype, size: int, matmuls: int, repeats: int) -> float:
    """Best FLOP/s of a chain of `matmuls` size×size matmuls inside one tf.function call."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    # Entries ~ N(0, 1/n) keep the chain's values O(1), so nothing overflows or underflows.
    a = tf.constant(rng.standard_normal((size, size)) / np.sqrt(size), dtype)
    b = tf.constant(rng.standard_normal((size, size)) / np.sqrt(size), dtype)

    @tf.function
    def chain(x, y):
        for _ in tf.range(matmuls):  # a while loop: every matmul depends on the previous one
            x = tf.matmul(x, y)
        return x[0, 0]

    chain(a, b).numpy()  # trace and warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        chain(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 * matmuls / best
