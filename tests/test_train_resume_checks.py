"""``sbs train --resume`` refuses what would mix two setups (issue item 5): another number of
training images, another learning rate or scheduler; it says when there is nothing to resume."""
import pytest

from sbs_model.cli import main
from sbs_model.config_files import save_native
from sbs_model.data import load_dataset, write_idx
from sbs_model.network import LayerSpec as L, NetworkSpec

NET = NetworkSpec((1, 24, 24), (
    L("sbs", 1, 4, (5, 5), stride=(4, 4), spikes=8),
    L("sbs", 4, 10, (5, 5), spikes=8),
))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    imgs, labs = load_dataset("mnist", None, "test", 40)
    write_idx(d / "train-images-idx3-ubyte.gz", imgs[:32])
    write_idx(d / "train-labels-idx1-ubyte.gz", labs[:32])
    write_idx(d / "t10k-images-idx3-ubyte.gz", imgs[32:])
    write_idx(d / "t10k-labels-idx1-ubyte.gz", labs[32:])
    cfg = d / "tiny.json"
    save_native(NET, cfg)
    out = tmp_path_factory.mktemp("run") / "r"
    base = ["train", "--config", str(cfg), "--data", str(d), "--batch", "4", "--update-every", "8",
            "--eval-n", "4", "--no-progress", "--threads", "1", "--lr", "0.05"]
    assert main(base + ["--epochs", "1", "--limit-train", "16", "--out", str(out)]) == 0
    return base, out


def test_resume_with_another_training_set_size_is_refused(run_dir, capsys):
    base, out = run_dir
    capsys.readouterr()
    assert main(base + ["--epochs", "2", "--limit-train", "12", "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint was made with 16 training images, this run has 12" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("option,value,field", [("--lr", "0.001", "lr"), ("--scheduler", "cosine", "scheduler")])
def test_resume_with_another_learning_rate_or_scheduler_is_refused(run_dir, capsys, option, value, field):
    base, out = run_dir
    capsys.readouterr()
    argv = [a for a in base] + ["--epochs", "2", "--limit-train", "16", "--out", str(out), "--resume"]
    if option in argv:
        argv[argv.index(option) + 1] = value
    else:
        argv += [option, value]
    assert main(argv) == 2
    assert f"resume: setting '{field}'" in capsys.readouterr().err


def test_resume_without_a_checkpoint_says_so(run_dir, tmp_path, capsys):
    base, _ = run_dir
    capsys.readouterr()
    assert main(base + ["--epochs", "1", "--limit-train", "8", "--out", str(tmp_path / "new"), "--resume"]) == 0
    assert "resume: no checkpoint in" in capsys.readouterr().out


def test_threads_out_of_range(run_dir, tmp_path, capsys):
    base, _ = run_dir
    for n in ("0", "100000"):
        assert main(base + ["--epochs", "1", "--out", str(tmp_path / "t"), "--threads", n]) == 2
        assert "--threads must be in 1.." in capsys.readouterr().err
