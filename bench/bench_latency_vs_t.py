"""Latency vs spikes per IP (T) vs accuracy of the whole-network accelerator.

For each T of the accuracy sweeps (``bench/explore/lowt.toml`` for T < 1600, the ``int e4m1`` point of
``bench/explore/table.toml`` for T = 1600; all 10,000 MNIST test images x 3 seeds, the design's
datapath ``int-e4m1``), the cycles per image of the accelerator with the same plan (the auto plan at
T = 1600; T only changes the round counters) come from the exact cycle model
(:func:`sbs_model.plan.cycles`, equal to the Verilator count where it was cosimulated).  A latency in
ms is cycles / post-route Fmax and is written only when ``--pnr`` names an ``sbs pnr`` result of the
whole design with timing met; otherwise the rows hold cycles and accuracy, and the plot says that no
latency is quoted.  The low-latency point is the smallest T whose mean accuracy is >= 99.0 %.

Run: ``python bench/bench_latency_vs_t.py [--pnr build/network_int/pnr.json]`` (seconds) ->
``bench/results/latency_vs_t.json`` and ``.png``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, write_result  # noqa: E402
from sbs_model import plan as planner  # noqa: E402
from sbs_model.network import reference_mnist  # noqa: E402
from sbs_model.quant_ref import load_datapath  # noqa: E402

NAME = "latency_vs_t"
DATAPATH = "int-e4m1"
LOWT = RESULTS / "explore" / "lowt" / "results.json"
TABLE = RESULTS / "explore" / "table" / "results.json"
TARGET = 0.99


def accuracy_points(lowt: Path, table: Path) -> list[dict]:
    """``[{spikes, accuracy, acc_per_seed, n}]`` of the int-e4m1 datapath, sorted by T."""
    pts = []
    for path, keep in ((lowt, lambda p: True), (table, lambda p: p.get("label") == "int e4m1")):
        if not path.is_file():
            continue
        for p in json.loads(path.read_text())["points"]:
            if p.get("status") == "ok" and not p.get("float") and keep(p):
                pts.append({"spikes": int(p["spikes"]), "accuracy": p["accuracy"], "acc_per_seed": p["acc_per_seed"],
                            "correct_per_seed": p["correct_per_seed"], "n": p["n"], "source": str(path.relative_to(RESULTS.parent.parent))})
    return sorted({p["spikes"]: p for p in pts}.values(), key=lambda p: p["spikes"])


def cycles_at(T: int, plan: dict, dps: dict) -> int:
    return planner.cycles(reference_mnist(T), dps, plan)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pnr", type=Path, default=None,
                    help="sbs pnr result (pnr.json) of the whole design at T = 1600; ms only if timing is met")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)
    pnr = None
    if args.pnr is not None:
        if not args.pnr.is_file():
            print(f"bench_latency_vs_t.py: error: --pnr {args.pnr}: not a file", file=sys.stderr)
            return 2
        pnr = json.loads(args.pnr.read_text())
    pts = accuracy_points(LOWT, TABLE)
    if not pts:
        print(f"bench_latency_vs_t.py: error: no accuracy results ({LOWT}, {TABLE})", file=sys.stderr)
        return 2
    net = reference_mnist(1600)
    dp = load_datapath(DATAPATH)
    dps = {i: dp for i in net.sbs_layers()}
    plan = planner.auto_plan(net, dps)
    fmax = None
    if pnr and pnr.get("timing_met"):
        fmax = float(pnr["fmax_min_mhz"])
    rows = []
    for p in pts:
        c = cycles_at(p["spikes"], plan, dps)
        rows.append(p | {"cycles_per_image": c, "ms_per_image": round(c / (fmax * 1e3), 4) if fmax else None})
    # exact: correct answers over all seeds against 99.0 % of the images x seeds (no float rounding)
    ok = [r for r in rows if 100 * sum(r["correct_per_seed"]) >= 100 * TARGET * r["n"] * len(r["correct_per_seed"])]
    low = ok[0] if ok else None
    results = {"datapath": DATAPATH, "plan": planner.plan_json(plan), "rows": rows,
               "low_latency_point": low and {k: low[k] for k in ("spikes", "accuracy", "cycles_per_image",
                                                                  "ms_per_image")},
               "target_accuracy": TARGET,
               "fmax_mhz": fmax, "pnr": str(args.pnr) if args.pnr else None,
               "latency_note": ("ms = cycles / post-route Fmax of the whole design (timing met)" if fmax else
                                "no post-route Fmax of the whole design with timing met: no latency in ms is quoted")}
    path = write_result(NAME, results)
    for r in rows:
        print(f"T = {r['spikes']:5d}: accuracy {100 * r['accuracy']:.2f} %, {r['cycles_per_image']:,} cycles per image"
              + (f", {r['ms_per_image']} ms" if r["ms_per_image"] else ""))
    print(f"low-latency point (>= {100 * TARGET:.1f} %): " + (f"T = {low['spikes']}" if low else "none"))
    if not args.no_plot:
        plot(rows, fmax, low, path.with_suffix(".png"))
    print(f"-> {path}")
    return 0


def plot(rows, fmax, low, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    xs = [r["ms_per_image"] if fmax else r["cycles_per_image"] / 1e6 for r in rows]
    ys = [100 * r["accuracy"] for r in rows]
    lo = [100 * min(r["acc_per_seed"]) for r in rows]
    hi = [100 * max(r["acc_per_seed"]) for r in rows]
    ax.errorbar(xs, ys, yerr=[[y - a for y, a in zip(ys, lo)], [b - y for y, b in zip(ys, hi)]], fmt="o-",
                capsize=3, label="int-e4m1 accelerator (mean, seed range)")
    for x, y, r in zip(xs, ys, rows):
        ax.annotate(f"T={r['spikes']}", (x, y), textcoords="offset points", xytext=(5, -12), fontsize=8)
    ax.axhline(100 * TARGET, color="grey", ls="--", lw=1, label="99.0 %")
    if low:
        ax.plot([xs[rows.index(low)]], [100 * low["accuracy"]], "r*", ms=12, label=f"low-latency point T={low['spikes']}")
    ax.set_xlabel("ms per image (cycles / post-route Fmax)" if fmax else
                  "million cycles per image (exact cycle model; no Fmax with timing met: no ms)")
    ax.set_ylabel("accuracy on 10,000 MNIST test images (%)")
    ax.set_title("Accuracy vs latency of the whole-network design, by spikes per IP")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
