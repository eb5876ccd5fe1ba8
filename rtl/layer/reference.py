"""The expected output of a layer engine: the project's quantized model (:mod:`sbs_model.quant_ref`).

:func:`layer_reference` builds the model's :class:`sbs_model.quant_ref.QLayer` for the engine's
parameters and runs :meth:`sbs_model.quant_ref.NumpyKernels.quant_layer` (``fast``: the numba
kernels of :func:`sbs_model.quant_nb.run_quant_layer`, equal by the model's own tests) on the
integer window source: the pixels, or ``floor(h * 2**sampler_frac_bits)`` of the input codes
(:func:`fixedpoint.pooling.window_from_h`).  Returns the codes in the engine's output order:
IP by IP, N channels each.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from fixedpoint.formats import parse_format
from fixedpoint.pooling import window_from_h
from fixedpoint.schedule import Schedule
from sbs_model.quant_nb import run_quant_layer
from sbs_model.quant_ref import NumpyKernels, QLayer


def qlayer(dp, w_codes, w_format, T: int, layer, layer_index: int) -> QLayer:
    """The model's QLayer for these weight codes (the layer's schedule, T spikes)."""
    layer = dataclasses.replace(layer, spikes=int(T))
    N = int(np.asarray(w_codes).shape[1])
    return QLayer(int(layer_index), layer, dp, parse_format(dp.h_format), parse_format(w_format),
                  np.ascontiguousarray(w_codes, dtype=np.int64), dp.tables(int(T), Schedule.from_layer(layer)),
                  np.asarray(dp.initial_h(N), dtype=np.int64), dp.lut())


def window_source(dp, x, input_kind: str) -> np.ndarray:
    """Input values ``(C, H, W)`` -> the model's int64 window source ``(1, C, H, W)``."""
    x = np.asarray(x, dtype=np.int64)[None]
    return x if input_kind == "pixels" else window_from_h(x, dp.h_format, dp.sampler_frac_bits)


def layer_reference(dp, w_codes, w_format, T: int, layer, layer_index: int, x, input_kind: str, seed: int,
                    pattern: int, fast: bool = False) -> list[int]:
    """Output codes of one image (pattern ``pattern``) in engine order (``n_ip * N`` ints)."""
    ql = qlayer(dp, w_codes, w_format, T, layer, layer_index)
    xw = window_source(dp, x, input_kind)
    if fast:
        out, _ = run_quant_layer(ql, xw, seed, pattern)
    else:
        out, _ = NumpyKernels.quant_layer(ql, xw, seed, pattern)
    n, N, ho, wo = out.shape
    return [int(v) for v in out[0].reshape(N, ho * wo).T.reshape(-1)]


__all__ = ["layer_reference", "qlayer", "window_source"]
