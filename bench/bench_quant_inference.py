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
model's median run; ratio = quantized / float (of the medians; ``best_*``: of the fastest runs;
``paired_ratio_*``: the median and range of the round-by-round ratios, each round's two runs taken
back to back, so a load change between rounds cancels).
Both the wall time and the process CPU time (all threads) of every run are kept: on a machine
that other jobs load, the wall time of a run includes the time its threads waited for a core, the
CPU time does not.
The numba thread count (``NUMBA_NUM_THREADS``), the CPUs the process may run on (e.g. pinned
with ``taskset -c 1``) and the load average before and after are recorded.
Writes ``bench/results/quant_inference.json`` (``--merge``: keep the runs of the other thread / CPU
configurations under ``runs``, each with its command, commit, date and load) and
``quant_inference.png``.

    python -m bench.bench_quant_inference [--n 8] [--repeats 3] [--spikes 1600] [--no-generic] [--merge]
    NUMBA_NUM_THREADS=1 taskset -c 1 python -m bench.bench_quant_inference --n 16 --repeats 9 --no-generic --merge
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import RESULTS, write_result  # noqa: E402
from sbs_model.atomic import atomic_path  # noqa: E402
from sbs_model.provenance import commit  # noqa: E402

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
    ap.add_argument("--merge", action="store_true",
                    help="keep the runs of the other thread / CPU configurations in the JSON")
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
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count()))
    out = {"network": net.name, "spikes": args.spikes, "n": args.n, "repeats": args.repeats,
           "threads": numba.get_num_threads(), "cpus": cpus, "labels": labels.tolist(),
           "command": " ".join((["NUMBA_NUM_THREADS=" + os.environ["NUMBA_NUM_THREADS"]]
                                if "NUMBA_NUM_THREADS" in os.environ else []) + ["python -m bench.bench_quant_inference"]
                               + sys.argv[1:])}

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
    cpu = {name: [] for name in models}
    for r in range(args.repeats):  # interleaved rounds: load changes hit every model alike
        for name, fn in models.items():
            c0, t0 = time.process_time(), time.perf_counter()
            pred[name] = fn()
            samples[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
        print(f"round {r + 1}/{args.repeats}: " + ", ".join(
            f"{k} {1e3 * v[-1] / args.n:.1f}" for k, v in samples.items()) + " ms per pattern", flush=True)
    f_ms = 1e3 * float(np.median(samples["float32_golden"])) / args.n
    f_cpu = 1e3 * float(np.median(cpu["float32_golden"])) / args.n
    f_best = 1e3 * float(np.min(samples["float32_golden"])) / args.n
    out["float32_golden"] = dict(median_s=float(np.median(samples["float32_golden"])),
                                 samples_s=samples["float32_golden"], ms_per_pattern=f_ms,
                                 cpu_samples_s=cpu["float32_golden"], cpu_ms_per_pattern=f_cpu,
                                 best_ms_per_pattern=f_best, predictions=pred["float32_golden"].tolist())
    print(f"float32 golden: {f_ms:.1f} ms per pattern (CPU {f_cpu:.1f} ms)", flush=True)
    for (dp_name, backend), name in zip(runs, list(models)[1:]):
        med = float(np.median(samples[name]))
        ms = 1e3 * med / args.n
        cms = 1e3 * float(np.median(cpu[name])) / args.n
        best = 1e3 * float(np.min(samples[name])) / args.n
        paired = np.array(samples[name]) / np.array(samples["float32_golden"])  # round by round
        out[name] = dict(median_s=med, samples_s=samples[name], ms_per_pattern=ms, ratio_to_float=ms / f_ms,
                         paired_ratio_median=float(np.median(paired)),
                         paired_ratio_range=[float(paired.min()), float(paired.max())],
                         cpu_samples_s=cpu[name], cpu_ms_per_pattern=cms, cpu_ratio_to_float=cms / f_cpu,
                         best_ms_per_pattern=best, best_ratio_to_float=best / f_best,
                         predictions=pred[name].tolist(), backend=backend,
                         agree_with_float=float(np.mean(pred[name] == pred["float32_golden"])))
        print(f"{name}: {ms:.1f} ms per pattern, {out[name]['ratio_to_float']:.2f}x float "
              f"(CPU {cms:.1f} ms, {out[name]['cpu_ratio_to_float']:.2f}x; round by round "
              f"{np.median(paired):.2f}x, {paired.min():.2f}-{paired.max():.2f})", flush=True)
    out["load_after"] = list(os.getloadavg())
    out["runs"] = _merged_runs(out, args.merge)
    path = write_result("quant_inference", out)
    print(f"wrote {path}")
    print(f"wrote {plot(out['runs'], RESULTS / 'quant_inference.png')}")
    return 0


def run_key(run: dict) -> str:
    return f"threads={run['threads']} cpus={','.join(map(str, run['cpus']))}"


def _merged_runs(out: dict, merge: bool) -> dict:
    """This run's summary under its configuration key, plus (``merge``) the other configurations'
    summaries from the existing JSON (each with its own command, commit, date and load)."""
    keep = ("network", "spikes", "n", "repeats", "threads", "cpus", "command", "load_before", "load_after")
    summary = {k: out[k] for k in keep}
    summary["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    summary["commit"] = commit()
    summary["models"] = {name: {k: v for k, v in res.items() if k not in ("predictions", "backend")}
                         for name, res in out.items() if isinstance(res, dict) and "ms_per_pattern" in res}
    runs = {}
    path = RESULTS / "quant_inference.json"
    if merge and path.exists():
        old = json.loads(path.read_text()).get("results", {}).get("runs", {})
        runs = dict(old)
    runs[run_key(out)] = summary
    return runs


def plot(runs: dict, path: Path) -> Path:
    """Grouped bars: ms per pattern (wall and CPU median) of every model, one panel per thread /
    CPU configuration, the ratio to the float golden model written on each bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs), 3.6), squeeze=False)
    for ax, (key, run) in zip(axes[0], sorted(runs.items())):
        names = list(run["models"])
        x = np.arange(len(names))
        for off, field, rfield, label, color in ((-0.2, "ms_per_pattern", "ratio_to_float", "wall", "#4c72b0"),
                                                 (0.2, "cpu_ms_per_pattern", "cpu_ratio_to_float", "CPU",
                                                  "#dd8452")):
            vals = [run["models"][n][field] for n in names]
            ax.bar(x + off, vals, 0.4, label=label, color=color)
            for xi, n, v in zip(x, names, vals):
                r = run["models"][n].get(rfield, 1.0)
                ax.text(xi + off, v, f"{r:.2f}x", ha="center", va="bottom", fontsize=6, rotation=90)
        ax.set_xticks(x, [n.replace("float32_golden", "float32\ngolden") for n in names], fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_ylabel("ms per pattern (median)", fontsize=8)
        lb, la = run["load_before"][0], run["load_after"][0]
        ax.set_title(f"{key}, load {lb:.1f} -> {la:.1f}", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle("quantized (bit-exact) vs float32 golden inference, reference MNIST network, T = "
                 f"{next(iter(runs.values()))['spikes']}; label: x float golden", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
