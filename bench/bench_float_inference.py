"""Float golden inference speed: reference MNIST network, T = 1600 spikes per IP.

Variants (same weights, same images, same seed):
  numba_float32  the golden kernels, float32 fast mode   (sbs_model.kernels_cpu, all threads)
  numba_float64  the golden kernels, float64              (bit-identical to the reference)
  numpy_ref      sbs_model.float_ref, float64, on a small subset
  naive_numba    anchor: a straightforward numba port, one IP at a time, one spike at a time
                 (draw, sample, sequential dot product, update), no prange, no fusion

Times are medians over repeats (wall clock, ``bench.common.timeit``); ``cpu_ms_per_pattern`` is
process CPU time (all threads) per pattern, which is less sensitive to other load on the machine.
Writes ``bench/results/float_inference.json``.

    python bench/bench_float_inference.py [--patterns 40] [--repeats 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import timeit, write_result  # noqa: E402
from fixedpoint.rng import sample_index_float_nb, spike_random_nb  # noqa: E402
from sbs_model import float_ref, kernels_cpu  # noqa: E402
from sbs_model.network import reference_mnist  # noqa: E402
from sbs_model.unfold import pool, unfold  # noqa: E402

PYTORCH_SBS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pytorch-sbs-mnist"


@njit(cache=True)
def naive_sbs_layer(win, w, eps, seed, first_pattern, layer_index):
    """Anchor: per IP, per spike: draw, sample, dot product, update (float64, one thread)."""
    n_pat, n_ip, s_len = win.shape
    n = w.shape[1]
    out = np.empty((n_pat, n_ip, n))
    for b in range(n_pat):
        for ip in range(n_ip):
            cum = np.cumsum(win[b, ip])
            h = np.full(n, 1.0 / n)
            for t in range(eps.shape[0]):
                r32 = spike_random_nb(seed, first_pattern + b, layer_index, ip, t)
                s = sample_index_float_nb(cum, s_len, r32)
                r = 0.0
                for i in range(n):
                    r += h[i] * w[s, i]
                if r > 1e-10:
                    for i in range(n):
                        h[i] = (h[i] + eps[t] * h[i] * w[s, i] / r) / (1.0 + eps[t])
            out[b, ip] = h
    return out


def naive_forward(net, weights, x, seed=0):
    x = x.astype(np.float64)
    for li, layer in enumerate(net.layers):
        if layer.is_sbs:
            eps, _ = float_ref.eps_tables(layer)
            h = naive_sbs_layer(unfold(x, layer), weights[li].astype(np.float64), eps, seed, 0, li)
            ho, wo = layer.output_hw(x.shape[2], x.shape[3])
            x = np.ascontiguousarray(h.reshape(x.shape[0], ho, wo, -1).transpose(0, 3, 1, 2))
        else:
            x = pool(x, layer)
    return x.reshape(x.shape[0], -1)


def load_inputs(n):
    from sbs_model.data import load_dataset, preprocess

    images, labels = load_dataset(n=n)
    return preprocess(images), labels


def load_weights(net):
    if (PYTORCH_SBS / "Weight_L0_S199.npy").is_file():
        from sbs_model.weights import load_any

        return load_any(PYTORCH_SBS, net)[0], "pytorch-sbs"
    from sbs_model.weights import init_weights

    return init_weights(net, 0), "random (pytorch-sbs weights not found)"


def measure(fn, n, repeats):
    fn()  # warm-up: JIT compilation / cache load, not timed
    cpu0 = time.process_time()
    t = timeit(fn, repeats=repeats, warmup=0)
    cpu = (time.process_time() - cpu0) / repeats
    ms = 1e3 * t["median_s"] / n
    return {"patterns": n, "ms_per_pattern": ms, "patterns_per_s": 1e3 / ms,
            "cpu_ms_per_pattern": 1e3 * cpu / n, "samples_s": t["samples_s"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patterns", type=int, default=40, help="images for the numba kernels (default 40)")
    ap.add_argument("--ref-patterns", type=int, default=2, help="images for the numpy reference (default 2)")
    ap.add_argument("--naive-patterns", type=int, default=4, help="images for the naive port (default 4)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--agree-patterns", type=int, default=500,
                    help="images for the float32-vs-float64 agreement check (default 500)")
    args = ap.parse_args(argv)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    net = reference_mnist(1600)
    weights, source = load_weights(net)
    x, labels = load_inputs(max(args.patterns, args.agree_patterns))
    load0 = os.getloadavg()
    res = {}
    for dt in ("float32", "float64"):
        xs = x[:args.patterns]
        res[f"numba_{dt}"] = measure(lambda: kernels_cpu.forward(net, weights, xs, dtype=dt), len(xs), args.repeats)
        print(f"numba {dt}: {res[f'numba_{dt}']['ms_per_pattern']:.2f} ms/pattern", flush=True)
    xr = x[:args.ref_patterns]
    res["numpy_ref"] = measure(lambda: float_ref.forward(net, weights, xr), len(xr), max(1, args.repeats // 2))
    print(f"numpy reference: {res['numpy_ref']['ms_per_pattern']:.1f} ms/pattern", flush=True)
    xn = x[:args.naive_patterns]
    numba.set_num_threads(1)
    res["naive_numba"] = measure(lambda: naive_forward(net, weights, xn), len(xn), max(1, args.repeats // 2))
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    print(f"naive numba port: {res['naive_numba']['ms_per_pattern']:.2f} ms/pattern", flush=True)
    # float32 fast mode vs float64 on more images
    xa = x[:args.agree_patterns]
    h64 = kernels_cpu.forward(net, weights, xa, dtype="float64")
    h32 = kernels_cpu.forward(net, weights, xa, dtype="float32")
    d = np.abs(h64 - h32)
    agreement = {"patterns": len(xa), "class_agreement": float(np.mean(h64.argmax(1) == h32.argmax(1))),
                 "max_abs_h_diff": float(d.max()), "median_abs_h_diff": float(np.median(d)),
                 "accuracy_float64": float(np.mean(h64.argmax(1) == labels[:len(xa)])),
                 "accuracy_float32": float(np.mean(h32.argmax(1) == labels[:len(xa)]))}
    print(f"float32 vs float64 on {len(xa)} images: agreement {agreement['class_agreement']:.4f}, "
          f"max |dh| {agreement['max_abs_h_diff']:.2g}", flush=True)
    for k in ("numba_float32", "numba_float64", "numpy_ref"):
        res[k]["speedup_vs_naive"] = res["naive_numba"]["ms_per_pattern"] / res[k]["ms_per_pattern"]
    path = write_result("float_inference", res, extra={
        "network": "reference-mnist", "spikes": 1600, "threads": args.threads, "weights": source,
        "loadavg_before": list(load0), "loadavg_after": list(os.getloadavg()),
        "float32_vs_float64": agreement})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
