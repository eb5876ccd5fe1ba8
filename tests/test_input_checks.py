"""Weights, datapath files and data paths are checked before any work, with one clear message
(issue items 7, 8, 9): a layer of zeros, NaN, wrong shapes, a text file as .npz; ``{}`` and
wrongly typed datapath files, ``{"preset": ...}``; weights that do not fit the weight format."""
import json

import numpy as np
import pytest

from fixedpoint.datapath import PRESETS
from sbs_model.cli import main
from sbs_model.loader import shipped_model_path
from sbs_model.network import LayerSpec as L, NetworkSpec
from sbs_model.quant import QuantizedModel
from sbs_model.quant_ref import datapath_from_fields, load_datapath, weight_range_warnings
from sbs_model.weights import load_weights


def sbs(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def broken_copy(tmp_path, name, change):
    z = dict(np.load(shipped_model_path()))
    change(z)
    p = tmp_path / name
    np.savez(p, **z)
    return p


def _zero(z):
    z["W4"] = np.zeros_like(z["W4"])


def _nan(z):
    z["W2"] = z["W2"].copy()
    z["W2"][3, 3] = np.nan


def _shape(z):
    z["W5"] = z["W5"][:50]


def _column(z):
    z["W0"] = z["W0"].copy()
    z["W0"][:, 7] *= 0.5


@pytest.mark.parametrize("change,message", [
    (_zero, "layer 4: column 0 sums to 0 (a layer of zeros)"),
    (_nan, "layer 2 holds negative or non-finite values"),
    (_shape, "layer 5 has shape (50, 10), the network needs (S, N) = (96, 10)"),
    (_column, "layer 0: column 7 sums to 0.5"),
])
def test_broken_npz_weights_exit_2_before_any_work(tmp_path, capsys, change, message):
    p = broken_copy(tmp_path, "w.npz", change)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_weights(p)
    rc, out, err = sbs(capsys, "eval", "-n", "2", "--weights", str(p), "--json", str(tmp_path / "r.json"),
                       "--no-progress")
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "r.json").exists()


def test_text_file_as_npz_says_what_it_is(tmp_path, capsys):
    p = tmp_path / "w.npz"
    p.write_text("hello\n")
    rc, _, err = sbs(capsys, "eval", "-n", "2", "--weights", str(p), "--no-progress")
    assert rc == 2 and "is not a readable .npz file: not a zip archive" in err and "allow_pickle" not in err


# ------------------------------------------------------------------------- datapath files
def write(tmp_path, obj, name="dp.json"):
    p = tmp_path / name
    p.write_text(json.dumps(obj))
    return str(p)


def test_empty_datapath_file_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="empty object; give \"preset\""):
        load_datapath(write(tmp_path, {}))


def test_preset_in_datapath_file_as_in_grid_files(tmp_path):
    dp = load_datapath(write(tmp_path, {"preset": "int-e4m0", "h_rounding": "trunc"}))
    assert dp.weight_format == "e4m0" and dp.h_rounding == "trunc"
    assert load_datapath(write(tmp_path, {"preset": "paper"})) == PRESETS["paper"]
    with pytest.raises(ValueError, match="field 'preset' is \"nope\"; allowed: paper"):
        load_datapath(write(tmp_path, {"preset": "nope"}))


@pytest.mark.parametrize("field,value,kind", [
    ("nr_iters", True, "an integer"), ("norm_bits", "16", "an integer"), ("weight_format", 4, "a string"),
    ("prod_bits", "exact", "an integer or null")])
def test_wrong_type_is_reported_as_a_type_error(tmp_path, field, value, kind):
    with pytest.raises(ValueError, match=f"field '{field}' must be {kind}, got"):
        load_datapath(write(tmp_path, {"preset": "int-e4m1", field: value}))


def test_partial_file_without_preset_names_the_missing_fields(tmp_path):
    with pytest.raises(ValueError, match="without \"preset\" every field must be given; missing"):
        load_datapath(write(tmp_path, {"weight_format": "e4m0"}))
    full = PRESETS["int-e4m0"].to_dict()
    assert load_datapath(write(tmp_path, full)) == PRESETS["int-e4m0"]


def test_datapath_file_errors_exit_2(tmp_path, capsys):
    rc, _, err = sbs(capsys, "eval", "-n", "2", "--datapath", write(tmp_path, {}), "--no-progress")
    assert rc == 2 and "empty object" in err


# ------------------------------------------------------------------------- weights out of range
def tiny():
    net = NetworkSpec((1, 6, 6), (L("sbs", 1, 4, (3, 3), spikes=4), L("sbs", 4, 3, (4, 4), spikes=4)))
    rng = np.random.default_rng(0)
    w = {}
    for li, shape in net.weight_shapes().items():
        a = rng.random(shape) + 0.1
        w[li] = (a / a.sum(axis=0)).astype(np.float32)
    return net, w


def test_weights_that_all_saturate_are_named():
    net, w = tiny()
    dp = PRESETS["int-e4m1"].to_dict()
    dp.update(weight_format="e4m1b999", weight_scaling="none")
    qm = QuantizedModel(net, w, {0: datapath_from_fields(dp), 1: "int-e4m1"})
    lines = weight_range_warnings(qm.datapaths, w)
    assert len(lines) == 1 and lines[0].startswith("layer 0: 36 of 36 weights outside e4m1b999 (36 above")
    assert "every weight of the layer is out of range" in lines[0]
    assert weight_range_warnings(QuantizedModel(net, w, "int-e4m1").datapaths, w) == []


def test_sbs_eval_warns_before_evaluating_when_weights_do_not_fit(tmp_path, capsys):
    dp = dict(PRESETS["int-e4m1"].to_dict(), weight_format="e4m1b999", weight_scaling="none")
    rc, out, _ = sbs(capsys, "eval", "-n", "1", "--spikes", "2", "--datapath", write(tmp_path, dp),
                     "--no-progress")
    lines = out.splitlines()
    assert rc == 0 and lines[0].startswith("warning: layer 0: 800 of 800 weights outside e4m1b999")
    assert lines[4].startswith("accuracy")


# ------------------------------------------------------------------------- data paths
def test_data_messages_speak_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SBS_DATA", str(tmp_path / "data"))  # no Fashion-MNIST placed
    f = tmp_path / "file"
    f.write_text("x")
    rc, _, err = sbs(capsys, "eval", "-n", "2", "--data", str(f), "--no-progress")
    assert rc == 2 and "is a file; give the directory that holds the IDX files" in err
    rc, _, err = sbs(capsys, "eval", "-n", "1000000", "--no-progress")
    assert rc == 2 and "--data " in err and "[1, 2000]" in err
    rc, _, err = sbs(capsys, "eval", "-n", "2", "--dataset", "fashion-mnist", "--no-progress")
    assert rc == 2 and "--data DIR on the command line" in err
