"""Block diagram of the whole-network accelerator for the README: ``sbs build`` of the shipped model
with ``sbs build``'s defaults (T of the config, the default datapath, the planner's plan), then
:func:`sim.demo.diagram.draw_accelerator` from the design's ``manifest.json``.

Usage: ``python bench/accelerator_diagram.py [--design DIR] [--skip-build] [-o docs/img/accelerator.svg]``
(``-o`` may name several files, ``.svg`` and/or ``.png``).  ``sbs demo`` draws the same picture of
the design it builds into ``OUT/accelerator.svg`` / ``.png``."""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from sim.demo.diagram import draw_accelerator


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--design", default="build/accelerator_diagram",
                    help="design directory of 'sbs build' (default build/accelerator_diagram)")
    ap.add_argument("--skip-build", action="store_true", help="draw the design already in --design")
    ap.add_argument("-o", "--out", nargs="+", default=["docs/img/accelerator.svg", "docs/img/accelerator.png"],
                    help="output pictures, .svg or .png (default docs/img/accelerator.svg and .png)")
    args = ap.parse_args(argv)
    for o in args.out:
        if Path(o).suffix.lower() not in (".svg", ".png"):
            print(f"accelerator_diagram: -o {o}: allowed suffixes .svg, .png", file=sys.stderr)
            return 2
    design = Path(args.design)
    if not args.skip_build:
        cmd = ["sbs", "build", "-o", str(design)]
        print("$", shlex.join(cmd), flush=True)
        rc = subprocess.call(cmd)
        if rc != 0:
            print(f"accelerator_diagram: sbs build failed (exit {rc})", file=sys.stderr)
            return rc
    mpath = design / "manifest.json"
    if not mpath.is_file():
        print(f"accelerator_diagram: --design {design}: no manifest.json (run without --skip-build)", file=sys.stderr)
        return 2
    man = json.loads(mpath.read_text())
    for o in args.out:
        Path(o).parent.mkdir(parents=True, exist_ok=True)
        draw_accelerator(man, o)
        print(f"-> {o} (design {man['verilog_sha256'][:12]}, {man['cycles_per_image']:,} cycles per image)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
