"""Encode/decode throughput of number formats: numpy reference vs numba (parallel) kernels.

For each format: 1e6 float64 values spread over the format's range (plus some out of range,
saturated) are encoded with RNE, and 1e6 random codes are decoded, to float64 and to parts.
Elements per second from the median of 5 runs (after one warm-up that also compiles numba).
Writes ``bench/results/formats.json``.

    python -m bench.bench_formats [--n 1000000] [--repeats 5]
"""
from __future__ import annotations

import argparse

import numpy as np

from bench.common import timeit, write_result
from fixedpoint.formats import (
    RNE, SATURATE, decode_array_nb, decode_parts_array_nb, encode_array_nb, encode_parts_array_nb,
    float_to_parts, parse_format,
)

FORMATS = ["e4m1", "e4m4", "e5m11z", "se5m10b15d", "uq0.16", "sq1.14"]


def inputs(fmt, n, rng):
    """Values log-uniform over [min_positive/2, 2*max_value] (signed formats: both signs)."""
    lo, hi = np.log2(fmt.min_positive / 2), np.log2(fmt.max_value * 2)
    x = np.exp2(rng.uniform(lo, hi, n))
    if fmt.signed:
        x *= np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return x


def bench_format(text, n, repeats):
    fmt = parse_format(text)
    rng = np.random.default_rng(0)
    x = inputs(fmt, n, rng)
    codes = rng.integers(0, fmt.n_codes, n, dtype=np.int64)
    sig, exp, _ = float_to_parts(x)
    p = fmt.nb
    # identical results first: the benchmark compares equal work
    assert np.array_equal(fmt.encode(x, "rne", "saturate"), encode_array_nb(x, p, RNE, SATURATE)[0])
    assert np.array_equal(fmt.decode(codes), decode_array_nb(codes, p))
    cases = {
        "encode": (lambda: fmt.encode(x, "rne", "saturate"), lambda: encode_array_nb(x, p, RNE, SATURATE)),
        "encode_parts": (lambda: fmt.encode_parts_flags(sig, exp, "rne", "saturate"),
                         lambda: encode_parts_array_nb(sig, exp, p, RNE, SATURATE)),
        "decode": (lambda: fmt.decode(codes), lambda: decode_array_nb(codes, p)),
        "decode_parts": (lambda: fmt.decode_parts(codes), lambda: decode_parts_array_nb(codes, p)),
    }
    out = {}
    for op, (f_np, f_nb) in cases.items():
        t_np = timeit(f_np, repeats=repeats)
        t_nb = timeit(f_nb, repeats=repeats)
        out[op] = {
            "numpy": {**t_np, "elements_per_s": n / t_np["median_s"]},
            "numba": {**t_nb, "elements_per_s": n / t_nb["median_s"]},
            "speedup": t_np["median_s"] / t_nb["median_s"],
        }
        print(f"{text:12s} {op:13s} numpy {n / t_np['median_s'] / 1e6:8.1f} M/s   "
              f"numba {n / t_nb['median_s'] / 1e6:8.1f} M/s   x{out[op]['speedup']:.1f}", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="elements per call (default 1e6)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per case (median reported)")
    args = ap.parse_args(argv)
    results = {"n": args.n, "repeats": args.repeats, "rounding": "rne", "overflow": "saturate",
               "formats": {t: bench_format(t, args.n, args.repeats) for t in FORMATS}}
    path = write_result("formats", results)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
