"""The training loop behind ``sbs train``: epochs, accumulation of gradients over
``update_every`` patterns, optimiser/scheduler steps, evaluation, metrics, checkpoints, resume.

Determinism (what makes ``--resume`` exact): every random choice is a pure function of the
seed and the position in training, so the checkpoint's "RNG state" is ``(seed, epoch, pos)``:

* the epoch's order of training images: ``default_rng([seed, epoch]).permutation(n_train)``;
* random crops of the batch starting at position ``pos``: ``default_rng([seed, epoch, pos])``;
* spike draws: ``spike_random(seed, pattern, ...)`` with pattern key
  ``epoch * n_train + pos + b`` (fresh spike trains every epoch);
* evaluation: pattern key = index of the test image.

Gradients are summed over the IPs of all patterns of one update window (``update_every``
patterns, e.g. 480 = 20 batches of 24) and divided by the number of contributing IPs; an update
also happens at the end of an epoch with whatever has accumulated.  Checkpoints are written
right after an update (so no partial gradient sum has to be saved) every ``checkpoint_every``
updates and at the end of every epoch, holding weights, optimiser and scheduler state, the
regulariser state, the position in the epoch and the epoch's running loss/accuracy sums.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbs_model.atomic import write_bytes, write_json, write_text
from sbs_model.data import preprocess
from sbs_model.network import NetworkSpec, require_no_forgetting_offset
from sbs_model.train.checkpoint import load_checkpoint, save_checkpoint
from sbs_model.train.forward import network_forward
from sbs_model.train.gradients import network_backward
from sbs_model.train.losses import ChaoticLoss, get_loss
from sbs_model.train.optimizers import make_optimizer
from sbs_model.train.qat import quantizer
from sbs_model.train.rules import backend, parse_rules
from sbs_model.train.schedulers import make_scheduler
from sbs_model.weights import init_weights, save_weights, structure_mismatch

CHECKPOINT = "checkpoint.npz"


class TrainingDiverged(ValueError):
    """Loss, gradient or weights became non-finite; the last good checkpoint is kept."""


@dataclass
class TrainSettings:
    """Everything that defines a training run (stored in the checkpoint; ``--resume`` checks that
    the run-defining fields are unchanged)."""

    epochs: int = 1
    batch: int = 24                 # patterns per forward/backward call
    update_every: int = 480         # patterns per optimiser step (def.json: 20 batches of 24)
    lr: float = 0.01
    optimizer: str = "madam"
    loss: str = "mixed"
    scheduler: str = "plateau"
    sched_patience: int = 10        # plateau: epochs without improvement before a reduction
    sched_factor: float = 0.1       # plateau / step: lr multiplier
    sched_step: int = 30            # step: epochs between reductions
    seed: int = 0
    device: str = "cpu"
    rules: str = "backprop"
    threshold: float = 0.001        # weight clamp = threshold / C_in
    adam_eps: float = 1e-20         # Adam epsilon (spec: 1e-8; see docs/training.md)
    qat: str | None = None          # fixedpoint format text, e.g. "e4m1"
    qat_rounding: str = "rne"
    crop: str = "random"
    eval_n: int | None = 1000       # test images per evaluation (None: all)
    eval_every: int = 1             # epochs between evaluations (the last epoch is always evaluated)
    eval_spikes: int | None = None  # spikes per IP at evaluation (None: the training network's)
    checkpoint_every: int = 25      # updates between mid-epoch checkpoints
    keep_epoch_weights: bool = False  # also write weights_epoch{N}.npz after every epoch
    chaos_layer: int | None = None  # CSBP regulariser on this layer (None: off)
    chaos_z0: float = 0.1
    chaos_beta: float = 0.99
    chaos_i0: float = 0.65

    RUN_FIELDS = ("batch", "update_every", "optimizer", "loss", "seed", "rules", "threshold", "adam_eps", "qat",
                  "qat_rounding", "crop", "chaos_layer", "chaos_z0", "chaos_beta", "chaos_i0",
                  # the optimiser and scheduler state are restored, so these cannot change either
                  "lr", "scheduler", "sched_patience", "sched_factor", "sched_step")

    def validate(self, net: NetworkSpec):
        for name in ("epochs", "batch", "update_every", "eval_every", "checkpoint_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {v!r}")
        if self.epochs > 100000:
            raise ValueError(f"epochs: must be in 1..100000, got {self.epochs}")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2 ** 32:
            raise ValueError(f"seed: must be an integer in 0..{2 ** 32 - 1}, got {self.seed!r}")
        if self.crop not in ("random", "center"):
            raise ValueError(f"crop: must be 'random' or 'center', got {self.crop!r}")
        if self.eval_n is not None and self.eval_n < 1:
            raise ValueError(f"eval_n: must be >= 1 or None, got {self.eval_n}")
        if self.eval_spikes is not None and self.eval_spikes < 1:
            raise ValueError(f"eval_spikes: must be >= 1, got {self.eval_spikes}")
        if not (self.threshold > 0 and self.threshold < 1):
            raise ValueError(f"threshold: must be in (0, 1), got {self.threshold}")
        if self.chaos_layer is not None and self.chaos_layer not in net.sbs_layers():
            raise ValueError(f"chaos_layer: must be one of the SbS layers {net.sbs_layers()}, got {self.chaos_layer}")
        get_loss(self.loss)
        parse_rules(self.rules, net)

    def to_dict(self):
        return dataclasses.asdict(self)


def _preprocess_batch(images, crop, rng):
    return preprocess(images, crop=crop, rng=rng) if crop == "random" else preprocess(images, crop="center")


class Trainer:
    """``Trainer(net, train, test, out_dir, settings, weights=None)``; ``train``/``test`` are
    ``(uint8 images (n, 28, 28), labels)``; ``run(resume=False)`` trains and returns the metrics
    history (list of per-epoch dicts)."""

    def __init__(self, net: NetworkSpec, train, test, out_dir, settings: TrainSettings, weights=None,
                 progress: bool = True, stop_after_updates: int | None = None, log=print):
        settings.validate(net)
        for i, layer in enumerate(net.layers):  # the gradients assume the plain h update
            require_no_forgetting_offset(layer, i, "the trainer")
        self.net = net
        self.s = settings
        self.train_images, self.train_labels = np.asarray(train[0]), np.asarray(train[1]).astype(np.int64)
        self.test_images, self.test_labels = np.asarray(test[0]), np.asarray(test[1]).astype(np.int64)
        if len(self.train_images) < 1:
            raise ValueError("train: no training images")
        self.out = Path(out_dir)
        self.progress = progress
        self.stop_after_updates = stop_after_updates
        self.log = log
        self.fwd, self.bwd = backend(settings.device)
        self.rules = parse_rules(settings.rules, net)
        self.loss_fn = get_loss(settings.loss)
        floors = {i: 1.0 / net.layers[i].in_channels for i in self.rules}
        self.opt = make_optimizer(settings.optimizer, floors, lr=settings.lr, threshold=settings.threshold,
                                  eps=settings.adam_eps)
        self.sched = make_scheduler(settings.scheduler, settings.lr, t_max=settings.epochs,
                                    patience=settings.sched_patience, factor=settings.sched_factor,
                                    gamma=settings.sched_factor, step_size=settings.sched_step)
        self.chaos = (ChaoticLoss(settings.chaos_layer, settings.chaos_z0, settings.chaos_beta, settings.chaos_i0)
                      if settings.chaos_layer is not None else None)
        self.quant = None
        if settings.qat:
            self.quant = quantizer(settings.qat, settings.qat_rounding)
        if weights is None:
            weights = init_weights(net, settings.seed)
        self.W = {int(k): np.asarray(v, dtype=np.float64) for k, v in weights.items()}
        self.epoch = 0
        self.pos = 0
        self.updates = 0
        self.run_loss = 0.0
        self.run_correct = 0
        self.run_seen = 0
        self.train_seconds = 0.0
        self.cpu_seconds = 0.0
        self.history: list[dict] = []

    # ------------------------------------------------------------------ state
    def _state(self):
        arrays = {f"W{k}": v for k, v in self.W.items()}
        opt = self.opt.state()
        for key in list(opt):
            if isinstance(opt[key], np.ndarray):
                arrays[f"opt_{key}"] = opt.pop(key)
        state = {"settings": self.s.to_dict(), "config_hash": self.net.config_hash(), "network": self.net.to_dict(),
                 "n_train": len(self.train_images), "epoch": self.epoch, "pos": self.pos, "updates": self.updates,
                 "run_loss": self.run_loss,
                 "run_correct": self.run_correct, "run_seen": self.run_seen, "train_seconds": self.train_seconds,
                 "cpu_seconds": self.cpu_seconds, "optimizer": opt, "scheduler": self.sched.state(),
                 "chaos": self.chaos.state() if self.chaos else None, "history": self.history,
                 "rng": {"kind": "counter-based", "seed": self.s.seed, "epoch": self.epoch, "pos": self.pos}}
        return arrays, state

    def save(self):
        arrays, state = self._state()
        save_checkpoint(self.out / CHECKPOINT, arrays, state)

    def restore(self, path):
        arrays, st = load_checkpoint(path)
        if st["config_hash"] != self.net.config_hash():
            diff = structure_mismatch(NetworkSpec.from_dict(st["network"]), self.net)
            if diff:
                raise ValueError(f"resume: checkpoint {path} belongs to another network ({diff})")
            self.log("resume: same structure, different spike/eps settings than the checkpoint's network; "
                     "continuing with the new ones")
        for f in TrainSettings.RUN_FIELDS:
            if f in st["settings"] and st["settings"][f] != getattr(self.s, f):
                raise ValueError(f"resume: setting '{f}' is {getattr(self.s, f)!r} but the checkpoint has "
                                 f"{st['settings'][f]!r} (a resumed run keeps its settings; use a new --out "
                                 f"to change it)")
        if st.get("n_train") is not None and st["n_train"] != len(self.train_images):
            raise ValueError(f"resume: the checkpoint was made with {st['n_train']} training images, this run has "
                             f"{len(self.train_images)} (--limit-train and --data must be those of the checkpoint)")
        self.W = {int(k[1:]): v for k, v in arrays.items() if k.startswith("W")}
        opt = dict(st["optimizer"])
        opt.update({k[4:]: v for k, v in arrays.items() if k.startswith("opt_")})
        self.opt.load_state(opt)
        self.sched.load_state(st["scheduler"])
        if self.chaos:
            self.chaos.z = st["chaos"]["z"]
        for k in ("epoch", "pos", "updates", "run_loss", "run_correct", "run_seen", "train_seconds", "cpu_seconds", "history"):
            setattr(self, k, st[k])

    # ------------------------------------------------------------------ steps
    def forward_weights(self):
        if self.quant is None:
            return self.W
        return self.quant(self.W)[0]

    def _check_finite(self, what, *arrays):
        for a in arrays:
            if not np.all(np.isfinite(a)):
                raise TrainingDiverged(f"training stopped: non-finite {what} at epoch {self.epoch}, position "
                                       f"{self.pos}; the last good checkpoint {self.out / CHECKPOINT} is kept")

    def batch_step(self, images, labels, first_key, crop_rng, acc):
        """Forward + backward of one batch; adds gradient sums/counts into ``acc``; returns
        (loss sum, correct)."""
        x = _preprocess_batch(images, self.s.crop, crop_rng)
        patterns = first_key + np.arange(len(images), dtype=np.int64)
        wf = self.forward_weights()
        inputs, outputs = network_forward(self.net, wf, x, self.s.seed, patterns, sbs_layer=self.fwd)
        h = outputs[-1].reshape(len(images), -1)
        loss, g = self.loss_fn(h, labels)
        extra = {}
        if self.chaos:
            closs, cg = self.chaos(outputs[self.chaos.layer])
            loss += closs
            extra[self.chaos.layer] = cg
        self._check_finite("loss", np.array([loss]), g)
        grads = network_backward(self.net, wf, inputs, outputs, g, self.rules, self.bwd, extra)
        for k, (dw, n) in grads.items():
            self._check_finite(f"gradient of layer {k}", dw)
            if k in acc:
                acc[k] = (acc[k][0] + dw, acc[k][1] + n)
            else:
                acc[k] = (dw, n)
        correct = int(np.sum(np.argmax(h, axis=1) == labels))
        return loss, correct

    def update(self, acc):
        grads = {k: dw / n for k, (dw, n) in acc.items()}
        new = self.opt.step(self.W, grads)
        for k, w in new.items():
            self._check_finite(f"weights of layer {k}", w)
        self.W = new
        if self.chaos:
            self.chaos.step()
        self.updates += 1
        acc.clear()

    def evaluate(self, n=None):
        """Accuracy on the first ``n`` test images (centre crop, pattern key = test index)."""
        n = len(self.test_images) if n is None else min(n, len(self.test_images))
        net = self.net
        if self.s.eval_spikes:
            net = NetworkSpec(net.input_shape, tuple(dataclasses.replace(l, spikes=self.s.eval_spikes) if l.is_sbs else l
                                                     for l in net.layers), net.name)
        wf = self.forward_weights()
        correct = 0
        step = 256
        for a in range(0, n, step):
            b = min(n, a + step)
            x = preprocess(self.test_images[a:b], crop="center")
            _, outs = network_forward(net, wf, x, self.s.seed, np.arange(a, b), sbs_layer=self.fwd)
            correct += int(np.sum(np.argmax(outs[-1].reshape(b - a, -1), axis=1) == self.test_labels[a:b]))
        return correct / n, n

    # ------------------------------------------------------------------ loop
    def run(self, resume: bool = False):
        ck = self.out / CHECKPOINT
        if resume and ck.exists():
            self.restore(ck)
            self.log(f"resumed from {ck}: epoch {self.epoch + 1}, position {self.pos}, {self.updates} updates")
        elif ck.exists():
            raise ValueError(f"out: {self.out} already holds a checkpoint; pass --resume to continue it or "
                             f"choose another --out")
        elif resume:
            self.log(f"resume: no checkpoint in {self.out} yet; starting a new run")
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.out / "settings.json", {"settings": self.s.to_dict(), "network": self.net.to_dict()})
        if self.history and self.pos == 0:  # a stop between the epoch checkpoint and the outputs
            self.write_outputs()
        n_train = len(self.train_images)
        while self.epoch < self.s.epochs:
            order = np.random.default_rng([self.s.seed, self.epoch]).permutation(n_train)
            bar = None
            if self.progress:
                from tqdm import tqdm
                bar = tqdm(total=n_train, initial=self.pos, desc=f"epoch {self.epoch + 1}/{self.s.epochs}",
                           unit="pat", dynamic_ncols=True)
            acc = {}
            pending = 0
            t_epoch = time.perf_counter()
            seen_epoch = 0
            while self.pos < n_train:
                t0 = time.perf_counter()
                c0 = time.process_time()
                take = min(self.s.batch, n_train - self.pos, self.s.update_every - pending)
                sel = order[self.pos:self.pos + take]
                crop_rng = np.random.default_rng([self.s.seed, self.epoch, self.pos])
                loss, correct = self.batch_step(self.train_images[sel], self.train_labels[sel],
                                                self.epoch * n_train + self.pos, crop_rng, acc)
                self.run_loss += loss
                self.run_correct += correct
                self.run_seen += take
                self.pos += take
                pending += take
                seen_epoch += take
                if pending >= self.s.update_every or self.pos >= n_train:
                    self.update(acc)
                    pending = 0
                    if self.pos < n_train and self.updates % self.s.checkpoint_every == 0:
                        self.save()
                        if not self.progress:
                            rate = seen_epoch / max(time.perf_counter() - t_epoch, 1e-9)
                            self.log(f"epoch {self.epoch + 1} pos {self.pos}/{n_train} updates {self.updates} "
                                     f"loss {self.run_loss / self.run_seen:.4f} "
                                     f"acc {self.run_correct / self.run_seen:.4f} {rate:.1f} patterns/s")
                    if self.stop_after_updates is not None and self.updates >= self.stop_after_updates:
                        if bar:
                            bar.close()
                        return self.history
                self.train_seconds += time.perf_counter() - t0
                self.cpu_seconds += time.process_time() - c0
                if bar:
                    rate = seen_epoch / max(time.perf_counter() - t_epoch, 1e-9)
                    bar.set_postfix(loss=f"{self.run_loss / self.run_seen:.4f}",
                                    acc=f"{self.run_correct / self.run_seen:.4f}", pps=f"{rate:.1f}")
                    bar.update(take)
            if bar:
                bar.close()
            self._end_epoch()
        return self.history

    def _end_epoch(self):
        mean_loss = self.run_loss / max(self.run_seen, 1)
        row = {"epoch": self.epoch + 1, "train_loss": mean_loss,
               "train_accuracy": self.run_correct / max(self.run_seen, 1), "lr": self.opt.lr,
               "updates": self.updates, "train_seconds": round(self.train_seconds, 3),
               "cpu_seconds": round(self.cpu_seconds, 3)}
        last = self.epoch + 1 == self.s.epochs
        if (self.epoch + 1) % self.s.eval_every == 0 or last:
            t0 = time.perf_counter()
            accu, n = self.evaluate(self.s.eval_n)
            row.update(test_accuracy=accu, test_n=n, eval_seconds=round(time.perf_counter() - t0, 3))
        self.opt.lr = self.sched.step(mean_loss)
        self.history.append(row)
        self.epoch += 1
        self.pos = 0
        self.run_loss = 0.0
        self.run_correct = 0
        self.run_seen = 0
        self.save()
        self.write_outputs()
        self.log(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))

    def write_outputs(self):
        meta = {"trainer": "sbs train", "epochs": self.epoch, "seed": self.s.seed, "settings": self.s.to_dict(),
                "history": self.history}
        w32 = {k: v.astype(np.float32) for k, v in self.W.items()}
        save_weights(self.out / "weights.npz", w32, self.net, meta)
        if self.s.keep_epoch_weights:
            save_weights(self.out / f"weights_epoch{self.epoch}.npz", w32, self.net, meta)
        write_json(self.out / "metrics.json", self.history)
        keys = []
        for r in self.history:
            keys += [k for k in r if k not in keys]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(self.history)
        write_text(self.out / "metrics.csv", buf.getvalue())
        write_bytes(self.out / "curve.png", learning_curve_png(self.history))


def learning_curve_png(history) -> bytes:
    """PNG bytes: training loss and train/test accuracy per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r["epoch"] for r in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    a1.plot(ep, [r["train_loss"] for r in history], "o-")
    a1.set_xlabel("epoch"); a1.set_ylabel("training loss per pattern"); a1.grid(alpha=0.3)  # noqa: E702
    a2.plot(ep, [100 * r["train_accuracy"] for r in history], "o-", label="train (running)")
    te = [(r["epoch"], 100 * r["test_accuracy"]) for r in history if "test_accuracy" in r]
    if te:
        a2.plot(*zip(*te), "s-", label="test")
    a2.set_xlabel("epoch"); a2.set_ylabel("accuracy %"); a2.grid(alpha=0.3); a2.legend()  # noqa: E702
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
