"""Calibrate and check the analytic cost model (``sbs_model.hwcost``) against Yosys ``synth_ecp5``.

For every design in the list (a layer engine of the shipped reference network at some layer, lanes,
engines and datapath) this script

1. writes the design as ``sbs build --layer K --lanes L --engines E --datapath D -o build/cal/NAME``
   does (skipped when the Verilog there is already the same);
2. synthesises it with Yosys ``synth_ecp5`` exactly as ``sbs pnr`` does (``rtl.pnr.synthesise``;
   skipped when its stamp says the netlist is up to date);
3. for the *training* designs also synthesises each component of engine core 0 on its own (update
   lanes, dot lanes, normaliser, reciprocal, coefficient, schedule ROM, spike generator, window
   loader) -- the per-component numbers the model's constants are fitted to;
4. compares the model (:func:`sbs_model.hwcost.layer_engine_cost`) with Yosys per design and per
   component, and with nextpnr where a placed result of the same Verilog exists (``pnr.json`` in the
   design directory or an entry of ``bench/results/layer_engines.json`` / ``pnr.json``).

The *hold-out* designs are never used to fit anything: their error is the model's error.

LUT4 here means LUT4 cells + 2 per CCU2C (a carry cell holds two LUT4s) + 4 per TRELLIS_DPR16X4 (a
16x4 LUT RAM uses the LUTs of a slice pair), the figure ``sbs pnr`` reports as Yosys LUTs; nextpnr's
TRELLIS_COMB count (its "LUT4" utilisation) is the same kind of figure after packing.

Run (one Yosys at a time, niced; each design takes 1-10 minutes on a loaded two-core machine)::

    python bench/bench_cost_calibration.py                 # all designs, then the JSON and the plot
    python bench/bench_cost_calibration.py --only l5_L10_E1 --no-write
    python bench/bench_cost_calibration.py --report-only   # no synthesis: JSON from what is cached

Writes ``bench/results/cost_calibration.json`` and ``bench/results/cost_calibration.png``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, write_result  # noqa: E402
from rtl import pnr  # noqa: E402
from rtl.emit import design_hash, to_verilog  # noqa: E402
from rtl.layer.design import engine_for  # noqa: E402
from rtl.layer.generate import build_layer  # noqa: E402
from rtl.synth import parse_stat  # noqa: E402
from sbs_model import hwcost  # noqa: E402
from sbs_model.quant import QuantizedModel  # noqa: E402
from sbs_model.quant_ref import load_datapath  # noqa: E402
from sbs_model.loader import load_net_and_weights, weights_or_shipped  # noqa: E402

BUILD = ROOT / "build" / "cal"

# name, layer, lanes, engines, datapath, role
DESIGNS = [
    ("l5_L10_E1", 5, 10, 1, "int-e4m1", "train"),
    ("l4_L16_E1", 4, 16, 1, "int-e4m1", "train"),
    ("l5_L10_E1_cheap", 5, 10, 1, "cheap-e4m1", "train"),
    ("l5_L4_E1", 5, 4, 1, "int-e4m1", "holdout"),
    ("l0_L32_E1", 0, 32, 1, "int-e4m1", "holdout"),
    ("l5_L5_E2", 5, 5, 2, "int-e4m1", "holdout"),
    ("l2_L16_E1", 2, 16, 1, "int-e4m1", "holdout"),
    ("l0_L32_E1_cheap", 0, 32, 1, "cheap-e4m1", "holdout"),
    ("l2_L8_E1", 2, 8, 1, "int-e4m1", "holdout"),
    ("l0_L8_E2", 0, 8, 2, "int-e4m1", "holdout"),
    ("l4_L32_E1", 4, 32, 1, "int-e4m1", "holdout"),
]
COMPONENTS = ("upd", "dot", "norm", "recip", "coef", "sched", "gen", "loader")
UNITS = COMPONENTS + ("core", "engine")


def _say(msg: str) -> None:
    print(f"[cost-cal {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _yosys(d: Path, top: str, verilog: str) -> dict:
    """Flattened synth_ecp5 of ``d/verilog`` (stat cached by the Verilog's hash)."""
    text = (d / verilog).read_text()
    sha = hashlib.sha256(text.encode()).hexdigest()
    stamp = d / "yosys-stamp.json"
    if stamp.is_file():
        old = json.loads(stamp.read_text())
        if old.get("sha") == sha:
            return old["yosys"]
    cmd = pnr.tool_command("yosys") + ["-q", "-l", "yosys.log", "-p",
                                        f"read_verilog -sv {verilog}; synth_ecp5 -top {top}; "
                                        f"tee -q -o stat.json stat -json"]
    t0 = time.monotonic()
    res = subprocess.run(["nice", "-n", "5"] + cmd, cwd=d, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"yosys failed in {d}: {res.stderr[-2000:]}")
    out = parse_stat(json.loads((d / "stat.json").read_text()), "ecp5")
    out["seconds"] = round(time.monotonic() - t0, 1)
    stamp.write_text(json.dumps({"sha": sha, "yosys": out}, indent=1, sort_keys=True))
    return out


def design_dir(name: str, layer: int, lanes: int, engines: int, datapath: str, model_cache: dict,
               keep: bool = False):
    """Write the design (as ``sbs build``) unless the same Verilog is there (``keep``: never rewrite
    an existing design, e.g. after an RTL change, which would remove its synthesis); returns
    (dir, manifest, weight-code constant bits)."""
    d = BUILD / name
    if datapath not in model_cache:
        dp = load_datapath(datapath)
        net, w, _ = load_net_and_weights("reference-mnist", weights_or_shipped(None), None)
        model_cache[datapath] = (net, w, dp, QuantizedModel(net, w, dp))
    net, w, dp, model = model_cache[datapath]
    ql = model.qlayers[layer]
    const = hwcost.weight_const_bits(ql.wcodes, ql.W.width)
    mpath = d / "manifest.json"
    if keep and mpath.is_file():
        return d, json.loads(mpath.read_text()), const
    eng = engine_for(model, layer, lanes, engines)
    top = f"layer_engine_l{layer}"
    text = to_verilog(eng, top)
    mpath = d / "manifest.json"
    if not (mpath.is_file() and json.loads(mpath.read_text()).get("verilog_sha256") == design_hash(text)):
        _say(f"{name}: writing the design (sbs build --layer {layer} --lanes {lanes} --engines {engines} "
             f"--datapath {datapath} -o {d.relative_to(ROOT)})")
        build_layer(net, w, dp, layer, d, lanes, engines)
    return d, json.loads(mpath.read_text()), const


_LUT_WEIGHT = {"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 4}


def _component_of(name: str) -> str:
    """Component of a hierarchical signal name: ``coreK.<component>.*`` -> the component (``core`` for
    the core's own memories and pipeline), anything outside the cores -> ``engine``."""
    parts = name.lstrip("\\").split(".")
    if parts[0].startswith("core") and parts[0][4:].isdigit():
        return parts[1] if len(parts) > 2 and parts[1] in COMPONENTS else "core"
    return "engine"


def attribute(netlist: Path, top: str) -> dict:
    """Per component ``{lut, ff, dsp, bram}`` of a flattened Yosys netlist: every cell goes to the
    component named by the first public net it drives (or, for a cell driving only internal nets,
    by the cells it feeds, up to three levels); Yosys keeps the hierarchical names of the signals."""
    mod = json.loads(netlist.read_text())["modules"][top]
    bitname = {}
    for name, nn in mod["netnames"].items():
        if nn.get("hide_name", 0):
            continue
        for b in nn["bits"]:
            if isinstance(b, int):
                bitname.setdefault(b, name)
    sinks: dict = {}
    for cname, cell in mod["cells"].items():
        for port, d in cell.get("port_directions", {}).items():
            if d == "input":
                for b in cell["connections"][port]:
                    if isinstance(b, int):
                        sinks.setdefault(b, []).append(cname)

    def comp(cname, depth=0):
        cell = mod["cells"][cname]
        if not cname.startswith("$"):
            return _component_of(cname)
        outs = [b for p, d in cell.get("port_directions", {}).items() if d == "output"
                for b in cell["connections"][p] if isinstance(b, int)]
        for b in outs:
            if b in bitname:
                return _component_of(bitname[b])
        if depth < 3:
            for b in outs:
                for s in sinks.get(b, []):
                    c = comp(s, depth + 1)
                    if c:
                        return c
        return None

    out: dict = {}
    for cname, cell in mod["cells"].items():
        t = cell["type"]
        key = {"TRELLIS_FF": "ff", "MULT18X18D": "dsp", "ALU54B": "dsp", "DP16KD": "bram", "PDPW16KD": "bram"}.get(t)
        if key is None and t not in _LUT_WEIGHT:
            continue
        c = comp(cname) or "engine"
        slot = out.setdefault(c, {"lut": 0, "ff": 0, "dsp": 0, "bram": 0})
        if key is None:
            slot["lut"] += _LUT_WEIGHT[t]
        else:
            slot[key] += 1
    return out


def nextpnr_of(d: Path, manifest: dict) -> dict | None:
    """Placed LUT4/FF/MULT/DP16KD of the same Verilog, if any run of sbs pnr exists."""
    sha = manifest["verilog_sha256"]
    for p in [d / "pnr.json"] + sorted((ROOT / "build").glob("*/*/pnr.json")):
        if not p.is_file():
            continue
        try:
            r = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if r.get("verilog_sha256") == sha and r.get("utilization"):
            u = r["utilization"]
            out = {k: u[k]["used"] for k in ("LUT4", "FF", "MULT18X18D", "DP16KD") if k in u}
            out["source"] = str(p.relative_to(ROOT))
            return out
    le = RESULTS / "layer_engines.json"
    if le.is_file():
        for r in json.loads(le.read_text()).get("results", []):
            if r.get("verilog_sha256") == sha:
                out = {k: r["resources"][k]["used"] for k in ("LUT4", "FF", "MULT18X18D", "DP16KD")}
                out["source"] = "bench/results/layer_engines.json"
                return out
    return None


def _model(manifest: dict, fit: bool) -> dict:
    """The model's per-component costs for one design (from its manifest)."""
    from fixedpoint.datapath import Datapath
    from sbs_model.network import reference_mnist
    dp = Datapath.from_dict(manifest["datapath"])
    net = reference_mnist(int(manifest["T"]))
    li = int(manifest["layer"])
    return hwcost.layer_engine_units(dp, net.layers[li], tuple(manifest["input_shape"]), li, int(manifest["lanes"]),
                                     int(manifest["engines"]), w_format=manifest["formats"]["weights"], fit=fit,
                                     w_const_bits=tuple(manifest.get("w_const_bits", (0, 0))))


def _sum(units: dict) -> hwcost.Cost:
    tot = hwcost.Cost()
    for c in units.values():
        tot = tot + c
    return tot


def fit_factors(rows: list[dict], manifests: dict) -> dict:
    """LUT4 and FF factor per component: the sum over the training designs of the Yosys cells
    attributed to it over the sum of its structural count."""
    num: dict = {}
    den: dict = {}
    for r in rows:
        if r["role"] != "train" or "components" not in r:
            continue
        raw = _model(manifests[r["design"]], fit=False)
        if manifests[r["design"]]["datapath"]["update"] == "scaled":
            # only the scaled lanes' factor: their cells and the dot lanes' together, less the dot
            # lanes' estimate (the attribution boundary between the two moves with the lanes' RTL)
            y = r["components"]
            dot = _model(manifests[r["design"]], fit=True)["dot"]
            num.setdefault("upd_scaled", [0, 0])
            den.setdefault("upd_scaled", [0, 0])
            num["upd_scaled"][0] += y["upd"]["lut"] + y["dot"]["lut"] - dot.lut
            num["upd_scaled"][1] += y["upd"]["ff"] + y["dot"]["ff"] - dot.ff
            den["upd_scaled"][0] += raw["upd"].lut
            den["upd_scaled"][1] += raw["upd"].ff
            continue
        for k in UNITS:
            y = r["components"].get(k, {"lut": 0, "ff": 0})
            num.setdefault(k, [0, 0])
            den.setdefault(k, [0, 0])
            num[k][0] += y["lut"]
            num[k][1] += y["ff"]
            den[k][0] += raw[k].lut
            den[k][1] += raw[k].ff
    return {k: [round(num[k][j] / den[k][j], 3) if den[k][j] else 1.0 for j in range(2)] for k in num}


def compare(rows: list[dict], manifests: dict) -> list[dict]:
    """Per design: estimate (fitted model), Yosys, nextpnr and the ratios."""
    out = []
    for r in rows:
        est = _sum(_model(manifests[r["design"]], fit=True))
        e = {"lut4": est.lut, "ff": est.ff, "mult18": est.dsp, "dp16kd": est.bram}
        row = {k: r[k] for k in ("design", "role", "layer", "lanes", "engines", "datapath", "slots", "beats",
                                 "command", "verilog_sha256")}
        row["estimate"] = e
        if "yosys_error" in r:
            row["yosys_error"] = r["yosys_error"]
        if "yosys" in r:
            y = r["yosys"]
            yv = {"lut4": y["lut"], "ff": y["ff"], "mult18": y["dsp"], "dp16kd": y["bram"],
                  "cells": y["cells"]}
            row["yosys"] = yv
            row["estimate_over_yosys"] = {k: round(e[k] / yv[k], 3) if yv[k] else None for k in e}
        row["estimate_placed_lut4"] = int(round(e["lut4"] * hwcost.NEXTPNR_LUT_FACTOR))
        if r.get("nextpnr"):
            n = r["nextpnr"]
            nv = {"lut4": n.get("LUT4"), "ff": n.get("FF"), "mult18": n.get("MULT18X18D"), "dp16kd": n.get("DP16KD"),
                  "source": n.get("source")}
            row["nextpnr"] = nv
            row["estimate_over_nextpnr"] = {k: round(e[k] / nv[k], 3) if nv.get(k) else None for k in e}
            row["estimate_placed_over_nextpnr_lut4"] = round(row["estimate_placed_lut4"] / nv["lut4"], 3)
            if "yosys" in row:
                row["nextpnr_over_yosys_lut4"] = round(nv["lut4"] / row["yosys"]["lut4"], 3)
        if "components" in r:
            fitted = _model(manifests[r["design"]], fit=True)
            row["components"] = {k: {"yosys": [r["components"].get(k, {}).get(x, 0) for x in ("lut", "ff", "dsp", "bram")],
                                     "estimate": [fitted[k].lut, fitted[k].ff, fitted[k].dsp, fitted[k].bram]}
                                 for k in UNITS}
        out.append(row)
    return out


def plot(table: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [r["design"] + (" *" if r["role"] == "train" else "") for r in table if "yosys" in r]
    rows = [r for r in table if "yosys" in r]
    x = range(len(rows))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    w = 0.27
    a1.bar([i - w for i in x], [r["estimate"]["lut4"] for r in rows], w, label="estimate (hwcost)")
    a1.bar(list(x), [r["yosys"]["lut4"] for r in rows], w, label="Yosys synth_ecp5")
    a1.bar([i + w for i in x], [(r.get("nextpnr") or {}).get("lut4") or 0 for r in rows], w, label="nextpnr (placed)")
    a1.set_ylabel("LUT4 (incl. CCU2C halves, LUT RAM)")
    a1.legend()
    a1.set_title("Layer engines on ECP5: cost model vs Yosys vs nextpnr (* = fitted on it)")
    for key, mk in (("lut4", "o"), ("ff", "s"), ("mult18", "^"), ("dp16kd", "v")):
        a2.plot(list(x), [r["estimate_over_yosys"][key] for r in rows], mk, label=f"{key} estimate / Yosys")
    a2.plot(list(x), [(r.get("estimate_over_nextpnr") or {}).get("lut4") or float("nan") for r in rows], "x",
            ms=10, label="lut4 estimate / nextpnr")
    a2.plot(list(x), [r.get("estimate_placed_over_nextpnr_lut4") or float("nan") for r in rows], "+",
            ms=12, label=f"lut4 estimate x {hwcost.NEXTPNR_LUT_FACTOR} / nextpnr")
    a2.axhspan(0.75, 1.25, color="0.9")
    a2.axhline(1.0, color="0.5", lw=0.8)
    a2.set_ylabel("ratio")
    a2.set_xticks(list(x))
    a2.set_xticklabels(names, rotation=30, ha="right")
    a2.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="design names (default: all)")
    ap.add_argument("--report-only", action="store_true", help="no synthesis: report what is cached")
    ap.add_argument("--no-write", action="store_true", help="do not write the JSON / plot")
    ap.add_argument("--skip-missing", action="store_true",
                    help="leave out the designs that have no Yosys result yet (no synthesis at all)")
    args = ap.parse_args(argv)
    cache: dict = {}
    rows = []
    manifests = {}
    for name, layer, lanes, engines, datapath, role in DESIGNS:
        if args.only and name not in args.only:
            continue
        if args.skip_missing and not ((BUILD / name / pnr.NETLIST_STAMP).is_file()
                                      or (BUILD / name / "yosys-error.txt").is_file()):
            _say(f"{name}: no Yosys result yet (skipped)")
            continue
        d, manifest, const = design_dir(name, layer, lanes, engines, datapath, cache, keep=args.report_only)
        manifests[name] = dict(manifest, w_const_bits=const)
        row = {"design": name, "role": role, "layer": layer, "lanes": lanes, "engines": engines,
               "datapath": datapath, "slots": manifest["slots"], "beats": manifest["beats"],
               "verilog_sha256": manifest["verilog_sha256"],
               "command": f"sbs build --layer {layer} --lanes {lanes} --engines {engines} --datapath {datapath} "
                          f"-o DIR && yosys synth_ecp5 (as sbs pnr)"}
        if not args.report_only:
            _say(f"{name}: yosys synth_ecp5 of the whole engine")
            try:
                stamp = pnr.synthesise(d, manifest, progress=lambda s: None)
            except RuntimeError as exc:  # e.g. Yosys 0.70's ABC9 reintegration assertion
                err = str(exc).strip().splitlines()[-1]
                _say(f"{name}: yosys failed: {err}")
                (d / "yosys-error.txt").write_text(err + "\n")
                stamp = None
        elif (d / "yosys-error.txt").is_file():
            stamp = None
            row["yosys_error"] = (d / "yosys-error.txt").read_text().strip()
        elif (d / pnr.NETLIST_STAMP).is_file():
            stamp = json.loads((d / pnr.NETLIST_STAMP).read_text())
            if stamp.get("verilog_sha256") != manifest["verilog_sha256"]:
                stamp = None
        else:
            stamp = None
        if stamp:
            row["yosys"] = stamp["yosys"]
            row["yosys_seconds"] = stamp.get("seconds")
        if (d / pnr.NETLIST).is_file() and "yosys" in row:
            row["components"] = attribute(d / pnr.NETLIST, manifest["top"])
        row["nextpnr"] = nextpnr_of(d, manifest)
        row["manifest"] = {k: manifest[k] for k in ("S", "N", "T", "ips", "input_shape", "cycles_per_image")}
        rows.append(row)
        _say(f"{name}: {row.get('yosys', {}).get('lut')} LUT, {row.get('yosys', {}).get('dsp')} MULT, "
             f"{row.get('yosys', {}).get('bram')} DP16KD")
    (BUILD / "rows.json").write_text(json.dumps(rows, indent=1, sort_keys=True))
    table = compare(rows, manifests)
    fitted = fit_factors(rows, manifests)
    hold = [r for r in table if r["role"] == "holdout" and "yosys" in r]
    summary = {}
    for key in ("lut4", "ff", "mult18", "dp16kd"):
        rs = [r["estimate_over_yosys"][key] for r in hold if r["estimate_over_yosys"].get(key)]
        if rs:
            summary[f"{key}_estimate_over_yosys_holdout"] = {"min": min(rs), "max": max(rs)}
    exact = [r["design"] for r in table if "yosys" in r and r["estimate"]["mult18"] == r["yosys"]["mult18"]
             and r["estimate"]["dp16kd"] == r["yosys"]["dp16kd"]]
    summary["mult18_and_dp16kd_exact"] = exact
    summary["mult18_and_dp16kd_not_exact"] = [r["design"] for r in table if "yosys" in r and r["design"] not in exact]
    for r in table:
        _say(f"{r['design']:>10} {r['role']:>7}: estimate {r['estimate']}, yosys "
             f"{ {k: (r.get('yosys') or {}).get(k) for k in r['estimate']} }, nextpnr {r.get('nextpnr')}")
    _say(f"factors fitted on the training designs (LAYER_FIT in sbs_model/hwcost.py): {fitted}")
    _say(f"model factors in use: {hwcost.LAYER_FIT}")
    if not args.no_write:
        extra = {"lut4_definition": "LUT4 cells + 2 x CCU2C + 4 x TRELLIS_DPR16X4 (Yosys); TRELLIS_COMB (nextpnr)",
                 "fit_factors_from_training": fitted, "model_factors": {k: list(v) for k, v in hwcost.LAYER_FIT.items()},
                 "summary": summary,
                 "tools": {"yosys": pnr.tool_versions().get("yosys")}}
        path = write_result("cost_calibration", table, extra)
        plot(table, RESULTS / "cost_calibration.png")
        _say(f"wrote {path} and cost_calibration.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
