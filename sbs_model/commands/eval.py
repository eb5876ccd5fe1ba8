"""``sbs eval``: test accuracy of an SbS network (float golden kernels, or the bit-exact quantized model
with ``--datapath``) with a 95 % interval."""
from __future__ import annotations

from sbs_model import loader
from sbs_model.atomic import write_json
from sbs_model.data import load_dataset
from sbs_model.model import Model
from sbs_model.outputs import output_file
from sbs_model.quant import QuantizedModel, overflow_warnings
from sbs_model.quant_ref import weight_range_warnings

NAME = "eval"
HELP = ("evaluate a network's accuracy on a dataset (float model, or the quantized model with --datapath): "
        "accuracy, 95 % interval, ms per pattern")


def add_arguments(p):
    p.add_argument("--config", default="reference-mnist",
                   help="preset name, native .json config or pytorch-sbs directory (default: reference-mnist)")
    p.add_argument("--weights", default=None,
                   help="an .npz weight file or a pytorch-sbs directory with Weight_L*_S*.npy (default: the "
                        "project's trained model shipped in the package, sbs_model/models/reference-mnist.npz)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="directory with the gzipped IDX test files (default: the embedded 2000 MNIST test images)")
    p.add_argument("--dataset", default="mnist", help="dataset name for --data (default: mnist)")
    p.add_argument("--spikes", type=int, default=None, help="spikes per IP in every SbS layer (default: the config's)")
    p.add_argument("--seed", type=int, default=0, help="spike random seed, 0..2**32-1 (default: 0)")
    p.add_argument("-n", type=int, default=None, help="evaluate the first N images (default: all)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                   help="float32 (fast) or float64 (bit-identical to the numpy reference); default float32")
    p.add_argument("--datapath", default=None, metavar="PRESET|FILE.json",
                   help="evaluate the bit-exact quantized model with this datapath (preset such as paper or "
                        "int-e4m1, or a Datapath JSON file) instead of the float model")
    p.add_argument("--batch", type=int, default=200, help="images per kernel call (default: 200)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the result as JSON (atomically)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    args.weights = loader.weights_or_shipped(args.weights)
    if args.spikes is not None and args.spikes < 1:
        raise ValueError(f"--spikes must be >= 1, got {args.spikes}")
    if not 0 <= args.seed < 2 ** 32:
        raise ValueError(f"--seed must be in [0, {2 ** 32 - 1}], got {args.seed}")
    if args.n is not None and args.n < 1:
        raise ValueError(f"-n must be >= 1, got {args.n}")
    if args.json is not None:  # before the evaluation: a wrong path must not lose the result
        output_file(args.json, "--json")
    quantized = args.datapath is not None
    if quantized:
        net, weights, _ = loader.load_net_and_weights(args.config, args.weights, args.spikes)
        model = QuantizedModel(net, weights, args.datapath, seed=args.seed)
        for line in weight_range_warnings(model.datapaths, weights):  # before the work, never silent
            print(f"warning: {line}")
    else:
        model = Model.load(args.config, args.weights, spikes=args.spikes, dtype=args.dtype, seed=args.seed)
    images, labels = load_dataset(args.dataset, directory=args.data, split="test", n=args.n)
    res = model.evaluate(images, labels, batch=args.batch, progress=not args.no_progress)
    lo, hi = res["ci95"]
    spikes = res["spikes"]
    kind = f"quantized, datapath {args.datapath}" if quantized else res["dtype"]
    print(f"accuracy {100 * res['accuracy']:.2f} % ({res['correct']}/{res['n']}), 95 % interval "
          f"[{100 * lo:.2f}, {100 * hi:.2f}] %; {res['ms_per_pattern']:.2f} ms per pattern "
          f"({kind}, T = {spikes[0] if len(set(spikes)) == 1 else spikes}, seed {res['seed']})")
    if quantized:
        for line in overflow_warnings(res["counters"]):
            print(f"warning: {line}")
    if args.json:
        doc = dict(res)
        doc.update(config=str(args.config), weights=str(args.weights))
        if quantized:
            doc.update(datapath=str(args.datapath), datapath_detail=model.describe())
        doc.update(data=str(args.data) if args.data else "embedded", dataset=args.dataset,
                   network=model.net.name, config_hash=model.net.config_hash())
        write_json(args.json, doc)
        print(f"wrote {args.json}")
    return 0
