"""Receptive fields (PyTorch ``unfold`` order) and pooling of ``h`` tensors.

Tensors are ``(n, C, H, W)`` (pattern, channel, row, column).  A layer's IPs are numbered
``ip = oy * W_out + ox``; IP ``ip`` sees the input values ``u_s`` with
``s = c*kh*kw + ky*kw + kx`` at row ``oy*stride_y - pad_y + ky*dil_y`` and column
``ox*stride_x - pad_x + kx*dil_x`` (zero outside the input: zero padding).

:func:`unfold_index` gives, once per layer, the flat input index of every ``(ip, s)`` (``-1`` for
padding), so the numpy reference and the numba kernels read exactly the same values.
"""
from __future__ import annotations

import numpy as np

from sbs_model.network import LayerSpec


def unfold_index(in_shape, layer: LayerSpec) -> np.ndarray:
    """int64 ``(n_ip, S)``: flat index into a ``C*H*W`` input for IP ``ip`` and window position
    ``s`` (PyTorch unfold order), ``-1`` where the window lies in the zero padding."""
    c_in, h, w = (int(v) for v in in_shape)
    if c_in != layer.in_channels:
        raise ValueError(f"in_shape: {c_in} channels, but the layer expects in_channels={layer.in_channels}")
    ho, wo = layer.output_hw(h, w)
    (kh, kw), (sy, sx), (dy, dx), (py, px) = layer.kernel, layer.stride, layer.dilation, layer.padding
    oy = np.arange(ho).reshape(ho, 1, 1, 1, 1)
    ox = np.arange(wo).reshape(1, wo, 1, 1, 1)
    c = np.arange(c_in).reshape(1, 1, c_in, 1, 1)
    ky = np.arange(kh).reshape(1, 1, 1, kh, 1)
    kx = np.arange(kw).reshape(1, 1, 1, 1, kw)
    y = oy * sy - py + ky * dy
    x = ox * sx - px + kx * dx
    inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    flat = c * (h * w) + y * w + x
    flat = np.where(inside, flat, -1)
    flat = np.broadcast_to(flat, (ho, wo, c_in, kh, kw))
    return np.ascontiguousarray(flat.reshape(ho * wo, c_in * kh * kw)).astype(np.int64)


def unfold(x: np.ndarray, layer: LayerSpec) -> np.ndarray:
    """Receptive fields of every IP: ``x`` ``(n, C, H, W)`` -> ``(n, n_ip, S)`` (same dtype),
    zeros in the padding."""
    n = x.shape[0]
    idx = unfold_index(x.shape[1:], layer)
    flat = x.reshape(n, -1)
    out = np.zeros((n,) + idx.shape, dtype=x.dtype)
    ok = idx >= 0
    out[:, ok] = flat[:, idx[ok]]
    return out


def pool(h: np.ndarray, layer: LayerSpec) -> np.ndarray:
    """Average or max pooling (``layer.kind`` ``avgpool``/``maxpool``) of ``h`` ``(n, C, H, W)``
    -> ``(n, C, H_out, W_out)``, same dtype.

    Average: window values added one by one in ``(ky, kx)`` order starting from 0, then divided
    by ``kh*kw`` (padding counts as zeros, PyTorch ``count_include_pad=True``).  Max: the largest
    value inside the input (padding ignored)."""
    if layer.kind not in ("avgpool", "maxpool"):
        raise ValueError(f"layer.kind must be 'avgpool' or 'maxpool', got {layer.kind!r}")
    n, c, hh, ww = h.shape
    ho, wo = layer.output_hw(hh, ww)
    one = LayerSpec("sbs", 1, 1, layer.kernel, layer.stride, layer.dilation, layer.padding)
    idx = unfold_index((1, hh, ww), one)  # (n_ip, kh*kw)
    flat = h.reshape(n * c, hh * ww)
    k = idx.shape[1]
    if layer.kind == "avgpool":
        acc = np.zeros((n * c, idx.shape[0]), dtype=h.dtype)
        for j in range(k):
            col = idx[:, j]
            vals = np.where(col >= 0, flat[:, np.maximum(col, 0)], h.dtype.type(0))
            acc = acc + vals
        out = acc / h.dtype.type(k)
    else:
        out = np.full((n * c, idx.shape[0]), -np.inf, dtype=h.dtype)
        for j in range(k):
            col = idx[:, j]
            vals = np.where(col >= 0, flat[:, np.maximum(col, 0)], h.dtype.type(-np.inf))
            out = np.maximum(out, vals)
    return out.reshape(n, c, ho, wo).astype(h.dtype, copy=False)


def sbspool_weights(layer: LayerSpec, dtype=np.float64) -> np.ndarray:
    """Fixed weights of an ``sbspool`` layer, ``(C*kh*kw, C)``:
    ``W[(c,ky,kx), i] = 1/(kh*kw)`` if ``c == i`` else 0 (every column sums to 1)."""
    c = layer.in_channels
    k = layer.kernel[0] * layer.kernel[1]
    w = np.zeros((c * k, c), dtype=np.float64)
    for i in range(c):
        w[i * k:(i + 1) * k, i] = 1.0 / k
    return w.astype(dtype)
