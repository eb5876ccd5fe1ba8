"""The accuracy loop shared by the float :class:`sbs_model.model.Model` and the quantized
:class:`sbs_model.quant.QuantizedModel`: input checks, batches, a tqdm bar, Wilson interval."""
from __future__ import annotations

import math
import time

import numpy as np

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``correct / n`` (both bounds in [0, 1])."""
    if n <= 0:
        raise ValueError(f"n must be >= 1, got {n}")
    p = correct / n
    d = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


def check_uint(v, name, limit=2 ** 32):
    """``v`` as an int in ``[0, limit)`` (a seed, a pattern number); ValueError naming ``name`` otherwise."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= int(v) < limit:
        raise ValueError(f"{name} must be an integer in [0, {limit - 1}], got {v!r}")
    return int(v)


def check_inputs(images, labels, batch):
    """Validate uint8 images ``(n >= 1, H, W)``, ``n`` integer labels and ``batch >= 1``;
    return the images and labels as arrays (ValueError naming the argument otherwise)."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[0] < 1:
        raise ValueError(f"images: expected uint8 (n >= 1, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0] or labels.dtype.kind not in "iu":
        raise ValueError(f"labels: expected {images.shape[0]} integers, got {labels.dtype} {labels.shape}")
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
    return images, labels


def accuracy_loop(n: int, batch: int, predict, labels, progress: bool, desc: str) -> dict:
    """Call ``predict(start, stop) -> classes`` over ``[0, n)`` in batches, count the correct
    ones, show a tqdm bar with the running accuracy; returns ``accuracy``, ``ci95``, ``n``,
    ``correct``, ``seconds`` (wall clock) and ``ms_per_pattern``."""
    correct = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, unit="img", desc=desc, leave=False)
    t0 = time.perf_counter()
    try:
        for start in range(0, n, batch):
            stop = min(n, start + batch)
            correct += int(np.sum(predict(start, stop) == labels[start:stop]))
            if bar is not None:
                bar.update(stop - start)
                bar.set_postfix(acc=f"{100.0 * correct / stop:.2f}%")
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    lo, hi = wilson_interval(correct, n)
    return {"accuracy": correct / n, "ci95": [lo, hi], "n": n, "correct": correct, "seconds": seconds,
            "ms_per_pattern": 1e3 * seconds / n}
