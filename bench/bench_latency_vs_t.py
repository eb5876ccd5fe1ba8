"""Latency vs spikes per IP (T) vs accuracy of the whole-network accelerator.

For each T of the accuracy sweeps (``bench/explore/lowt.toml`` for T < 1600, the ``int e4m1`` point of
``bench/explore/table.toml`` for T = 1600; all 10,000 MNIST test images x 3 seeds, the design's
datapath ``int-e4m1``), the cycles per image of the accelerator with the same plan (the auto plan at
T = 1600; T only changes the round counters) come from the exact cycle model
(:func:`sbs_model.plan.cycles`, equal to the Verilator count where it was cosimulated).  A latency in
ms is the design's cycles / post-route Fmax, and a row has one only where that T's design (the same
datapath and plan, and this commit's cycles at that T: a design with another divider or pipeline has
other cycles) was placed and routed with timing met: the fastest such run of
``bench/results/network_pnr.json`` (``python -m bench.bench_network --record-pnr DIR`` after ``sbs pnr
DIR``; the best placer seed, as the README quotes), whose commit the row names.
The other rows hold cycles and accuracy only: an Fmax is a property of one placed design, not of the
plan.  The low-latency point is the smallest T whose mean accuracy is >= 99.0 %.

Run: ``python bench/bench_latency_vs_t.py`` (seconds) -> ``bench/results/latency_vs_t.json`` and ``.png``.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_network import datapath_label  # noqa: E402
from bench.common import RESULTS, write_result  # noqa: E402
from rtl.pnr import SPEED_GRADE  # noqa: E402
from sbs_model import plan as planner  # noqa: E402
from sbs_model.network import reference_mnist  # noqa: E402
from sbs_model.quant_ref import load_datapath  # noqa: E402

NAME = "latency_vs_t"
DATAPATH = "int-e4m1"
LOWT = RESULTS / "explore" / "lowt" / "results.json"
TABLE = RESULTS / "explore" / "table" / "results.json"
PNR_RUNS = RESULTS / "network_pnr.json"
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


def run_spikes(run: dict) -> list[int]:
    """The T of every SbS layer of a ``network_pnr.json`` run (older runs name it in ``design`` only)."""
    if "spikes" in run:
        return [int(t) for t in run["spikes"]]
    m = re.search(r"T = \[?([0-9, ]+)\]?", run.get("design", ""))
    return [int(t) for t in m.group(1).replace(" ", "").split(",") if t] if m else []


def run_matches(run: dict, layers: dict, dp) -> bool:
    """The run is of the plan ``layers`` (``plan_json(plan)["layers"]``) with datapath ``dp`` in every
    SbS layer, placed, routed and timing met on the default speed grade (the slowest part: a faster
    grade is another device, reported beside, not mixed into this curve)."""
    if not run.get("timing_met") or run.get("plan") != layers:
        return False
    if (run.get("nextpnr") or {}).get("speed_grade", SPEED_GRADE) != SPEED_GRADE:
        return False
    if "datapaths" in run:
        return all(v == dp.to_dict() for v in run["datapaths"].values())
    return datapath_label(dp.to_dict()) in run.get("design", "")


def measured_runs(path: Path, layers: dict, dp, cycles_of=None) -> dict[int, dict]:
    """T -> the fastest run (highest Fmax; the earliest of equals) of ``path`` that matches
    (:func:`run_matches`) with one T in all layers and, given ``cycles_of`` (T -> this commit's cycles
    per image), whose design has those cycles."""
    out: dict[int, dict] = {}
    if not path.is_file():
        return out
    for run in json.loads(path.read_text())["results"]["runs"]:  # in the order they were recorded
        ts = set(run_spikes(run))
        if len(ts) != 1 or not run_matches(run, layers, dp):
            continue
        t = ts.pop()
        if cycles_of is not None and int(run["cycles_per_image"]) != cycles_of(t):
            continue
        if t not in out or run["fmax_mhz"] > out[t]["fmax_mhz"]:
            out[t] = run
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)
    pts = accuracy_points(LOWT, TABLE)
    if not pts:
        print(f"bench_latency_vs_t.py: error: no accuracy results ({LOWT}, {TABLE})", file=sys.stderr)
        return 2
    net = reference_mnist(1600)
    dp = load_datapath(DATAPATH)
    dps = {i: dp for i in net.sbs_layers()}
    plan = planner.auto_plan(net, dps)
    plan_fields = planner.plan_json(plan)
    layers = plan_fields["layers"]
    runs = measured_runs(PNR_RUNS, layers, dp, lambda t: cycles_at(t, plan, dps))
    rows = []
    for p in pts:
        c = cycles_at(p["spikes"], plan, dps)
        run = runs.get(p["spikes"])
        # the measured design's own cycles (== its cosim and, by measured_runs, this commit's model)
        meas = run and {"fmax_mhz": run["fmax_mhz"], "cycles_per_image": int(run["cycles_per_image"]),
                        "source_commit": run["source_commit"], "verilog_sha256": run["verilog_sha256"],
                        "command": run["command"]}
        rows.append(p | {"cycles_per_image": c,
                         "ms_per_image": round(meas["cycles_per_image"] / (meas["fmax_mhz"] * 1e3), 3) if run else None,
                         "measured": meas})
    # exact: correct answers over all seeds against 99.0 % of the images x seeds (no float rounding)
    ok = [r for r in rows if 100 * sum(r["correct_per_seed"]) >= 100 * TARGET * r["n"] * len(r["correct_per_seed"])]
    low = ok[0] if ok else None
    results = {"datapath": DATAPATH, "plan": plan_fields, "rows": rows,
               "low_latency_point": low and {k: low[k] for k in ("spikes", "accuracy", "cycles_per_image",
                                                                  "ms_per_image", "measured")},
               "target_accuracy": TARGET, "pnr_runs": str(PNR_RUNS.relative_to(RESULTS.parent.parent)),
               "latency_note": "ms = cycles / post-route Fmax (timing met) of that T's own placed and routed design; "
                               "rows without one have no ms"}
    path = write_result(NAME, results)
    for r in rows:
        print(f"T = {r['spikes']:5d}: accuracy {100 * r['accuracy']:.2f} %, {r['cycles_per_image']:,} cycles per image"
              + (f", {r['ms_per_image']} ms ({r['measured']['fmax_mhz']} MHz, {r['measured']['source_commit']})"
                 if r["ms_per_image"] else ""))
    print("cycles: the cycle model of this commit's RTL; ms: the measured design's own cycles (its commit's RTL) / its Fmax")
    print(f"low-latency point (>= {100 * TARGET:.1f} %): " + (f"T = {low['spikes']}" if low else "none"))
    if not args.no_plot:
        plot(rows, low, path.with_suffix(".png"))
    print(f"-> {path}")
    return 0


def plot(rows, low, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    xs = [r["cycles_per_image"] / 1e6 for r in rows]
    ys = [100 * r["accuracy"] for r in rows]
    lo = [100 * min(r["acc_per_seed"]) for r in rows]
    hi = [100 * max(r["acc_per_seed"]) for r in rows]
    ax.errorbar(xs, ys, yerr=[[y - a for y, a in zip(ys, lo)], [b - y for y, b in zip(ys, hi)]], fmt="o-",
                capsize=3, label="int-e4m1 accelerator (mean, seed range)")
    for x, y, r in zip(xs, ys, rows):
        text = f"T={r['spikes']}"
        if r["ms_per_image"]:
            text += f": {r['ms_per_image']:.2f} ms at {r['measured']['fmax_mhz']:.1f} MHz"
        long_ = bool(r["ms_per_image"])  # the measured points' longer text: above, to the left, inside the axes
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(-4, 9) if long_ else (5, -12), fontsize=8,
                    ha="right" if long_ else "left")
    mx = [x for x, r in zip(xs, rows) if r["ms_per_image"]]
    my = [y for y, r in zip(ys, rows) if r["ms_per_image"]]
    if mx:
        ax.plot(mx, my, "s", mfc="none", mec="green", ms=11, label="placed, routed, timing met (ms measured)")
    ax.set_ylim(top=max(hi) + 0.35)  # room for the measured points' text above them
    ax.axhline(100 * TARGET, color="grey", ls="--", lw=1, label="99.0 %")
    if low:
        ax.plot([xs[rows.index(low)]], [100 * low["accuracy"]], "r*", ms=12, label=f"low-latency point T={low['spikes']}")
    ax.set_xlabel("million cycles per image (exact cycle model, == Verilator)")
    ax.set_ylabel("accuracy on 10,000 MNIST test images (%)")
    ax.set_title("Accuracy vs latency of the whole-network design, by spikes per IP")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
