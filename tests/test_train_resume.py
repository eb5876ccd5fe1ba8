"""`sbs train`: a run killed with SIGKILL mid-epoch and resumed ends with exactly the weights of an
uninterrupted run; non-finite values stop training and keep the last good checkpoint."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from sbs_model.cli import main
from sbs_model.config_files import save_native
from sbs_model.data import load_dataset, write_idx
from sbs_model.network import LayerSpec as L, NetworkSpec
from sbs_model.train.checkpoint import load_checkpoint
from sbs_model.train.trainer import CHECKPOINT, Trainer, TrainingDiverged, TrainSettings

NET = NetworkSpec((1, 24, 24), (
    L("sbs", 1, 6, (5, 5), stride=(2, 2), spikes=60),
    L("avgpool", 6, 6, (2, 2), (2, 2)),
    L("sbs", 6, 10, (5, 5), spikes=60),
))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    imgs, labs = load_dataset("mnist", None, "test", 120)
    write_idx(d / "train-images-idx3-ubyte.gz", imgs[:96])
    write_idx(d / "train-labels-idx1-ubyte.gz", labs[:96])
    write_idx(d / "t10k-images-idx3-ubyte.gz", imgs[96:])
    write_idx(d / "t10k-labels-idx1-ubyte.gz", labs[96:])
    cfg = d / "tiny.json"
    save_native(NET, cfg)
    return d, cfg


def _args(data, cfg, out):
    return ["train", "--config", str(cfg), "--data", str(data), "--epochs", "3", "--out", str(out),
            "--batch", "4", "--update-every", "8", "--checkpoint-every", "1", "--lr", "0.05", "--seed", "7",
            "--eval-n", "8", "--no-progress", "--threads", "1", "--keep-epoch-weights"]


def _master_weights(out):
    arrays, state = load_checkpoint(out / CHECKPOINT)
    return {k: v for k, v in arrays.items() if k.startswith("W")}, state


def test_kill9_then_resume_gives_identical_weights(setup, tmp_path):
    data, cfg = setup
    ref = tmp_path / "ref"
    assert main(_args(data, cfg, ref)) == 0
    w_ref, st_ref = _master_weights(ref)
    assert st_ref["epoch"] == 3 and st_ref["updates"] == 36

    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "sbs_model.cli"] + _args(data, cfg, run),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed_state = None
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            if (run / CHECKPOINT).exists():
                st = _master_weights(run)[1]
                if st["updates"] >= 14:  # mid epoch 2
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    killed_state = _master_weights(run)[1]
                    break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert killed_state is not None, "the training finished before it could be killed"
    assert killed_state["updates"] < 36 and proc.returncode == -signal.SIGKILL
    assert main(_args(data, cfg, run) + ["--resume"]) == 0
    w_run, st_run = _master_weights(run)
    assert st_run["updates"] == 36
    for k in w_ref:
        assert np.array_equal(w_ref[k], w_run[k]), k
    # the learning curve, metrics and weights file are there
    for name in ("weights.npz", "metrics.json", "metrics.csv", "curve.png", "weights_epoch3.npz"):
        assert (run / name).stat().st_size > 0
    # and without --resume an existing run is not overwritten
    assert main(_args(data, cfg, run)) == 2


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(setup, tmp_path):
    data, cfg = setup
    train = load_dataset("mnist", data, "train")
    test = load_dataset("mnist", data, "test")
    s = TrainSettings(epochs=2, batch=4, update_every=8, checkpoint_every=2, seed=1, eval_n=4)
    t = Trainer(NET, train, test, tmp_path, s, progress=False, log=lambda *_: None)
    calls = {"n": 0}
    real = t.loss_fn

    def flaky(h, labels):
        calls["n"] += 1
        loss, g = real(h, labels)
        if calls["n"] == 11:  # during update 6
            g = g.copy()
            g[0, 0] = np.nan
        return loss, g

    t.loss_fn = flaky
    with pytest.raises(TrainingDiverged, match="non-finite loss"):
        t.run()
    w, st = _master_weights(tmp_path)
    assert st["updates"] == 4 and st["pos"] == 32
    assert all(np.all(np.isfinite(v)) for v in w.values())


def test_bad_input_is_one_error_line_and_exit_2(setup, tmp_path, capsys):
    data, cfg = setup
    base = ["train", "--config", str(cfg), "--data", str(data), "--out", str(tmp_path / "x"), "--no-progress"]
    assert main(base + ["--epochs", "0"]) == 2
    assert "epochs: must be an integer >= 1, got 0" in capsys.readouterr().err
    assert main(base + ["--epochs", "1", "--rule", "2:hebb"]) == 2
    assert "rule: unknown name 'hebb'; allowed: backprop, local" in capsys.readouterr().err
    assert main(base + ["--epochs", "1", "--data", str(tmp_path)]) == 2
    assert "missing train-images-idx3-ubyte" in capsys.readouterr().err
