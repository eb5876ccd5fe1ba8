"""Approximate dot product of 1024 products (product + align + accumulate + normalise).

Compares, per dot product of N = 1024 elements:

* ``numba_kernel``: ``fixedpoint.datapath.dot_nb`` called from a compiled loop (the way the
  quantized inference kernels use it: no Python dispatch per dot product);
* ``numba_call``: one Python call of ``dot_nb`` per dot product (includes numba's dispatch of the
  parameter tuples, a few microseconds);
* ``numpy_reference``: ``Datapath.dot`` (the plain numpy reference, exact Python-int sums);
* ``np_dot_f32_call``: ``numpy.dot`` of two float32 vectors of the same length, one call each;
* ``np_dot_f32_gemv``: the same as a matrix-vector product over many rows (BLAS, amortised).

Each preset runs twice: codes in narrow integers (uint8 weights, uint16 h, as stored in
hardware) and in int64 (as ``encode`` returns them).  256 rows of 1024 weights are cycled, like
the float32 rows of the numpy comparison.

Elements/s = N / seconds per dot product; medians over repeats.  Writes bench/results/dot.json.
Run: ``python bench/bench_dot.py [--repeats 7]``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import timeit, write_result  # noqa: E402
from fixedpoint.datapath import Datapath, dot_nb  # noqa: E402

N = 1024
ROWS = 256


@njit(cache=True)
def _dot_rows(h, W, dp, h_p, w_p, reps):
    """``reps`` passes over the rows of W, one approximate dot product per row."""
    acc = np.int64(0)
    for _ in range(reps):
        for j in range(W.shape[0]):
            a_hi, a_lo, ovf, sig_r, exp_r = dot_nb(h, W[j], dp, h_p, w_p)
            acc += sig_r
    return acc


def _per_dot(fn, count, repeats):
    t = timeit(fn, repeats=repeats, warmup=1)
    return t["median_s"] / count, [s / count for s in t["samples_s"]]


def bench_preset(name: str, repeats: int, narrow: bool) -> dict:
    dp = Datapath.preset(name)
    W, H = dp.formats()
    rng = np.random.default_rng(0)
    h = rng.random(N)
    h /= h.sum()
    hc = H.encode(h, dp.h_rounding, "saturate")
    Wf = rng.random((ROWS, N)) ** 2
    wc = np.ascontiguousarray(W.encode(Wf / Wf.max() * W.max_value * 0.9, dp.weight_rounding, "saturate"))
    if narrow:  # codes stored as the hardware stores them: uint8 weights, uint16 h
        wc = wc.astype(np.uint8 if W.width <= 8 else np.uint16)
        hc = hc.astype(np.uint16 if H.width <= 16 else np.uint32)
    nb, hp, wp = dp.nb, H.nb, W.nb
    reps = 20
    out = {"preset": name, "datapath": dp.text, "N": N, "code_dtypes": [str(hc.dtype), str(wc.dtype)]}

    def kernel():
        _dot_rows(hc, wc, nb, hp, wp, reps)

    s, samples = _per_dot(kernel, reps * ROWS, repeats)
    out["numba_kernel"] = {"s_per_dot": s, "elements_per_s": N / s, "samples_s_per_dot": samples}

    def calls():
        for j in range(ROWS):
            dot_nb(hc, wc[j], nb, hp, wp)

    s, samples = _per_dot(calls, ROWS, repeats)
    out["numba_call"] = {"s_per_dot": s, "elements_per_s": N / s, "samples_s_per_dot": samples}

    def ref():
        for j in range(8):
            dp.dot(hc, wc[j])

    s, samples = _per_dot(ref, 8, max(3, repeats // 2))
    out["numpy_reference"] = {"s_per_dot": s, "elements_per_s": N / s, "samples_s_per_dot": samples}

    # agreement (the benchmark is only meaningful if both compute the same thing)
    for j in range(8):
        A, ovf, sr, er = dp.dot(hc, wc[j])
        a_hi, a_lo, o2, s2, e2 = dot_nb(hc, wc[j], nb, hp, wp)
        assert (a_hi << 32 | a_lo, s2, e2) == (int(A), int(sr), int(er))
    assert int(_dot_rows(hc, wc, nb, hp, wp, 1)) == int(_dot_rows(hc.astype(np.int64), wc.astype(np.int64), nb, hp, wp, 1))
    return out


def bench_np_dot(repeats: int) -> dict:
    rng = np.random.default_rng(0)
    a = rng.random(N).astype(np.float32)
    M = rng.random((ROWS, N)).astype(np.float32)

    def calls():
        for j in range(ROWS):
            np.dot(M[j], a)

    s_call, samples_call = _per_dot(calls, ROWS, repeats)

    def gemv():
        for _ in range(20):
            M @ a

    s_gemv, samples_gemv = _per_dot(gemv, 20 * ROWS, repeats)
    return {"np_dot_f32_call": {"s_per_dot": s_call, "elements_per_s": N / s_call, "samples_s_per_dot": samples_call},
            "np_dot_f32_gemv": {"s_per_dot": s_gemv, "elements_per_s": N / s_gemv, "samples_s_per_dot": samples_gemv}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--presets", default="paper-e4m1,int-e4m1,int-uq0.8")
    args = ap.parse_args(argv)
    ref = bench_np_dot(args.repeats)
    results = {"N": N, **ref, "presets": []}
    for name, narrow in [(n, nw) for n in args.presets.split(",") for nw in (True, False)]:
        r = bench_preset(name, args.repeats, narrow)
        k = r["numba_kernel"]["s_per_dot"]
        r["ratio_numba_kernel_to_np_dot_call"] = k / ref["np_dot_f32_call"]["s_per_dot"]
        r["ratio_numba_kernel_to_np_dot_gemv"] = k / ref["np_dot_f32_gemv"]["s_per_dot"]
        r["ratio_numba_call_to_np_dot_call"] = r["numba_call"]["s_per_dot"] / ref["np_dot_f32_call"]["s_per_dot"]
        r["speedup_numba_kernel_vs_numpy_reference"] = r["numpy_reference"]["s_per_dot"] / k
        results["presets"].append(r)
        print(f"{name:12s} {r['code_dtypes'][1]:6s} numba kernel {k * 1e6:7.2f} us/dot ({N / k / 1e6:6.0f} M elem/s), "
              f"call {r['numba_call']['s_per_dot'] * 1e6:6.2f} us, numpy ref {r['numpy_reference']['s_per_dot'] * 1e6:8.1f} us; "
              f"x np.dot call {r['ratio_numba_kernel_to_np_dot_call']:.2f}, x gemv {r['ratio_numba_kernel_to_np_dot_gemv']:.1f}")
    print(f"np.dot float32: call {ref['np_dot_f32_call']['s_per_dot'] * 1e6:.2f} us, "
          f"gemv {ref['np_dot_f32_gemv']['s_per_dot'] * 1e6:.3f} us per 1024")
    path = write_result("dot", results)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
