"""Bit-exact quantized inference vs the float golden model: ms per pattern, side by side.

The reference MNIST network with the pytorch-sbs weights at T spikes per IP (default 1600), the
same embedded test images for every model, in the same run: the float golden model
(``sbs_model.model.Model``, float32 numba kernels) and the quantized model
(``sbs_model.quant.QuantizedModel``) with the ``int-e4m1`` and ``paper`` datapaths, each on the
``numba`` backend (vectorised kernels) and on ``numba-generic`` (``step_nb`` per spike: the
previous implementation, same integers).
Each model first runs one image untimed (numba compile / cache load), then ``--repeats`` timed
runs over ``--n`` images; ms per pattern from the median run; ratio = quantized / float.
Writes ``bench/results/quant_inference.json``.

    python -m bench.bench_quant_inference [--n 8] [--repeats 3] [--spikes 1600]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import timeit, write_result  # noqa: E402

WEIGHTS = str(Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "pytorch-sbs-mnist")
RUNS = (("int-e4m1", "numba"), ("int-e4m1", "numba-generic"), ("paper", "numba"), ("paper", "numba-generic"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8, help="images per timed run (default 8)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per model (default 3)")
    ap.add_argument("--spikes", type=int, default=1600, help="spikes per IP (default 1600)")
    ap.add_argument("--weights", default=WEIGHTS, help="pytorch-sbs directory or .npz weights")
    args = ap.parse_args(argv)

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

    fm = Model(net, weights, dtype="float32")
    fm.predict(x[:1])
    pred = {}
    t = timeit(lambda: pred.__setitem__("float", fm.predict(x)), repeats=args.repeats, warmup=0)
    out["float32_golden"] = dict(t, ms_per_pattern=1e3 * t["median_s"] / args.n,
                                 predictions=pred["float"].tolist())
    print(f"float32 golden: {out['float32_golden']['ms_per_pattern']:.1f} ms per pattern", flush=True)
    codes = {}
    for dp_name, backend in RUNS:
        name = dp_name if backend == "numba" else f"{dp_name} ({backend})"
        qm = QuantizedModel(net, weights, dp_name, backend=backend)
        qm.predict(images[:1])
        t = timeit(lambda: pred.__setitem__(name, qm.predict(images)), repeats=args.repeats, warmup=0)
        ms = 1e3 * t["median_s"] / args.n
        out[name] = dict(t, ms_per_pattern=ms, ratio_to_float=ms / out["float32_golden"]["ms_per_pattern"],
                         predictions=pred[name].tolist(), backend=backend,
                         agree_with_float=float(np.mean(pred[name] == pred["float"])))
        last = qm.trace(images[:2]).outputs[-1]  # the two backends' integers must be equal
        if dp_name in codes and not np.array_equal(codes[dp_name], last):
            raise SystemExit(f"{name}: output codes differ from the other backend's")
        codes[dp_name] = last
        print(f"{name}: {ms:.1f} ms per pattern, {out[name]['ratio_to_float']:.1f}x float", flush=True)
    path = write_result("quant_inference", out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
