"""Place and route of the streaming layer engines (``sbs build --layer``) on an LFE5U-85F.

For each design ``LAYER:LANES:ENGINES`` the layer engine is generated as ``sbs build --layer LAYER
--lanes LANES --engines ENGINES [--spikes T] -o DIR`` does (:func:`rtl.layer.generate.build_layer`,
the shipped model, datapath int-e4m1 unless ``--datapath``), then placed and routed as ``sbs pnr
DIR --freq F --seed S`` does (:func:`rtl.pnr.pnr`).  Each row: lanes, engines, slots, LUT4, FF,
MULT18X18D, DP16KD (used / available), post-route Fmax, timing met, the critical path, the exact
cycles per image of that layer (manifest, :mod:`sbs_model.layer_cycles`) and, only when timing is
met, ms per image = cycles / Fmax.

Results go to ``bench/results/layer_engines.json`` after every design (machine, command, commit);
rows whose Verilog, constraint and seed are unchanged are kept unless ``--force``.

Run: ``python bench/bench_layer_engines.py [--designs 5:10:1 4:32:1 2:32:1 0:32:1] [--freq 100]``
(needs the ``synth`` extra; minutes to tens of minutes per design on one core), or
``--record DIR ...`` to record designs already built and placed with ``sbs build`` + ``sbs pnr``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, commit, write_result  # noqa: E402
from fixedpoint.datapath import Datapath  # noqa: E402
from sbs_model import hwcost, loader  # noqa: E402
from sbs_model.quant import QuantizedModel  # noqa: E402

NAME = "layer_engines"
DEFAULT_DESIGNS = ["5:10:1"]
RES = ("LUT4", "FF", "MULT18X18D", "DP16KD")


def parse_design(text: str) -> tuple[int, int, int]:
    try:
        layer, lanes, engines = (int(x) for x in text.split(":"))
    except ValueError:
        raise SystemExit(f"bench_layer_engines.py: error: --designs {text!r}: expected LAYER:LANES:ENGINES, "
                         "e.g. 5:10:1") from None
    return layer, lanes, engines


def estimate_of(man: dict) -> dict:
    """The calibrated cost model's estimate for the design of a manifest (``sbs_model.hwcost``), with
    the weight-code bits that are constant over the layer (as the calibration uses them)."""
    dp = Datapath.from_dict(man["datapath"])
    li, T = int(man["layer"]), int(man["T"])
    net, w, _ = loader.load_net_and_weights("reference-mnist", loader.shipped_model_path(), T)
    ql = QuantizedModel(net, w, dp).qlayers[li]
    const = hwcost.weight_const_bits(ql.wcodes, ql.W.width)
    c = hwcost.layer_engine_cost(dp, net.layers[li], tuple(man["input_shape"]), li, int(man["lanes"]),
                                 int(man["engines"]), w_format=man["formats"]["weights"], w_const_bits=const)
    c = {k: c[k] for k in ("lut4", "ff", "mult18", "dp16kd")}
    c["lut4_placed"] = int(round(c["lut4"] * hwcost.NEXTPNR_LUT_FACTOR))
    c["model_commit"] = commit()  # the cost model as of recording (it follows the RTL: older designs may differ)
    return c


def yosys_of(out: Path) -> dict | None:
    """Yosys ``synth_ecp5`` counts of the design (the stamp ``sbs pnr`` leaves), LUT4-equivalents as Yosys
    counts them (LUT4 + 2 per CCU2C + 4 per DPR16X4)."""
    stamp = out / "pnr-netlist.stamp.json"
    if not stamp.is_file():
        return None
    y = json.loads(stamp.read_text()).get("yosys") or {}
    return {"lut4": y.get("lut"), "ff": y.get("ff"), "mult18": y.get("dsp"), "dp16kd": y.get("bram")}


def ratios(est: dict, yosys: dict | None, util: dict) -> dict:
    """estimate / Yosys and estimate (LUT4: placed estimate) / nextpnr, per resource."""
    placed = {"lut4": (util.get("LUT4") or {}).get("used"), "ff": (util.get("FF") or {}).get("used"),
              "mult18": (util.get("MULT18X18D") or {}).get("used"), "dp16kd": (util.get("DP16KD") or {}).get("used")}
    out = {"estimate_over_nextpnr": {k: round((est["lut4_placed"] if k == "lut4" else est[k]) / v, 3)
                                     for k, v in placed.items() if v}}
    if yosys:
        out["estimate_over_yosys"] = {k: round(est[k] / v, 3) for k, v in yosys.items() if v}
    return out


def row_from(out: Path, res: dict, man: dict, args) -> dict:
    """A result row from a design directory's manifest and its ``sbs pnr`` result."""
    if res.get("routed", True) is not True:
        raise SystemExit(f"bench_layer_engines.py: error: {out}: the result is placement only (sbs pnr --place-only); "
                         "record a routed design")
    util = res["utilization"]
    router = res.get("router", "router1")
    spikes = f" --spikes {man['T']}" if args.spikes else ""
    dp = args.datapath
    return {
        "key": f"{man['verilog_sha256']}/{res['freq_mhz']:g}/{res['seed']}" + (f"/{router}" if router != "router1" else ""),
        "design": f"layer engine, layer {man['layer']}, L = {man['lanes']}, E = {man['engines']}, {dp}",
        "commands": [f"sbs build --layer {man['layer']} --lanes {man['lanes']} --engines {man['engines']} "
                     f"--datapath {dp}{spikes} -o DIR", f"sbs pnr DIR --freq {res['freq_mhz']:g} --seed {res['seed']}"
                     + (f" --router {router}" if router != "router1" else "")],
        "router": router,
        "layer": man["layer"], "lanes": man["lanes"], "engines": man["engines"], "slots": man["slots"],
        "beats": man["beats"], "S": man["S"], "N": man["N"], "T": man["T"], "ips": man["ips"],
        "weights_format": man["formats"]["weights"], "verilog_sha256": man["verilog_sha256"],
        "resources": {r: util.get(r) for r in RES},
        "fmax_mhz": res["fmax_min_mhz"], "freq_mhz": res["freq_mhz"], "timing_met": res["timing_met"],
        "critical_path": res["critical_path"],
        "cycles_per_image": man["cycles_per_image"], "spike_steps_per_cycle": man["spike_steps_per_cycle"],
        "ms_per_image": res.get("ms_per_image"), "ms_per_image_note": res.get("ms_per_image_note"),
        "tools": res.get("tools"), "seconds": res.get("seconds"),
    } | _costs(out, man, util)


def _costs(out: Path, man: dict, util: dict) -> dict:
    est, ys = estimate_of(man), yosys_of(out)
    return {"estimate": est, "yosys": ys} | ratios(est, ys, util)


def one(layer, lanes, engines, args, old):
    from rtl.layer.generate import build_layer
    from rtl.pnr import pnr
    from sbs_model import loader
    from sbs_model.quant_ref import load_datapath
    net, weights, _ = loader.load_net_and_weights("reference-mnist", loader.shipped_model_path(), args.spikes)
    dp = load_datapath(args.datapath)
    out = Path(args.work) / f"layer{layer}-L{lanes}-E{engines}-T{args.spikes or 'cfg'}"
    man = build_layer(net, weights, dp, layer, out, lanes, engines)
    key = f"{man['verilog_sha256']}/{args.freq:g}/{args.seed}" + (f"/{args.router}" if args.router != "router1" else "")
    if key in old and not args.force:
        print(f"layer {layer} L={lanes} E={engines}: unchanged since the recorded run (--force to redo)", flush=True)
        return old[key]
    res = pnr(out, freq=args.freq, seed=args.seed, progress=lambda m: print(m, flush=True), router=args.router)
    return row_from(out, res, man, args)


def table(rows: list[dict], picks: list[tuple[int, int]]) -> str:
    """Markdown table of the last recorded row of each ``(layer, lanes)`` in ``picks`` (README, docs)."""
    out = ["| layer | lanes | engines | LUT4 | FF | MULT18X18D | DP16KD | LUT4 estimate / Yosys / nextpnr | Fmax | "
           "cycles per image | ms per image | built from |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for layer, lanes in picks:
        cand = [r for r in rows if r["layer"] == layer and r["lanes"] == lanes]
        if not cand:
            continue
        met = [r for r in cand if r.get("timing_met")]
        r = (met or cand)[-1]
        u = {k: (r["resources"].get(k) or {}).get("used") for k in RES}
        est, ys = r.get("estimate") or {}, r.get("yosys") or {}
        lut = (f"{est['lut4_placed']:,} / {ys['lut4']:,} / {u['LUT4']:,}" if est and ys else "")
        f = f"{r['fmax_mhz']:.2f} MHz ({'met' if r['timing_met'] else 'not met'})"
        ms = f"{r['ms_per_image']:.3f}" if r.get("ms_per_image") else "-"
        out.append(f"| {layer} | {lanes} | {r['engines']} | {u['LUT4']:,} | {u['FF']:,} | {u['MULT18X18D']} | "
                   f"{u['DP16KD']} | {lut} | {f} | {r['cycles_per_image']:,} | {ms} | {r.get('commit', '')} |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--designs", nargs="+", default=DEFAULT_DESIGNS, metavar="LAYER:LANES:ENGINES")
    p.add_argument("--datapath", default="int-e4m1")
    p.add_argument("--spikes", type=int, default=None, help="T (default: the config's, 1600)")
    p.add_argument("--freq", type=float, default=100.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--router", default="router1", choices=("router1", "router2"), help="nextpnr's router")
    p.add_argument("--work", default="build/layer_bench", help="design directories (default build/layer_bench)")
    p.add_argument("--force", action="store_true")
    p.add_argument("--record", nargs="+", default=None, metavar="DIR",
                   help="record finished runs instead: design directories holding manifest.json (sbs build) and "
                        "pnr.json (sbs pnr), e.g. from a long run in the background")
    p.add_argument("--note", default=None, help="a note stored with the recorded rows")
    p.add_argument("--built-from", default=None, metavar="COMMIT",
                   help="the commit whose code built and placed the recorded designs (stored in each row; default: "
                        "the current commit)")
    p.add_argument("--table", nargs="+", default=None, metavar="LAYER:LANES",
                   help="print the markdown table of the recorded rows of these designs (the last one with "
                        "timing met, else the last) and exit")
    args = p.parse_args(argv)
    path = RESULTS / f"{NAME}.json"
    if args.table:
        picks = [tuple(int(x) for x in t.split(":")) for t in args.table]
        print(table(json.loads(path.read_text())["results"], picks))
        return 0
    designs = [] if args.record else [parse_design(d) for d in args.designs]
    old = {}
    if path.is_file():
        old = {r["key"]: r for r in json.loads(path.read_text()).get("results", []) if "key" in r}
    rows = list(old.values())
    todo = [("run", d) for d in designs] + [("record", Path(d)) for d in args.record or []]
    for kind, what in todo:
        if kind == "run":
            row = one(*what, args, old)
        else:
            man = json.loads((what / "manifest.json").read_text())
            row = row_from(what, json.loads((what / "pnr.json").read_text()), man, args)
            if args.note:
                row["note"] = args.note
        row["commit"] = args.built_from or commit()
        rows = [r for r in rows if r["key"] != row["key"]] + [row]
        write_result(NAME, rows)
        r = {k: (v or {}).get("used") for k, v in row["resources"].items()}
        print(f"layer {row['layer']} L={row['lanes']} E={row['engines']}: LUT4 {r['LUT4']}, FF {r['FF']}, MULT18X18D "
              f"{r['MULT18X18D']}, DP16KD {r['DP16KD']}; Fmax {row['fmax_mhz']} MHz (timing met: "
              f"{row['timing_met']}); {row['cycles_per_image']} cycles per image", flush=True)
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
