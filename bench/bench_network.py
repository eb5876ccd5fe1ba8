"""Whole-network accelerator: ``sbs build`` + ``sbs cosim`` of the reference network (shipped
weights, a datapath -- int-e4m1 by default, cheap-e4m1 for the design that fits --, the planner's
plan) on MNIST test images -> ``bench/results/<--name>.json``.

Usage: ``python bench/bench_network.py [--datapath D] [-n 100] [--spikes T] [--jobs J] [--out DIR]
[--shard-size S] [--resume]``.

``--record-pnr DIR``: the same with the place-and-route result (``sbs pnr DIR`` finished:
``DIR/pnr.json``): utilisation, post-route Fmax, timing met, and ms per image = cycles per image /
Fmax where timing is met; or, without ``pnr.json``, a run whose router2 ``sbs pnr`` stopped
(``DIR/pnr-unrouted.json``: ``routed`` false, the least overuse and the overuse per iteration, no
Fmax and no latency).

``--record-synth DIR``: only record the Yosys ``synth_ecp5`` result of the design in ``DIR`` (the
stamp that ``rtl.pnr.synthesise`` -- ``sbs pnr``'s yosys step -- wrote there) as one run in
``bench/results/network_pnr.json`` (earlier runs of other designs are kept; a run of the same
Verilog is replaced), with the manifest's plan, cycles and estimate, the machine and the commit.
The result holds the cosim report (images, equal, mismatched, cycles per image from the cycle model
and measured, accuracy, images per second of simulation), the plan, the manifest's estimate, the
commands, machine and commit.  Latency in ms needs the post-route Fmax (``sbs pnr DIR``,
``bench/results/network_pnr.json``), never an assumed clock.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from bench.common import RESULTS, write_result
from rtl.pnr import DEFAULT_PLACER, NETLIST_STAMP, RESULT, SPEED_GRADE, UNROUTED, Flow, estimate_mhz


def diagram(manifest: dict, path) -> None:
    """Block diagram of a whole-network design (from its manifest) as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    layers = manifest["network"]["layers"]
    plan = manifest["plan"]["layers"]
    stages = {s["layer"]: s for s in manifest["stages"]}
    n = len(layers)
    fig, ax = plt.subplots(figsize=(2.1 * (n + 2), 5.2))
    ax.set_xlim(-0.2, 2.1 * (n + 2))
    ax.set_ylim(-0.6, 5.0)
    ax.axis("off")

    def box(x, y, w, h, text, color):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=color, ec="black", lw=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8)

    def arrow(x0, y0, x1, y1, style="-|>", color="black"):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle=style, mutation_scale=10, color=color, lw=1))

    crop = manifest["formats"]["crop"]
    box(0.0, 2.4, 1.6, 1.0, f"image in\n28x28 uint8\ncentre crop\n{crop[0]}x{crop[1]}", "#e8e8e8")
    x = 2.1
    for i, layer in enumerate(layers):
        st = stages[i]
        if layer["kind"] == "sbs":
            p = plan[str(i)]
            txt = (f"layer {i}: SbS\nlayer engine\nL={p['lanes']} E={p['engines']}"
                   + (f" P={p['slots']}" if p.get("slots") else "") + "\n"
                   f"N={st['N']} S={st['S']}\n{st['cycles']:,} cyc")
            color = "#cfe2f3"
        else:
            txt = f"layer {i}: {layer['kind']}\npooling unit\nk={st['k']}\n{st['cycles']:,} cyc"
            color = "#d9ead3"
        box(x, 2.2, 1.6, 1.4, txt, color)
        if i == 0:
            arrow(x - 0.45, 2.9, x - 0.05, 2.9)
        box(x + 0.1, 0.6, 1.4, 0.8, f"feature map {i}\nRAM ({st.get('n_ip', st.get('n_out', 0)) and ''}"
            f"{manifest['memories'][f'fmap{i}']['words']:,} codes)", "#fff2cc")
        arrow(x + 0.8, 2.15, x + 0.8, 1.45)
        if i + 1 < n:
            arrow(x + 1.5, 1.0, x + 2.1 + 0.2, 2.2, color="#555555")
        x += 2.1
    box(x, 2.4, 1.6, 1.0, "class out\n(argmax of\nthe last layer)", "#e8e8e8")
    arrow(x - 0.45, 2.9, x - 0.05, 2.9)
    box(2.1, 4.1, 2.1 * n - 0.5, 0.6, f"scheduler: one image at a time, one stage per layer  --  "
        f"{manifest['cycles_per_image']:,} cycles per image (cycle model)", "#f4cccc")
    box(2.1, -0.5, 2.1 * n - 0.5, 0.5, "debug read path: dbg_layer, dbg_addr -> dbg_data (every layer's codes)",
        "#eeeeee")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


DEVICE = {"name": "lfe5u-85f", "LUT4": 83640, "MULT18X18D": 156, "DP16KD": 208}


def design_report(path: Path, man: dict) -> dict:
    """An ``sbs pnr`` result file of the design ``man`` describes; SystemExit if it is of other Verilog."""
    rep = json.loads(path.read_text())
    if rep.get("verilog_sha256") != man["verilog_sha256"]:
        raise SystemExit(f"bench_network: {path} is not of {man['verilog']} (sha256 differs)")
    return rep


def placed_and_routed(d: Path, man: dict) -> dict:
    """The nextpnr fields of a ``network_pnr.json`` run from ``d/pnr.json`` (``sbs pnr``'s report,
    written when routing finished): utilisation, Fmax, timing met, and the latency ``cycles per
    image / Fmax`` -- only where timing is met (never at an assumed clock)."""
    if not (d / RESULT).is_file() and (d / UNROUTED).is_file():
        return not_routed(d, man)
    rep = design_report(d / RESULT, man)
    flow = Flow.of(rep)  # records from before --speed and --placer read as nextpnr's defaults
    fmax = rep.get("fmax_min_mhz")
    met = bool(rep.get("timing_met"))
    util = {k: v["used"] for k, v in rep.get("utilization", {}).items() if k in ("LUT4", "FF", "MULT18X18D",
                                                                                 "DP16KD", "LUTRAM", "IO")}
    return {
        "nextpnr": {"routed": rep.get("routed"), "seed": rep.get("seed"), "router": rep.get("router"),
                    "speed_grade": flow.speed, "placer": flow.placer,
                    "constraint_mhz": rep.get("freq_mhz"), "fmax_mhz": fmax, "utilisation": util,
                    "critical_path": rep.get("critical_path"), "fmax_estimate_mhz": estimate_mhz(rep),
                    "seed_sweep": rep.get("seed_sweep")},  # 'sbs pnr --seeds': every seed's Fmax, the median
        "fmax_mhz": fmax,
        "timing_met": met,
        "ms_per_image": round(man["cycles_per_image"] / (fmax * 1e3), 3) if met and fmax else None,
        "note": (f"placed and routed: {man['cycles_per_image']:,} cycles per image (cycle model) / "
                 f"{fmax} MHz post-route Fmax, timing met at {rep.get('freq_mhz')} MHz" if met else
                 f"placed and routed, timing NOT met at {rep.get('freq_mhz')} MHz (Fmax {fmax} MHz): no latency"),
    }


def not_routed(d: Path, man: dict) -> dict:
    """The nextpnr fields of a ``network_pnr.json`` run from ``d/pnr-unrouted.json`` (router2 stopped by
    ``sbs pnr``): placed utilisation, ``routed`` false, the route watch's figures; no Fmax, no latency."""
    rep = design_report(d / UNROUTED, man)
    flow = Flow.of(rep)
    util = {k: v["used"] for k, v in (rep.get("utilization") or {}).items()}
    rw = rep["route_watch"]
    return {
        "nextpnr": {"routed": False, "seed": rep.get("seed"), "router": rep.get("router"),
                    "speed_grade": flow.speed, "constraint_mhz": rep.get("freq_mhz"),
                    "placer": flow.placer, "fmax_mhz": None, "utilisation": util,
                    "critical_path": None, "fmax_estimate_mhz": estimate_mhz(rep), "route_watch": rw},
        "fmax_mhz": None,
        "timing_met": None,
        "ms_per_image": None,
        "note": f"placed, not routed: {rw['reason']} (sbs pnr stopped router2): no Fmax, no latency",
    }


def datapath_label(fields: dict) -> str:
    """How a run of ``network_pnr.json`` names a datapath in its ``design`` text (``fields``: the datapath's
    fields, as ``manifest.json`` or ``Datapath.to_dict`` give them)."""
    return f"update {fields['update']}, weights {fields['weight_format']}, coefficient {fields['coef_bits']} bits"


def pnr_key(run: dict) -> tuple:
    """What makes a ``network_pnr.json`` record one run: the design's Verilog and nextpnr's seed,
    router, clock constraint, speed grade and placer (records from before ``--speed`` are grade 6, from
    before ``--placer`` nextpnr's default placer; a Yosys-only record has no ``nextpnr``)."""
    nx = run.get("nextpnr") or {}
    grade = nx.get("speed_grade", SPEED_GRADE) if nx else None
    placer = nx.get("placer", DEFAULT_PLACER) if nx else None
    return run.get("verilog_sha256"), nx.get("seed"), nx.get("router"), nx.get("constraint_mhz"), grade, placer


def record_synth(d: Path, command: str | None, source_commit: str | None, label: str | None = None,
                 pnr: bool = False, note: str | None = None) -> int:
    """One run of ``network_pnr.json`` from the design directory ``d`` (see module docstring);
    ``pnr``: with the place-and-route result of ``d/pnr.json`` (:func:`placed_and_routed`)."""
    from sbs_model.provenance import commit, machine

    man = json.loads((d / "manifest.json").read_text())
    stamp = json.loads((d / NETLIST_STAMP).read_text())
    if stamp["verilog_sha256"] != man["verilog_sha256"]:
        print(f"bench_network: {d / NETLIST_STAMP} is not of {man['verilog']} (sha256 differs)", file=sys.stderr)
        return 1
    cells = stamp["yosys"]["cells"]
    ys = {k: cells.get(k, 0) for k in ("LUT4", "CCU2C", "TRELLIS_FF", "MULT18X18D", "DP16KD", "PDPW16KD",
                                       "TRELLIS_DPR16X4", "PFUMX", "L6MUX21")}
    ys["lut_total_as_yosys_counts"] = stamp["yosys"]["lut"]
    dps = {datapath_label(dp) for dp in man["datapaths"].values()}
    est = man["plan"]["estimate"]
    fits = (ys["MULT18X18D"] <= DEVICE["MULT18X18D"] and ys["DP16KD"] + ys["PDPW16KD"] <= DEVICE["DP16KD"]
            and ys["LUT4"] + 2 * ys["CCU2C"] + 4 * ys["TRELLIS_DPR16X4"] <= DEVICE["LUT4"])
    run = {
        "design": f"{man['network']['name']}, shipped weights, {label or ', '.join(sorted(dps))}, "
                  f"T = {sorted({s['T'] for s in man['stages'] if s['kind'] == 'sbs'})}, plan {man['plan']['source']}",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source_commit": source_commit or commit(),
        "command": command or f"python -m bench.bench_network --record-synth {d}",
        "machine": machine(),
        "plan": man["plan"]["layers"],
        "spikes": sorted({s["T"] for s in man["stages"] if s["kind"] == "sbs"}),
        "datapaths": man["datapaths"],
        "update_lanes": {k: {"update": v["update"], "multipliers_per_lane": v["multipliers_per_lane"]}
                         for k, v in man.get("update_lanes", {}).items()},
        "verilog_sha256": man["verilog_sha256"],
        "cycles_per_image": man["cycles_per_image"],
        "estimate_analytic": {k: est[k] for k in ("lut4", "ff", "mult18", "dp16kd")},
        "yosys_synth_ecp5": dict(ys, version=stamp.get("version"), seconds=stamp.get("seconds")),
        "device": DEVICE,
        "fits_by_yosys_counts": fits,
        "nextpnr": None,
        "fmax_mhz": None,
        "timing_met": None,
        "ms_per_image": None,
        "note": "Yosys only (synth_ecp5, the yosys step of 'sbs pnr'); no place and route in this run, so no "
                "Fmax and no latency",
    }
    if pnr:
        run.update(placed_and_routed(d, man))
    if note:
        run["note"] = note
    path = RESULTS / "network_pnr.json"
    old = json.loads(path.read_text()) if path.is_file() else None
    runs = []
    if old:
        if "runs" in old.get("results", {}):
            runs = old["results"]["runs"]
        else:  # the earlier one-design form: keep it as the first run, with its own provenance
            first = dict(old["results"])
            for k in ("date", "command", "machine"):
                first.setdefault(k, old.get(k))
            first.setdefault("source_commit", old.get("source_commit", old.get("commit")))
            runs = [first]
    # a run replaces only a record of the same design placed the same way (seed, router, constraint, grade): the
    # seeds of one design are separate runs (until 904763c seed 2 of 20a905e replaced its faster seed 1)
    runs = [r for r in runs if pnr_key(r) != pnr_key(run)] + [run]
    p = write_result("network_pnr", {"runs": runs}, {"source_commit": run["source_commit"]})
    print(f"-> {p}: {run['design']}: LUT4 {ys['LUT4']}, CCU2C {ys['CCU2C']}, FF {ys['TRELLIS_FF']}, "
          f"MULT18X18D {ys['MULT18X18D']}, DP16KD {ys['DP16KD']} (+PDPW16KD {ys['PDPW16KD']}); fits: {fits}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--spikes", type=int, default=None, help="T in every SbS layer (default: the config's, 1600)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--plan", default="auto")
    ap.add_argument("--out", default="build/bench_network", help="design directory (default build/bench_network)")
    ap.add_argument("--name", default="network_cosim", help="result name in bench/results (default network_cosim)")
    ap.add_argument("--source-commit", default=None,
                    help="the commit this checkout was exported from (for runs from 'git archive' copies)")
    ap.add_argument("--skip-build", action="store_true",
                    help="cosimulate the design already in --out (its manifest records how it was built)")
    ap.add_argument("--diagram", default=None, metavar="PNG",
                    help="only draw the block diagram of the design in --out (its manifest.json) into PNG")
    ap.add_argument("--datapath", default="int-e4m1", help="datapath preset for sbs build (default int-e4m1)")
    ap.add_argument("--shard-size", type=int, default=None, help="images per simulator run (sbs cosim)")
    ap.add_argument("--resume", action="store_true", help="reuse finished cosim shards in --out (sbs cosim --resume)")
    ap.add_argument("--no-waves", action="store_true", help="on a divergence, no second run with waves (sbs cosim)")
    ap.add_argument("--record-synth", default=None, metavar="DIR",
                    help="only record the Yosys result of the design in DIR into bench/results/network_pnr.json")
    ap.add_argument("--record-pnr", default=None, metavar="DIR",
                    help="only record the Yosys and nextpnr results (sbs pnr DIR finished: DIR/pnr.json) of the "
                         "design in DIR into bench/results/network_pnr.json, with ms per image where timing is met")
    ap.add_argument("--note", default=None, help="with --record-synth / --record-pnr: a note stored with the run")
    ap.add_argument("--label", default=None, help="with --record-synth: the datapath's name (e.g. cheap-e4m1)")
    ap.add_argument("--command", default=None, help="with --record-synth: the command that ran Yosys (recorded)")
    args = ap.parse_args(argv)
    if args.record_synth or args.record_pnr:
        return record_synth(Path(args.record_pnr or args.record_synth), args.command, args.source_commit, args.label,
                            pnr=bool(args.record_pnr), note=args.note)
    out = Path(args.out)
    if args.diagram:
        diagram(json.loads((out / "manifest.json").read_text()), args.diagram)
        print(f"-> {args.diagram}")
        return 0
    build = ["sbs", "build", "--datapath", args.datapath, "--plan", args.plan, "-o", str(out), "--lint"]
    if args.spikes:
        build += ["--spikes", str(args.spikes)]
    rep_path = out / "cosim.json"
    cos = ["sbs", "cosim", str(out), "-n", str(args.n), "--first", str(args.first), "--jobs", str(args.jobs),
           "--json", str(rep_path)]
    if args.shard_size:
        cos += ["--shard-size", str(args.shard_size)]
    if args.resume:
        cos.append("--resume")
    if args.no_waves:
        cos.append("--no-waves")
    t0 = time.perf_counter()
    for cmd in ([cos] if args.skip_build else [build, cos]):
        print("$", shlex.join(cmd), flush=True)
        rc = subprocess.call(cmd)
        if rc not in (0, 1) or not (out / "manifest.json").is_file():
            print(f"bench_network: {cmd[1]} failed (exit {rc})", file=sys.stderr)
            return rc or 1
    man = json.loads((out / "manifest.json").read_text())
    rep = json.loads(rep_path.read_text())
    results = {"cosim": rep, "plan": man["plan"], "stages": man["stages"], "cycles_per_image": man["cycles_per_image"],
               "verilog_sha256": man["verilog_sha256"], "input_hash": man["input_hash"],
               "seconds_total": round(time.perf_counter() - t0, 1)}
    # with --skip-build the design was built before, by a command this script did not run: the manifest's
    # plan (and its source) in the results say what was built
    extra = {"commands": [shlex.join(cos)] if args.skip_build else [shlex.join(build), shlex.join(cos)]}
    if args.source_commit:
        extra["source_commit"] = args.source_commit
    path = write_result(args.name, results, extra)
    print(f"-> {path}: equal={rep['equal']} images={rep['images']} cycles={rep['cycles_per_image']} "
          f"accuracy={rep['accuracy']:.4f}")
    return 0 if rep["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
