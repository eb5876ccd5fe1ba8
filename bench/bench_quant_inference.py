"""Bit-exact quantized inference vs the float golden model: ms per pattern, side by side.

The reference MNIST network with the pytorch-sbs weights at T spikes per IP (default 1600), the
same embedded test images for every model, in the same run: the float golden model
(``sbs_model.model.Model``, float32 numba kernels) and the quantized model
(``sbs_model.quant.QuantizedModel``) with the ``int-e4m1`` and ``paper`` datapaths, each on the
``numba`` backend (vectorised kernels) and on ``numba-generic`` (``step_nb`` per spike: the
previous implementation, same integers), and the ``scaled-e4m1`` / ``cheap-e4m1`` datapaths
(docs/cheap-update.md) on ``numba`` (``--no-generic``: skip the slow generic runs).
Each model first runs one image untimed (numba compile / cache load), then ``--repeats`` timed
rounds over ``--n`` images: every round times the float model and every quantized model one
after the other (so a change of machine load hits all of them alike); ms per pattern from each
model's median run; ratio = quantized / float (of the medians).  The machine's load average is
recorded before and after.
Writes ``bench/results/quant_inference.json``.

    python -m bench.bench_quant_inference [--n 8] [--repeats 3] [--spikes 1600] [--no-generic]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import write_result  # noqa: E402

WEIGHTS = str(Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "pytorch-sbs-mnist")
RUNS = (("int-e4m1", "numba"), ("int-e4m1", "numba-generic"), ("paper", "numba"), ("paper", "numba-generic"),
        ("scaled-e4m1", "numba"), ("cheap-e4m1", "numba"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8, help="images per timed run (default 8)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per model (default 3)")
    ap.add_argument("--spikes", type=int, default=1600, help="spikes per IP (default 1600)")
    ap.add_argument("--weights", default=WEIGHTS, help="pytorch-sbs directory or .npz weights")
    ap.add_argument("--no-generic", action="store_true", help="skip the numba-generic runs")
    args = ap.parse_args(argv)
    for name in ("n", "repeats", "spikes"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} {getattr(args, name)}: must be >= 1")

    from sbs_model.configs import load_network
    from sbs_model.data import load_embedded, preprocess
    from sbs_model.model import Model
    from sbs_model.quant import QuantizedModel
    from sbs_model.weights import load_any

    net = load_network("reference-mnist", spikes=args.spikes)
    weights, _ = load_any(args.weights, net)
    images, labels = load_embedded(args.n)
    x = preprocess(images)
    out = {"network": net.name, "spikes": args.spikes, "n": args.n, "repeats": args.repeats,
           "threads": numba.get_num_threads(), "labels": labels.tolist()}

    out["load_before"] = list(os.getloadavg())
    fm = Model(net, weights, dtype="float32")
    fm.predict(x[:1])
    pred = {}
    models = {"float32_golden": lambda: fm.predict(x)}
    runs = [(d, b) for d, b in RUNS if not (args.no_generic and b == "numba-generic")]
    codes = {}
    for dp_name, backend in runs:
        name = dp_name if backend == "numba" else f"{dp_name} ({backend})"
        qm = QuantizedModel(net, weights, dp_name, backend=backend)
        qm.predict(images[:1])
        last = qm.trace(images[:2]).outputs[-1]  # the two backends' integers must be equal
        if dp_name in codes and not np.array_equal(codes[dp_name], last):
            raise SystemExit(f"{name}: output codes differ from the other backend's")
        codes[dp_name] = last
        models[name] = (lambda q: lambda: q.predict(images))(qm)
    samples = {name: [] for name in models}
    for r in range(args.repeats):  # interleaved rounds: load changes hit every model alike
        for name, fn in models.items():
            t0 = time.perf_counter()
            pred[name] = fn()
            samples[name].append(time.perf_counter() - t0)
        print(f"round {r + 1}/{args.repeats}: " + ", ".join(
            f"{k} {1e3 * v[-1] / args.n:.1f}" for k, v in samples.items()) + " ms per pattern", flush=True)
    f_ms = 1e3 * float(np.median(samples["float32_golden"])) / args.n
    out["float32_golden"] = dict(median_s=float(np.median(samples["float32_golden"])),
                                 samples_s=samples["float32_golden"], ms_per_pattern=f_ms,
                                 predictions=pred["float32_golden"].tolist())
    print(f"float32 golden: {f_ms:.1f} ms per pattern", flush=True)
    for (dp_name, backend), name in zip(runs, list(models)[1:]):
        med = float(np.median(samples[name]))
        ms = 1e3 * med / args.n
        out[name] = dict(median_s=med, samples_s=samples[name], ms_per_pattern=ms, ratio_to_float=ms / f_ms,
                         predictions=pred[name].tolist(), backend=backend,
                         agree_with_float=float(np.mean(pred[name] == pred["float32_golden"])))
        print(f"{name}: {ms:.1f} ms per pattern, {out[name]['ratio_to_float']:.2f}x float", flush=True)
    out["load_after"] = list(os.getloadavg())
    path = write_result("quant_inference", out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
