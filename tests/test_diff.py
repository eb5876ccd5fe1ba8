"""sbs diff: trace files, first divergence with bit patterns and spike index, statistics, CLI."""
import json

import numpy as np
import pytest

from fixedpoint.datapath import PRESETS
from sbs_model.cli import main
from sbs_model.diff import compare, from_trace, load_trace, save_trace
from sbs_model.network import LayerSpec, NetworkSpec
from sbs_model.quant import QuantizedModel
from sbs_model.weights import save_weights

L = LayerSpec


def tiny_net(T=8):
    return NetworkSpec((1, 8, 8), (L("sbs", 1, 4, (3, 3), spikes=T), L("avgpool", 4, 4, (2, 2), (2, 2)),
                                   L("sbs", 4, 3, (3, 3), spikes=T)), name="tiny")


def tiny_weights(net, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for li, shape in net.weight_shapes().items():
        w = rng.random(shape) + 0.05
        out[li] = (w / w.sum(axis=0)).astype(np.float32)
    return out


@pytest.fixture(scope="module")
def run():
    net = tiny_net()
    m = QuantizedModel(net, tiny_weights(net), PRESETS["int-e4m1"], seed=3)
    img = np.random.default_rng(2).integers(0, 256, (3, 28, 28)).astype(np.uint8)
    return m, img, m.trace(img)


def test_changed_code_is_reported_at_its_place_with_both_bit_patterns(run, tmp_path):
    m, img, tr = run
    save_trace(tmp_path / "a.npz", tr, images=img)
    b = load_trace(tmp_path / "a.npz")
    assert np.array_equal(b.images, img) and b.meta["seed"] == 3
    fmt = b.formats[0]
    # layer 0 output (3, 4, 6, 6): change pattern 1, element 2 at oy 4, ox 5 (IP 4*6 + 5 = 29)
    old = int(b.outputs[0][1, 2, 4, 5])
    b.outputs[0] = b.outputs[0].copy()
    b.outputs[0][1, 2, 4, 5] = old ^ 0x10
    save_trace(tmp_path / "b.npz", b)
    res = compare(load_trace(tmp_path / "a.npz"), load_trace(tmp_path / "b.npz"))
    assert not res.equal and res.bit_exact
    d = res.first
    assert (d.layer, d.pattern, d.ip, d.oy, d.ox, d.element) == (0, 1, 29, 4, 5, 2)
    assert (d.a_code, d.b_code) == (old, old ^ 0x10)
    assert d.a_bits == fmt.bits(old) and d.b_bits == fmt.bits(old ^ 0x10)
    assert d.a_bits in res.text() and d.b_bits in res.text()
    s = res.layers[0]
    assert s.n_diff == 1 and not s.equal and s.max_rel > 0
    assert all(x.equal for x in res.layers[1:])  # only layer 0 was edited
    # the CLI: exit 1 when they differ, 0 when equal
    assert main(["diff", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]) == 1
    assert main(["diff", str(tmp_path / "a.npz"), str(tmp_path / "a.npz")]) == 0


def test_spike_index_from_per_spike_records(run, tmp_path):
    m, img, tr = run
    rec = m.trace_ip(img, 2, 0, 0)["hist"]
    bad = rec.copy()
    bad[5:, 1] += 1  # h differs from spike 4 on
    a = from_trace(tr, spikes={(2, 0, 0): rec})
    b = from_trace(tr, spikes={(2, 0, 0): bad})
    b.outputs[2] = b.outputs[2].copy()
    b.outputs[2][0, 1, 0, 0] = bad[-1, 1]
    save_trace(tmp_path / "a.npz", a)
    save_trace(tmp_path / "b.npz", b)
    res = compare(load_trace(tmp_path / "a.npz"), load_trace(tmp_path / "b.npz"))
    d = res.first
    assert (d.layer, d.pattern, d.ip, d.element, d.spike) == (2, 0, 0, 1, 4)
    assert "after spike 4" in res.text()


def test_float_vs_quantized_statistics(run):
    m, img, tr = run
    f = QuantizedModel(m.net, tiny_weights(m.net), {}, seed=3).trace(img)
    res = compare(from_trace(f), from_trace(tr))
    assert not res.equal and not res.bit_exact
    assert res.first.layer == 0 and res.first.a_code is None and res.first.b_code is not None
    for s in res.layers:
        va, vb = f.outputs[s.layer].astype(np.float64), tr.values(s.layer)
        rel = np.abs(vb - va).sum(axis=1) / np.abs(va).sum(axis=1)  # L1 per (pattern, IP) over channels
        assert s.mean_rel == pytest.approx(rel.mean()) and s.max_rel == pytest.approx(rel.max())
        assert s.max_abs == pytest.approx(np.abs(vb - va).max())
        agree = np.mean(np.argmax(va, axis=1) == np.argmax(vb, axis=1))
        assert s.argmax_agree == pytest.approx(agree)


def test_cli_config_mode(tmp_path, capsys):
    net = tiny_net(T=6)
    cfg = tmp_path / "net.json"
    cfg.write_text(json.dumps(net.to_dict()))
    wfile = tmp_path / "w.npz"
    save_weights(wfile, tiny_weights(net, 1), net)
    base = ["diff", "--config", str(cfg), "--weights", str(wfile), "-n", "2", "--datapath", "paper"]
    assert main(base + ["--against", "numpy", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "no divergence" in out and "quantized (paper)" in out
    assert json.loads((tmp_path / "r.json").read_text())["equal"] is True
    assert main(base + ["--save-a", str(tmp_path / "f.npz"), "--save-b", str(tmp_path / "q.npz")]) == 1
    out = capsys.readouterr().out
    assert "first divergence: layer 0" in out and "A: float" in out
    assert load_trace(tmp_path / "f.npz").kinds[0] == "float"
    assert load_trace(tmp_path / "q.npz").kinds[0] == "codes"


def test_cli_bad_input(tmp_path, capsys):
    assert main(["diff", str(tmp_path / "missing.npz"), str(tmp_path / "missing.npz")]) == 2
    assert main(["diff", str(tmp_path / "one.npz")]) == 2
    assert main(["diff", "-n", "0"]) == 2      # no files: both runs from the shipped model (-n checked first)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert main(["diff", str(tmp_path / "junk.npz"), str(tmp_path / "junk.npz")]) == 2
    assert "not a trace file" in capsys.readouterr().err
