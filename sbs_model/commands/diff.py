"""``sbs diff``: compare two runs (trace files, or a float/numpy run against the quantized model)."""
from __future__ import annotations

import numpy as np

from sbs_model import loader
from sbs_model.atomic import write_json
from sbs_model.configs import load_network
from sbs_model.data import load_dataset
from sbs_model.diff import compare, describe_run, from_trace, load_trace, save_trace
from sbs_model.outputs import output_file
from sbs_model.quant import QuantizedModel
from sbs_model.weights import load_any

NAME = "diff"
HELP = ("compare two runs layer by layer: first divergence (layer, pattern, IP, element, spike, bit patterns) and "
        "per-layer error statistics; exit 0 if equal, 1 if they differ")


def add_arguments(p):
    p.add_argument("a", nargs="?", help="trace file A (.npz from sbs_model.diff.save_trace); the reference")
    p.add_argument("b", nargs="?", help="trace file B (.npz)")
    g = p.add_argument_group("produce both runs instead of reading files")
    g.add_argument("--config", default=None,
                   help="preset name, .json config or pytorch-sbs directory (default: reference-mnist)")
    g.add_argument("--weights", default=None,
                   help="an .npz weight file or a pytorch-sbs directory (default: the project's trained model "
                        "shipped in the package, sbs_model/models/reference-mnist.npz)")
    g.add_argument("--datapath", default="int-e4m1", help="B's datapath: preset name or .json file (default int-e4m1)")
    g.add_argument("--against", default="float", choices=("float", "numpy"),
                   help="A: the float golden model (float32) or the numpy quantized reference (default float)")
    g.add_argument("--data", default=None, metavar="DIR", help="IDX test files (default: the embedded MNIST images)")
    g.add_argument("--dataset", default="mnist", help="dataset name for --data (default mnist)")
    g.add_argument("-n", type=int, default=20, help="number of test images (default 20)")
    g.add_argument("--spikes", type=int, default=None, help="spikes per IP in every SbS layer (default: the config's)")
    g.add_argument("--seed", type=int, default=0, help="spike random seed (default 0)")
    g.add_argument("--save-a", default=None, metavar="FILE", help="also write run A as a trace file")
    g.add_argument("--save-b", default=None, metavar="FILE", help="also write run B as a trace file")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the comparison as JSON")


def _produce(args):
    args.weights = loader.weights_or_shipped(args.weights)
    if args.n < 1:
        raise ValueError(f"-n must be >= 1, got {args.n}")
    if args.spikes is not None and args.spikes < 1:
        raise ValueError(f"--spikes must be >= 1, got {args.spikes}")
    if not 0 <= args.seed < 2 ** 32:
        raise ValueError(f"--seed must be in [0, {2 ** 32 - 1}], got {args.seed}")
    net = load_network(args.config or "reference-mnist", spikes=args.spikes)
    weights, _ = load_any(args.weights, net)
    images, _ = load_dataset(args.dataset, directory=args.data, split="test", n=args.n)
    qm = QuantizedModel(net, weights, args.datapath, seed=args.seed)
    if args.against == "float":
        ta = QuantizedModel(net, weights, {}, seed=args.seed).trace(images)
    else:
        ta = qm.trace(images, backend="numpy")
    tb = qm.trace(images)
    return from_trace(ta, images), from_trace(tb, images), qm, images


def run(args) -> int:
    files = args.a is not None or args.b is not None
    if files and (args.config or args.weights):
        raise ValueError("give either two trace files A B or --config/--weights to produce both runs, not both")
    if files and (args.save_a or args.save_b):
        raise ValueError("--save-a/--save-b: only when sbs diff produces the runs (without trace files A B)")
    for arg in ("save_a", "save_b", "json"):  # before any work: a wrong output path costs nothing
        if getattr(args, arg):
            output_file(getattr(args, arg), "--" + arg.replace("_", "-"))
    qm = images = None
    if files:
        if args.a is None or args.b is None:
            raise ValueError("two trace files are needed: sbs diff A B")
        a, b = load_trace(args.a), load_trace(args.b)
    else:
        a, b, qm, images = _produce(args)
    res = compare(a, b)
    d = res.first
    if qm is not None and d is not None and res.layers[d.layer].kinds == "codes/codes" and d.layer in qm.qlayers:
        # numpy vs numba: record both kernels spike by spike at the diverging IP
        ra = qm.trace_ip(images, d.layer, d.pattern, d.ip, backend="numpy")
        rb = qm.trace_ip(images, d.layer, d.pattern, d.ip, backend="numba")
        key = (d.layer, d.pattern, d.ip)
        a.spikes[key], b.spikes[key] = ra["hist"], rb["hist"]
        res = compare(a, b)
    if qm is not None:
        if args.save_a:
            save_trace(args.save_a, a)
            print(f"wrote {args.save_a}")
        if args.save_b:
            save_trace(args.save_b, b)
            print(f"wrote {args.save_b}")
    for name, run_ in (("A", a), ("B", b)):
        print(f"{name}: {describe_run(run_)}")
    print(res.text())
    if args.json:
        write_json(args.json, res.to_dict())
        print(f"wrote {args.json}")
    return 0 if res.equal else 1

