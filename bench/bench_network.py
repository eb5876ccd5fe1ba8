"""Whole-network accelerator: ``sbs build`` + ``sbs cosim`` of the reference network (shipped
weights, int-e4m1, the planner's plan) on MNIST test images -> ``bench/results/network_cosim.json``.

Usage: ``python bench/bench_network.py [-n 100] [--spikes T] [--jobs J] [--out DIR]``.
The result holds the cosim report (images, equal, mismatched, cycles per image from the cycle model
and measured, accuracy, images per second of simulation), the plan, the manifest's estimate, the
commands, machine and commit.  Latency in ms needs the post-route Fmax (``sbs pnr DIR``,
``bench/results/network_pnr.json``), never an assumed clock.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from bench.common import write_result


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
            txt = (f"layer {i}: SbS\nlayer engine\nL={p['lanes']} E={p['engines']}\n"
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
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.diagram:
        diagram(json.loads((out / "manifest.json").read_text()), args.diagram)
        print(f"-> {args.diagram}")
        return 0
    build = ["sbs", "build", "--plan", args.plan, "-o", str(out), "--lint"]
    if args.spikes:
        build += ["--spikes", str(args.spikes)]
    rep_path = out / "cosim.json"
    cos = ["sbs", "cosim", str(out), "-n", str(args.n), "--first", str(args.first), "--jobs", str(args.jobs),
           "--json", str(rep_path)]
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
    extra = {"commands": [shlex.join(build), shlex.join(cos)]}
    if args.source_commit:
        extra["source_commit"] = args.source_commit
    path = write_result(args.name, results, extra)
    print(f"-> {path}: equal={rep['equal']} images={rep['images']} cycles={rep['cycles_per_image']} "
          f"accuracy={rep['accuracy']:.4f}")
    return 0 if rep["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
