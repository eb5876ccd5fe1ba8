"""``sbs eval`` in-process: output, JSON, and one-message errors with exit code 2."""
import json

import pytest

from conftest import PYTORCH_SBS_DIR
from sbs_model.cli import main
from sbs_model.network import reference_mnist


@pytest.fixture(scope="module")
def npz_weights(tmp_path_factory):
    """Random reference-network weights saved in the project's .npz format."""
    from sbs_model.weights import init_weights, save_weights

    net = reference_mnist()
    path = tmp_path_factory.mktemp("w") / "random.npz"
    save_weights(path, init_weights(net, 3), net)
    return path


def test_eval_npz_writes_json(npz_weights, tmp_path, capsys):
    out = tmp_path / "res.json"
    rc = main(["eval", "--weights", str(npz_weights), "-n", "4", "--spikes", "8", "--seed", "5",
               "--json", str(out), "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "accuracy" in text and "95 % interval" in text and "ms per pattern" in text
    doc = json.loads(out.read_text())
    assert doc["n"] == 4 and 0 <= doc["correct"] <= 4 and doc["accuracy"] == doc["correct"] / 4
    assert doc["spikes"] == [8, 8, 8, 8] and doc["seed"] == 5 and doc["dtype"] == "float32"
    assert doc["data"] == "embedded" and doc["ci95"][0] <= doc["accuracy"] <= doc["ci95"][1]
    # the printed accuracy is the one in the file
    assert f"{100 * doc['accuracy']:.2f} %" in text


def test_eval_same_result_for_any_batch(npz_weights, tmp_path):
    docs = []
    for batch in ("1", "5"):
        out = tmp_path / f"b{batch}.json"
        assert main(["eval", "--weights", str(npz_weights), "-n", "5", "--spikes", "6", "--dtype", "float64",
                     "--batch", batch, "--json", str(out), "--no-progress"]) == 0
        docs.append(json.loads(out.read_text()))
    assert docs[0]["correct"] == docs[1]["correct"]


@pytest.mark.skipif(not (PYTORCH_SBS_DIR / "Weight_L0_S199.npy").is_file(),
                    reason=f"pytorch-sbs weights not found in {PYTORCH_SBS_DIR}")
def test_eval_pytorch_sbs_directory(capsys):
    assert main(["eval", "--config", str(PYTORCH_SBS_DIR), "--weights", str(PYTORCH_SBS_DIR), "-n", "10",
                 "--spikes", "400", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "accuracy 100.00 % (10/10)" in out


@pytest.mark.parametrize("args,msg", [
    (["--weights", "/nonexistent/w.npz"], "weights"),
    (["--weights", "{w}", "--seed", "-1"], "--seed must be in"),
    (["--weights", "{w}", "--spikes", "0"], "--spikes must be >= 1"),
    (["--weights", "{w}", "-n", "0"], "-n must be >= 1"),
    (["--weights", "{w}", "-n", "3000"], "n must be an integer in [1, 2000]"),
    (["--weights", "{w}", "--config", "no-such-preset"], "config"),
    (["--weights", "{w}", "--data", "/nonexistent/dir"], "does not exist"),
])
def test_eval_bad_input_exit_2_one_message(args, msg, npz_weights, capsys):
    args = [a.replace("{w}", str(npz_weights)) for a in args]
    assert main(["eval"] + args + ["--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sbs eval: error:") and msg in err[0]


def test_eval_bad_dtype_is_usage_error(npz_weights):
    with pytest.raises(SystemExit) as e:
        main(["eval", "--weights", str(npz_weights), "--dtype", "float16"])
    assert e.value.code == 2


def test_eval_defaults_to_the_shipped_model(capsys):
    # no --weights: the project's trained model inside the package, on the embedded images
    assert main(["eval", "-n", "20", "--spikes", "400", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "/20)" in out


def test_eval_without_shipped_model_is_a_clear_error(monkeypatch, tmp_path, capsys):
    from sbs_model import loader

    monkeypatch.setattr(loader, "shipped_model_path", lambda: tmp_path / "missing.npz")
    assert main(["eval", "-n", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shipped model" in err[0]
