"""Adapter: the inference engineers' golden CPU kernels (:mod:`sbs_model.kernels_cpu`, the
``sbs eval`` forward) as the training forward of one SbS layer.

Their kernel keys spike trains by ``first_pattern + b``; the trainer's pattern keys within one
batch are consecutive (``epoch * n_train + pos + b``), which this adapter checks.  ``dtype``
float32 is their fast mode; h is returned as float64 for the backward.  With this forward the
network is trained with exactly the spike dynamics ``sbs eval`` uses (their 8-lane operation
order) instead of :mod:`forward_nb`'s float64 order.  (Pooling between SbS layers stays the
float64 :func:`sbs_model.train.forward.pool_forward`; its result is rounded to float32 at the
next SbS layer, which can differ from float32 pooling by one unit in the last place.)
"""
from __future__ import annotations

import numpy as np

from sbs_model.network import LayerSpec


def make_golden_forward(dtype: str = "float32"):
    from sbs_model import kernels_cpu

    dt = {"float32": np.float32, "float64": np.float64}[dtype]

    def sbs_layer_golden(x, W, layer: LayerSpec, layer_index: int, seed: int, patterns) -> np.ndarray:
        patterns = np.asarray(patterns, dtype=np.int64)
        if patterns.size and not np.array_equal(patterns, patterns[0] + np.arange(patterns.size)):
            raise ValueError("patterns: the golden kernels need consecutive pattern keys")
        out = kernels_cpu.run_sbs_layer(np.ascontiguousarray(x, dtype=dt), layer, np.ascontiguousarray(W, dtype=dt),
                                        layer_index, seed, int(patterns[0]) if patterns.size else 0)
        return out.astype(np.float64)

    return sbs_layer_golden
