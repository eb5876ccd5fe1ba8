"""QuantizedModel API: predict/evaluate/trace, counters, noise, datapath forms, validation."""
import json

import numpy as np
import pytest

from fixedpoint.datapath import PRESETS, Datapath
from sbs_model.network import LayerSpec, NetworkSpec
from sbs_model.quant import QuantizedModel, add_noise, decode_trace, overflow_warnings
from sbs_model.quant_ref import load_datapath, resolve_datapaths

L = LayerSpec


def net_and_weights(T=8, seed=0):
    net = NetworkSpec((1, 8, 8), (L("sbs", 1, 5, (3, 3), spikes=T), L("avgpool", 5, 5, (2, 2), (2, 2)),
                                  L("sbs", 5, 4, (3, 3), spikes=T)))
    rng = np.random.default_rng(seed)
    w = {}
    for li, shape in net.weight_shapes().items():
        a = rng.random(shape) ** 2 + 0.01
        w[li] = (a / a.sum(axis=0)).astype(np.float32)
    return net, w


def images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28)).astype(np.uint8)


def test_predict_evaluate_trace_agree_and_batches_change_nothing():
    net, w = net_and_weights()
    m = QuantizedModel(net, w, "int-e4m1", seed=4)
    img = images(5)
    labels = np.array([0, 1, 2, 3, 0])
    tr = m.trace(img)
    vals = decode_trace(tr)
    assert tr.outputs[-1].dtype == np.int64 and tr.outputs[-1].shape == (5, 4, 1, 1)
    pred = m.predict(img)
    assert np.array_equal(pred, np.argmax(vals[-1].reshape(5, -1), axis=1))
    r1 = m.evaluate(img, labels, batch=5, progress=False)
    r2 = m.evaluate(img, labels, batch=2, progress=False)
    assert r1["correct"] == r2["correct"] == int(np.sum(pred == labels))
    assert r1["counters"] == r2["counters"]
    assert r1["counters"]["0"]["spikes"] == 5 * 36 * 8 and r1["counters"]["2"]["spikes"] == 5 * 8
    lo, hi = r1["ci95"]
    assert 0 <= lo <= r1["accuracy"] <= hi <= 1 and r1["n"] == 5 and r1["ms_per_pattern"] > 0
    # patterns are global indices: the rows 2..4 of a batch starting at 0 == a batch starting at 2
    assert np.array_equal(m.trace(img[2:], first_pattern=2).outputs[0], tr.outputs[0][2:])
    assert not np.array_equal(m.trace(img[2:]).outputs[0], tr.outputs[0][2:])


def test_seed_changes_spikes():
    net, w = net_and_weights()
    img = images(2)
    a = QuantizedModel(net, w, "int-e4m1", seed=0).trace(img).outputs[0]
    b = QuantizedModel(net, w, "int-e4m1", seed=1).trace(img).outputs[0]
    assert not np.array_equal(a, b)


def test_add_noise_definition_and_keys():
    img = images(3, seed=1)
    assert np.array_equal(add_noise(img, 0.0, 5), img)
    n1 = add_noise(img, 1.0, 5)
    assert not np.array_equal(n1[0], n1[1])  # level 1: pure noise, different per pattern
    assert np.array_equal(n1[1:], add_noise(img[1:], 1.0, 5, first_pattern=1))  # keyed by (seed, pattern)
    assert not np.array_equal(n1, add_noise(img, 1.0, 6))
    half = add_noise(img, 0.5, 5)
    rng = np.random.default_rng(np.random.SeedSequence([5, 0, 0x6E6F6973]))
    u = rng.random((28, 28))
    exp = np.clip(np.floor(255.0 * (0.5 * img[0] / 255.0 + 0.5 * u) + 0.5), 0, 255).astype(np.uint8)
    assert np.array_equal(half[0], exp)
    net, w = net_and_weights()
    m = QuantizedModel(net, w, "int-uq0.8", seed=5)
    assert np.array_equal(m.predict(img, noise=0.3), m.predict(add_noise(img, 0.3, 5)))
    with pytest.raises(ValueError, match="noise level"):
        add_noise(img, 1.5, 0)


def test_datapath_forms(tmp_path):
    net, w = net_and_weights()
    f = tmp_path / "dp.json"
    f.write_text(json.dumps(PRESETS["int-e4m1"].to_dict()))
    assert load_datapath(str(f)) == PRESETS["int-e4m1"] == load_datapath("int-e4m1")
    assert resolve_datapaths(net, {2: "paper"}) == {0: None, 2: PRESETS["paper"]}
    img = images(2)
    a = QuantizedModel(net, w, str(f)).trace(img)
    b = QuantizedModel(net, w, PRESETS["int-e4m1"]).trace(img)
    assert np.array_equal(a.outputs[-1], b.outputs[-1])
    mixed = QuantizedModel(net, w, {0: "int-e4m1", 2: None}).trace(img)
    assert mixed.kinds == ["codes", "codes", "float"] and mixed.counters[2] is None
    assert mixed.outputs[2].dtype == np.float32
    d = QuantizedModel(net, w, {2: "paper"}).describe()
    assert d["0"] == "float" and d["2"]["h_format"] == "e5m11z"


def test_overflow_counters_are_reported():
    net, w = net_and_weights()
    big = {k: v * 8 for k, v in w.items()}  # r up to 8 overflows a uq1.6 accumulator
    dp = Datapath(acc_format="uq1.6", acc_overflow="saturate", norm_bits=6)
    r = QuantizedModel(net, big, dp).evaluate(images(2), np.zeros(2, np.int64), progress=False)
    c = r["counters"]["0"]
    assert 0 < c["acc_overflow_spikes"] <= c["spikes"] and c["acc_overflows"] >= c["acc_overflow_spikes"]
    lines = overflow_warnings(r["counters"])
    assert lines and lines[0].startswith("layer 0: accumulator overflowed in")
    assert overflow_warnings(QuantizedModel(net, w, "int-e4m1").evaluate(
        images(1), np.zeros(1, np.int64), progress=False)["counters"]) == []


@pytest.mark.parametrize("kwargs, match", [
    ({"datapath": "nope"}, "not a preset"),
    ({"datapath": {1: "paper"}}, "not SbS layer indices"),
    ({"datapath": "int-e4m1", "seed": -1}, "seed"),
    ({"datapath": "int-e4m1", "backend": "cuda"}, "backend"),
    ({"datapath": 3}, "expected a Datapath"),
])
def test_bad_arguments(kwargs, match):
    net, w = net_and_weights()
    with pytest.raises(ValueError, match=match):
        QuantizedModel(net, w, **kwargs)


def test_bad_inputs():
    net, w = net_and_weights()
    m = QuantizedModel(net, w, "int-e4m1")
    with pytest.raises(ValueError, match="uint8"):
        m.predict(images(1).astype(np.float32))
    with pytest.raises(ValueError, match="labels"):
        m.evaluate(images(2), np.zeros(3, np.int64), progress=False)
    with pytest.raises(ValueError, match="layer 1"):
        m.trace_ip(images(1), 1, 0, 0)
    with pytest.raises(ValueError, match="ip 99"):
        m.trace_ip(images(1), 0, 0, 99)


def test_sbs_eval_datapath(tmp_path, capsys):
    from sbs_model.cli import main
    from sbs_model.weights import save_weights

    net, w = net_and_weights(T=6)
    cfg = tmp_path / "net.json"
    cfg.write_text(json.dumps(net.to_dict()))
    wfile = tmp_path / "w.npz"
    save_weights(wfile, w, net)
    out = tmp_path / "r.json"
    base = ["eval", "--config", str(cfg), "--weights", str(wfile), "-n", "3", "--no-progress"]
    assert main(base + ["--datapath", "int-e4m1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert "quantized, datapath int-e4m1" in text and f"{100 * doc['accuracy']:.2f} %" in text
    from sbs_model.data import load_embedded

    img, lab = load_embedded(3)
    ref = QuantizedModel(net, w, "int-e4m1").evaluate(img, lab, progress=False)
    assert doc["correct"] == ref["correct"] and doc["counters"] == ref["counters"]
    assert doc["datapath_detail"]["0"]["h_format"] == "uq0.16"
    assert main(base + ["--datapath", "no-such"]) == 2
    assert "not a preset" in capsys.readouterr().err
