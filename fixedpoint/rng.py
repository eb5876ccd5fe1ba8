"""Counter-based random numbers for spike draws, and the spike samplers.

Generator: Threefry-2x32 with 20 rounds (Salmon et al., SC'11, "Random123"), an add-rotate-xor
(ARX) function: 32-bit additions, fixed rotations and xors only, no multiplier, so it is cheap
in hardware (20 adder stages, pipelinable) and every backend computes the same bits.

A spike draw is a pure function of five integers::

    spike_random(seed, pattern, layer, ip, spike) -> uint32
        key     = (seed, pattern)                  each < 2**32
        counter = ((layer << 24) | ip, spike)      layer < 256, ip < 2**24, spike < 2**32
        result  = first output word of threefry2x32_20(counter, key)

so results do not depend on thread count, batch split or the number of hardware units.
``spike_random_batch_nb`` draws all T spikes of one IP at once (32-bit LLVM IR that vectorises
across spikes: the form the kernels use); tests check it against ``spike_random``.

Samplers (one spike index per draw ``r``, a uint32):

* integer (the datapath's): ``cum`` is the cumulative sum of the non-negative integer input
  window, ``total = cum[-1] < 2**31``; ``target = (r * total) >> 32`` and the spike is the first
  ``s`` with ``cum[s] > target``; an all-zero window draws ``s = (r * S) >> 32`` (uniform), the
  exact limit of the float model's ``+1e-20``.
* float (the reference's, docs/algorithm.md): ``u = r / 2**32`` and the spike is the
  first ``s`` with ``cum[s] >= u * cum[-1]``.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import types
from numba.extending import intrinsic

ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
KS_PARITY = 0x1BD11BDA
ROUNDS = 20
MASK32 = 0xFFFFFFFF
LAYER_MAX = 255
IP_MAX = (1 << 24) - 1


def _rotl_np(x, r):
    return ((x << np.uint32(r)) | (x >> np.uint32(32 - r))).astype(np.uint32)


def threefry2x32(ctr0, ctr1, key0, key1, rounds: int = ROUNDS):
    """Threefry-2x32 (numpy, vectorised over broadcastable uint32 arrays) -> (out0, out1)."""
    with np.errstate(over="ignore"):
        k0 = np.asarray(key0, dtype=np.uint32)
        k1 = np.asarray(key1, dtype=np.uint32)
        ks = (k0, k1, np.uint32(KS_PARITY) ^ k0 ^ k1)
        x0 = (np.asarray(ctr0, dtype=np.uint32) + ks[0]).astype(np.uint32)
        x1 = (np.asarray(ctr1, dtype=np.uint32) + ks[1]).astype(np.uint32)
        for r in range(rounds):
            x0 = (x0 + x1).astype(np.uint32)
            x1 = _rotl_np(x1, ROTATIONS[r % 8]) ^ x0
            if r % 4 == 3:
                s = (r + 1) // 4
                x0 = (x0 + ks[s % 3]).astype(np.uint32)
                x1 = (x1 + ks[(s + 1) % 3] + np.uint32(s)).astype(np.uint32)
    return x0, x1


def _check_ids(layer, ip):
    layer = np.asarray(layer)
    ip = np.asarray(ip)
    if np.any(layer < 0) or np.any(layer > LAYER_MAX):
        raise ValueError(f"spike_random: layer must be in 0..{LAYER_MAX}")
    if np.any(ip < 0) or np.any(ip > IP_MAX):
        raise ValueError(f"spike_random: ip must be in 0..{IP_MAX}")


def spike_random(seed, pattern, layer, ip, spike) -> np.ndarray:
    """uint32 draw for (seed, pattern, layer, IP, spike index); numpy, broadcasting."""
    _check_ids(layer, ip)
    c0 = (np.asarray(layer, dtype=np.uint64) << np.uint64(24)) | np.asarray(ip, dtype=np.uint64)
    out0, _ = threefry2x32(
        c0.astype(np.uint32),
        np.asarray(spike, dtype=np.uint64).astype(np.uint32),
        np.asarray(seed, dtype=np.uint64).astype(np.uint32),
        np.asarray(pattern, dtype=np.uint64).astype(np.uint32),
    )
    return out0


@njit(cache=True, inline="always")
def _rotl_nb(x, r):
    return ((x << r) | (x >> (32 - r))) & 0xFFFFFFFF


@njit(cache=True)
def threefry2x32_nb(ctr0, ctr1, key0, key1):
    """Numba scalar Threefry-2x32-20 on Python/uint64 integers holding 32-bit values."""
    m = np.uint64(0xFFFFFFFF)
    k0 = np.uint64(key0) & m
    k1 = np.uint64(key1) & m
    k2 = np.uint64(KS_PARITY) ^ k0 ^ k1
    x0 = (np.uint64(ctr0) + k0) & m
    x1 = (np.uint64(ctr1) + k1) & m
    for r in range(20):
        x0 = (x0 + x1) & m
        rot = np.uint64(ROTATIONS[r % 8])
        x1 = (((x1 << rot) | (x1 >> (np.uint64(32) - rot))) & m) ^ x0
        if r % 4 == 3:
            s = (r + 1) // 4
            j = s % 3
            kk0 = k0 if j == 0 else (k1 if j == 1 else k2)
            j1 = (s + 1) % 3
            kk1 = k0 if j1 == 0 else (k1 if j1 == 1 else k2)
            x0 = (x0 + kk0) & m
            x1 = (x1 + kk1 + np.uint64(s)) & m
    return x0, x1


@njit(cache=True)
def spike_random_nb(seed, pattern, layer, ip, spike):
    """Numba scalar twin of :func:`spike_random`; returns the draw as a uint64 < 2**32."""
    c0 = (np.uint64(layer) << np.uint64(24)) | np.uint64(ip)
    x0, _ = threefry2x32_nb(c0, np.uint64(spike), np.uint64(seed), np.uint64(pattern))
    return x0


@intrinsic
def _threefry_x0(typingctx, c0, c1, k0, k1):
    """First output word of Threefry-2x32-20(counter (c0, c1), key (k0, k1)) as i32 IR (adds,
    rotates, xors on 32 bits, so LLVM vectorises a loop of them 16 lanes wide)."""
    sig = types.uint32(c0, c1, k0, k1)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        c0v, c1v, k0v, k1v = (context.cast(builder, a, t, types.uint32) for a, t in zip(args, signature.args))

        def rotl(v, n):
            return builder.or_(builder.shl(v, ir.Constant(i32, n)), builder.lshr(v, ir.Constant(i32, 32 - n)))

        ks = [k0v, k1v, builder.xor(builder.xor(ir.Constant(i32, KS_PARITY), k0v), k1v)]
        x0 = builder.add(c0v, ks[0])
        x1 = builder.add(c1v, ks[1])
        for r in range(20):
            x0 = builder.add(x0, x1)
            x1 = builder.xor(rotl(x1, ROTATIONS[r % 8]), x0)
            if r % 4 == 3:
                s = (r + 1) // 4
                x0 = builder.add(x0, ks[s % 3])
                x1 = builder.add(builder.add(x1, ks[(s + 1) % 3]), ir.Constant(i32, s))
        return x0

    return sig, codegen


@njit(cache=True)
def spike_random_batch_nb(seed, pattern, layer_index, ip, n_t, out):
    """``out[t] = spike_random(seed, pattern, layer_index, ip, t)`` for ``t < n_t`` (uint32),
    vectorised across ``t``; equal to :func:`spike_random_nb` (tested); the
    fast form the kernels use."""
    c0 = np.uint32((np.uint64(layer_index) << np.uint64(24)) | np.uint64(ip))
    k0 = np.uint32(seed)
    k1 = np.uint32(pattern)
    for t in range(n_t):
        out[t] = _threefry_x0(c0, np.uint32(t), k0, k1)


# ----------------------------------------------------------------------------- samplers

def sample_index_int(cum, r) -> np.ndarray:
    """Integer sampler (numpy): spike index for draws ``r`` (uint32) given the window's
    cumulative sum ``cum`` (non-decreasing int64, total < 2**31)."""
    cum = np.asarray(cum, dtype=np.int64)
    r = np.asarray(r, dtype=np.uint64).astype(np.int64)
    total = int(cum[-1])
    if total >= 1 << 31:
        raise ValueError("sample_index_int: window total must be < 2**31")
    if total == 0:
        return (r * cum.shape[0]) >> 32
    target = (r * total) >> 32
    return np.searchsorted(cum, target, side="right").astype(np.int64)


@njit(cache=True)
def sample_index_int_nb(cum, n, r):
    """Numba twin of :func:`sample_index_int` for one draw; ``cum[:n]`` is the window."""
    total = np.int64(cum[n - 1])
    rr = np.int64(r)
    if total == 0:
        return (rr * n) >> 32
    target = (rr * total) >> 32
    lo = 0
    hi = n - 1
    while lo < hi:  # first s with cum[s] > target
        mid = (lo + hi) >> 1
        if cum[mid] > target:
            hi = mid
        else:
            lo = mid + 1
    return np.int64(lo)



@njit(cache=True)
def sample_thresholds_int_nb(cum, n, out):
    """Draw thresholds of the integer sampler on the window ``cum[:n]``: ``out[j]`` (``j < n-1``)
    is the smallest draw ``r`` (in ``[0, 2**32]``, ``2**32`` = never) with
    ``sample_index_int_nb(cum, n, r) > j``, so the spike of draw ``r`` is ``#{j : r >= out[j]}``.

    ``cum[j] <= (r*total) >> 32  <=>  r >= ceil(cum[j] * 2**32 / total)``; for an all-zero window
    ``(r*n) >> 32 > j  <=>  r >= ceil((j+1) * 2**32 / n)``.  Exact integer arithmetic
    (``cum < 2**31``), so counting thresholds gives the same index as the binary search (tested)."""
    total = np.int64(cum[n - 1])
    for j in range(n - 1):
        if total == 0:
            num = np.int64(j + 1) << 32
            den = np.int64(n)
        else:
            num = np.int64(cum[j]) << 32
            den = total
        out[j] = (num + den - 1) // den

def sample_index_float(cum, r) -> np.ndarray:
    """Float sampler (numpy): first ``s`` with ``cum[s] >= (r / 2**32) * cum[-1]``."""
    cum = np.asarray(cum, dtype=np.float64)
    u = np.asarray(r, dtype=np.float64) * (1.0 / 4294967296.0)
    idx = np.searchsorted(cum, u * cum[-1], side="left")
    return np.minimum(idx, cum.shape[0] - 1).astype(np.int64)


@njit(cache=True)
def sample_index_float_nb(cum, n, r):
    """Numba twin of :func:`sample_index_float` for one draw; ``cum[:n]`` is the window."""
    target = (np.float64(r) * (1.0 / 4294967296.0)) * cum[n - 1]
    lo = 0
    hi = n - 1
    while lo < hi:  # first s with cum[s] >= target
        mid = (lo + hi) >> 1
        if cum[mid] >= target:
            hi = mid
        else:
            lo = mid + 1
    return np.int64(lo)
