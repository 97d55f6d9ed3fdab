"""Timing shared by the PyTorch peer scripts: the same protocol and JSON line as our
`latency` example (3 warm-up steps, then the median of `iters` timed steps)."""
import json
import statistics
import time

import torch


def report(step, iters, batch, **fields):
    """Runs `step` 3 + `iters` times and prints {"median_ms", "images_per_s", "torch",
    "batch", **fields} as one JSON line. `step` must synchronise the device itself."""
    for _ in range(3):
        step()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(json.dumps({"median_ms": median * 1e3, "images_per_s": batch / median, "torch": torch.__version__,
                      "batch": batch, **fields}))
