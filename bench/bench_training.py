"""Training throughput: patterns/s of forward + backward on the reference MNIST network.

    python bench/bench_training.py [--spikes 1600 400 100] [--repeats 3] [--threads 2]

One batch of 24 MNIST test images (embedded default data), weights U[1, 1.1], numba CPU kernels
(float64) of ``sbs_model.train`` (``cpu``) or the float32 golden inference kernels as forward
(``cpu-golden32``); the forward keeps every layer's input, the backward computes the
weight gradients of all four SbS layers.  Reports medians over repeats; JSON in
``bench/results/training.json``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numba  # noqa: E402
import numpy as np

from bench.common import timeit, write_result
from sbs_model.data import load_dataset, preprocess
from sbs_model.network import reference_mnist
from sbs_model.train.forward import network_forward
from sbs_model.train.gradients import network_backward
from sbs_model.train.rules import backend
from sbs_model.train.losses import mixed_loss
from sbs_model.weights import init_weights


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spikes", type=int, nargs="+", default=[1600, 400, 100])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--devices", nargs="+", default=["cpu", "cpu-golden32"],
                    help="training backends to time (cpu: numba float64 forward; cpu-golden32: the float32 "
                         "inference kernels as forward); the backward is numba float64 in both")
    args = ap.parse_args(argv)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    imgs, labs = load_dataset("mnist", None, "test", args.batch)
    x = preprocess(imgs)
    labels = labs.astype(np.int64)
    B = len(x)
    results = []
    for dev, T in [(d, t) for t in args.spikes for d in args.devices]:
        fwd_layer, bwd_layer = backend(dev)
        net = reference_mnist(T)
        W = {k: v.astype(np.float64) for k, v in init_weights(net, 0).items()}
        rules = {k: 0 for k in W}
        pats = np.arange(B)
        state = {}

        def fwd():
            state["io"] = network_forward(net, W, x, 0, pats, sbs_layer=fwd_layer)

        def bwd():
            ins, outs = state["io"]
            _, g = mixed_loss(outs[-1].reshape(B, -1), labels)
            network_backward(net, W, ins, outs, g, rules, bwd_layer)

        tf = timeit(fwd, repeats=args.repeats, warmup=1)
        tb = timeit(bwd, repeats=args.repeats, warmup=1)
        per = (tf["median_s"] + tb["median_s"]) / B
        row = {"device": dev, "spikes": T, "batch": B, "threads": numba.get_num_threads(),
               "forward_ms_per_pattern": 1e3 * tf["median_s"] / B,
               "backward_ms_per_pattern": 1e3 * tb["median_s"] / B,
               "patterns_per_s": 1.0 / per, "epoch_minutes_60k": 60000 * per / 60.0,
               "forward_samples_s": tf["samples_s"], "backward_samples_s": tb["samples_s"]}
        results.append(row)
        print(f"{dev:13s} T={T:5d}: forward {row['forward_ms_per_pattern']:.2f} ms/pattern, backward "
              f"{row['backward_ms_per_pattern']:.2f} ms/pattern, {row['patterns_per_s']:.1f} patterns/s "
              f"({row['epoch_minutes_60k']:.1f} min per 60k epoch)", flush=True)
    try:
        load = open("/proc/loadavg").read().split()[:3]
    except OSError:
        load = None
    path = write_result("training", results, {"loadavg_at_end": load})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
