"""``sbs demo``: the whole co-design loop (float and quantized accuracy, Verilog, lint, cocotb/Verilator
regression, cost, report) on the shipped model and the embedded test images; see :mod:`sim.demo`."""
from __future__ import annotations

from sbs_model.outputs import output_dir
from sim.demo import pipeline
from sim.demo.options import make_options
from sim.demo.report import summary_table
from sim.demo.steps import exit_code

NAME = "demo"
HELP = ("the whole co-design loop on what ships in the package: accuracy (float, paper and integer datapaths), "
        "Verilog of one layer's IP engine, lint, RTL-vs-model regression, the whole-network accelerator "
        "(build + cosim of a few images), cost, OUT/report.md")


def add_arguments(p):
    p.epilog = ("exit code: 0 when no step failed (skipped steps, e.g. no Verilator or no synth extra, do not fail "
                "the run), 1 when a step failed, 2 for bad input")
    p.add_argument("-o", "--out", default="sbs-demo-out", help="output directory (default: ./sbs-demo-out)")
    p.add_argument("-n", type=int, default=None,
                   help="embedded test images for the float model, 1..2000 (default 2000; --quick: 20)")
    p.add_argument("--quant-n", type=int, default=None,
                   help="images per quantized format, at most N (default 200; --quick: 4)")
    p.add_argument("--spikes", type=int, default=None, metavar="T",
                   help="spikes per IP in every SbS layer (default: the model's evaluation T; --quick: 400)")
    p.add_argument("--quick", action="store_true",
                   help="tiny run: 20 float / 4 quantized images, T = 400, 2 IPs in the regression; the "
                        "accelerator at T = 32 with 2 images")
    p.add_argument("--no-rtl", dest="rtl", action="store_false",
                   help="skip Verilog, lint, regression and synthesis (reported as skipped)")
    p.add_argument("--seed", type=int, default=0, help="spike random seed, 0..2**32-1 (default 0)")
    p.add_argument("--weights", default=None,
                   help="run on other weights: an .npz weight file or a pytorch-sbs directory "
                        "(default: the shipped model sbs_model/models/reference-mnist.npz)")
    p.add_argument("--layer", type=int, default=None,
                   help="SbS layer whose IP engine is generated and simulated (default: the output layer)")
    p.add_argument("--lanes", type=int, default=None,
                   help="lanes L of the engine and the cost model, 1..64 (default 8)")
    p.add_argument("--datapath", default=None,
                   help="datapath of the RTL: an integer preset (default: the first of the demo's table, int-e4m1)")
    p.add_argument("--sim-ips", type=int, default=None, help="IPs in the regression, 1..64 (default 3; --quick: 2)")
    p.add_argument("--no-network", dest="network", action="store_false",
                   help="skip the whole-network accelerator (build, cosim; reported as skipped)")
    p.add_argument("--network-images", type=int, default=None, metavar="N",
                   help="embedded test images cosimulated on the accelerator, 1..2000 (default 1; --quick: 2)")
    p.add_argument("--network-spikes", type=int, default=None, metavar="T",
                   help="T of the accelerator, 1..100000 (default: the demo's T; at T = 1600 one image takes "
                        "several minutes of Verilator; --quick: 32)")
    p.add_argument("--network-plan", default="auto", metavar="auto|FILE.json",
                   help="engines and lanes per SbS layer of the accelerator: auto (default, the planner) or a plan "
                        "JSON file, as 'sbs build --plan'")
    p.add_argument("--synth", action="store_true",
                   help="also synthesise the whole accelerator with Yosys (synth_ecp5; tens of minutes; needs the "
                        "synth extra)")
    p.add_argument("--pnr", action="store_true",
                   help="also place and route the whole accelerator (Yosys + nextpnr-ecp5, LFE5U-85F; tens of "
                        "minutes; needs the synth extra); only then, with timing met, is a latency in ms quoted")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or step messages")


def run(args) -> int:
    output_dir(args.out, "-o/--out")  # before any work
    opts = make_options(out=args.out, n=args.n, quant_n=args.quant_n, spikes=args.spikes, quick=args.quick,
                        rtl=args.rtl, seed=args.seed, weights=args.weights, layer=args.layer, lanes=args.lanes,
                        sim_ips=args.sim_ips, datapath=args.datapath, progress=not args.no_progress,
                        network=args.network, network_images=args.network_images,
                        network_spikes=args.network_spikes, synth=args.synth, pnr=args.pnr,
                        network_plan=args.network_plan)
    demo = pipeline.run_demo(opts)
    print(summary_table(demo))
    return exit_code(demo.steps)
