"""``sbs train``: train an SbS network with backprop through the converged h (see
docs/training.md)."""
from __future__ import annotations

import sys

from sbs_model.configs import load_network
from sbs_model.data import load_dataset
from sbs_model.outputs import output_dir
from sbs_model.train.losses import LOSSES
from sbs_model.train.optimizers import OPTIMIZERS
from sbs_model.train.rules import DEVICES
from sbs_model.train.schedulers import SCHEDULERS
from sbs_model.train.trainer import Trainer, TrainingDiverged, TrainSettings
from sbs_model.weights import load_any

NAME = "train"
HELP = "train an SbS network (backprop through the converged h); checkpoints, --resume, metrics, curve"


def _opt_int(text):
    return None if text in (None, "none", "all") else int(text)


def add_arguments(p):
    p.add_argument("--config", default="reference-mnist", help="preset, native .json or pytorch-sbs directory")
    p.add_argument("--data", required=True, help="directory with the MNIST-format IDX files (train + t10k)")
    p.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist"))
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--out", required=True, help="run directory: checkpoint, weights.npz, metrics, curve.png")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    p.add_argument("--spikes", type=int, default=None, help="spikes per IP during training (default: config's)")
    p.add_argument("--eval-spikes", type=int, default=None, help="spikes per IP at evaluation (default: --spikes)")
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.add_argument("--optimizer", default="madam", choices=sorted(OPTIMIZERS))
    p.add_argument("--loss", default="mixed", choices=sorted(LOSSES))
    p.add_argument("--scheduler", default="plateau", choices=sorted(SCHEDULERS))
    p.add_argument("--patience", type=int, default=10, help="plateau scheduler patience in epochs (default 10)")
    p.add_argument("--factor", type=float, default=0.1, help="plateau/step scheduler lr factor (default 0.1)")
    p.add_argument("--step-size", type=int, default=30, help="step scheduler: epochs between reductions")
    p.add_argument("--rule", default="backprop", help="'backprop', 'local' or per layer '0:local,2:backprop'")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--adam-eps", type=float, default=1e-20,
                   help="Adam epsilon (default 1e-20; the spec's 1e-8 stalls the lower layers, see docs/training.md)")
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--update-every", type=int, default=480, help="patterns per optimiser step (default 480)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", default=None, help="start from these weights (.npz or pytorch-sbs dir)")
    p.add_argument("--qat", default=None, metavar="FORMAT", help="quantization-aware: fixedpoint weight format")
    p.add_argument("--qat-rounding", default="rne", choices=("trunc", "rne", "rna"))
    p.add_argument("--limit-train", type=int, default=None, help="use the first N training images")
    p.add_argument("--eval-n", default="1000", help="test images per evaluation, or 'all' (default 1000)")
    p.add_argument("--eval-every", type=int, default=1, help="epochs between evaluations")
    p.add_argument("--checkpoint-every", type=int, default=25, help="optimiser steps between checkpoints")
    p.add_argument("--keep-epoch-weights", action="store_true", help="also write weights_epoch{N}.npz every epoch")
    p.add_argument("--chaos-layer", type=int, default=None, help="enable the CSBP chaotic loss on this layer")
    p.add_argument("--chaos-z0", type=float, default=0.1)
    p.add_argument("--chaos-beta", type=float, default=0.99)
    p.add_argument("--no-crop", action="store_true", help="centre crop instead of random crops")
    p.add_argument("--threads", type=int, default=None, help="numba threads (default: all)")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    import numba


    output_dir(args.out, "--out")  # before any work
    if args.threads is not None:
        if not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
            raise ValueError(f"--threads must be in 1..{numba.config.NUMBA_NUM_THREADS}, got {args.threads}")
        numba.set_num_threads(args.threads)
    net = load_network(args.config, spikes=args.spikes)
    if args.limit_train is not None and args.limit_train < 1:
        raise ValueError(f"--limit-train must be >= 1, got {args.limit_train}")
    train = load_dataset(args.dataset, args.data, "train", args.limit_train)
    test = load_dataset(args.dataset, args.data, "test")
    weights = None
    if args.weights:
        weights = load_any(args.weights, net)[0]
    s = TrainSettings(epochs=args.epochs, batch=args.batch, update_every=args.update_every, lr=args.lr,
                      optimizer=args.optimizer, adam_eps=args.adam_eps, loss=args.loss, scheduler=args.scheduler,
                      sched_patience=args.patience, sched_factor=args.factor, sched_step=args.step_size, seed=args.seed,
                      device=args.device, rules=args.rule, qat=args.qat, qat_rounding=args.qat_rounding,
                      crop="center" if args.no_crop else "random", eval_n=_opt_int(args.eval_n),
                      eval_every=args.eval_every, eval_spikes=args.eval_spikes,
                      checkpoint_every=args.checkpoint_every,
                      keep_epoch_weights=args.keep_epoch_weights, chaos_layer=args.chaos_layer,
                      chaos_z0=args.chaos_z0, chaos_beta=args.chaos_beta)
    trainer = Trainer(net, train, test, args.out, s, weights=weights, progress=not args.no_progress)
    try:
        history = trainer.run(resume=args.resume)
    except TrainingDiverged as exc:
        print(f"sbs train: error: {exc}", file=sys.stderr)
        return 3
    if history:
        last = history[-1]
        acc = last.get("test_accuracy")
        print(f"done: {last['epoch']} epochs, weights in {trainer.out / 'weights.npz'}"
              + (f", test accuracy {100 * acc:.2f} % on {last['test_n']} images" if acc is not None else ""))
    return 0
