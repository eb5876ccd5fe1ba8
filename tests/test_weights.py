"""Weights: init, .npz save/load with metadata, pytorch-sbs import."""

import numpy as np
import pytest

from conftest import PYTORCH_SBS_DIR
from sbs_model import weights as W
from sbs_model.network import LayerSpec, NetworkSpec, reference_mnist


def tiny():
    L = LayerSpec
    return NetworkSpec((1, 6, 6), (L("sbs", 1, 4, (3, 3), spikes=5), L("avgpool", 4, 4, (2, 2), (2, 2)),
                                   L("sbs", 4, 3, (2, 2), spikes=5)), name="tiny")


def test_init_weights_uniform_range_normalised_deterministic():
    net = reference_mnist()
    w = W.init_weights(net, 3)
    assert sorted(w) == [0, 2, 4, 5]
    for layer, shape in net.weight_shapes().items():
        a = w[layer]
        assert a.dtype == np.float32 and a.shape == shape
        np.testing.assert_allclose(a.sum(axis=0, dtype=np.float64), 1.0, atol=1e-5)
        # U[1, 1.1] before normalisation: every entry within [1/1.1, 1.1] of the column mean
        ratio = a * shape[0]
        assert ratio.min() >= 1 / 1.1 - 1e-6 and ratio.max() <= 1.1 + 1e-6
        assert ratio.max() - ratio.min() > 0.05  # really random, not constant
    w2 = W.init_weights(net, 3)
    assert all(np.array_equal(w[k], w2[k]) for k in w)
    assert not np.array_equal(W.init_weights(net, 4)[0], w[0])
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        W.init_weights(net, -1)


def test_save_load_round_trip_exact_with_meta(tmp_path):
    net = tiny()
    w = W.init_weights(net, 0)
    p = tmp_path / "w.npz"
    W.save_weights(p, w, net, {"formats": {"0": "e4m1b12"}, "trainer": "sbs train", "epochs": 3,
                               "seed": np.int64(0), "accuracy": 0.98})
    back, meta = W.load_weights(p, net)
    assert sorted(back) == [0, 2] and all(np.array_equal(back[k], w[k]) and back[k].dtype == np.float32 for k in w)
    assert meta["config_hash"] == net.config_hash() and meta["config_hash_matches"] is True
    assert meta["formats"] == {"0": "e4m1b12"} and meta["epochs"] == 3 and meta["seed"] == 0
    assert meta["network"] == net.to_dict() and "date" in meta
    # readable without pickle, no temp files left
    with np.load(p, allow_pickle=False) as z:
        assert set(z.files) == {"meta", "W0", "W2"}
    assert [f.name for f in tmp_path.iterdir()] == ["w.npz"]


def test_load_checks_network(tmp_path):
    net = tiny()
    p = tmp_path / "w.npz"
    W.save_weights(p, W.init_weights(net, 0), net, {})
    # different spike count: same structure -> accepted, flagged; strict refuses
    net2 = NetworkSpec(net.input_shape, tuple(l if not l.is_sbs else LayerSpec(**{**l.__dict__, "spikes": 9})
                                              for l in net.layers))
    _, meta = W.load_weights(p, net2)
    assert meta["config_hash_matches"] is False
    with pytest.raises(ValueError, match="strict check"):
        W.load_weights(p, net2, strict=True)
    L = LayerSpec
    other = NetworkSpec((1, 6, 6), (L("sbs", 1, 5, (3, 3)), L("avgpool", 5, 5, (2, 2), (2, 2)),
                                    L("sbs", 5, 3, (2, 2))))
    with pytest.raises(ValueError, match=r"different network \(layer 0 field 'out_channels' 4 vs 5\)"):
        W.load_weights(p, other)


def test_save_rejects_wrong_shapes_and_layers(tmp_path):
    net = tiny()
    w = W.init_weights(net, 0)
    with pytest.raises(ValueError, match=r"layer 2 has shape \(3, 3\), the network needs \(S, N\) = \(16, 3\)"):
        W.save_weights(tmp_path / "x.npz", {0: w[0], 2: np.ones((3, 3), np.float32)}, net, {})
    with pytest.raises(ValueError, match=r"layers \[0\] given, the network's SbS layers are \[0, 2\]"):
        W.save_weights(tmp_path / "x.npz", {0: w[0]}, net, {})
    with pytest.raises(ValueError, match="reserved"):
        W.save_weights(tmp_path / "x.npz", w, net, {"config_hash": "x"})
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        W.save_weights(tmp_path / "x.npz", w, net, {"when": object()})
    assert not list(tmp_path.iterdir())


def test_load_rejects_non_weight_files(tmp_path):
    p = tmp_path / "plain.npz"
    np.savez(p, W0=np.ones((2, 2)))
    with pytest.raises(ValueError, match="no 'meta' record"):
        W.load_weights(p)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        W.load_weights(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="does not exist"):
        W.load_weights(tmp_path / "none.npz")


def test_import_pytorch_sbs_reference():
    net = reference_mnist()
    w = W.import_pytorch_sbs(PYTORCH_SBS_DIR, net)
    for layer, shape in net.weight_shapes().items():
        raw = np.load(PYTORCH_SBS_DIR / f"Weight_L{layer}_S199.npy").astype(np.float64)
        expect = (raw / raw.sum(axis=0)).astype(np.float32)
        assert w[layer].dtype == np.float32 and w[layer].shape == shape
        assert np.array_equal(w[layer], expect)
        assert np.abs(w[layer] - raw).max() < 1e-6  # renormalisation is a tiny correction
    w2, meta = W.load_any(PYTORCH_SBS_DIR, net)
    assert meta["epoch"] == 199 and all(np.array_equal(w[k], w2[k]) for k in w)


def _tiny_pytorch_dir(tmp_path, net, epochs=(1, 5)):
    d = tmp_path / "run"
    d.mkdir()
    for e in epochs:
        for layer, arr in W.init_weights(net, e).items():
            np.save(d / f"Weight_L{layer}_S{e}.npy", arr)
    return d


def test_import_latest_epoch_and_errors(tmp_path):
    net = tiny()
    d = _tiny_pytorch_dir(tmp_path, net)
    assert np.array_equal(W.import_pytorch_sbs(d, net)[0], W.normalise_columns(W.init_weights(net, 5)[0]))
    assert np.array_equal(W.import_pytorch_sbs(d, net, epoch=1)[2], W.normalise_columns(W.init_weights(net, 1)[2]))
    (d / "Weight_L2_S5.npy").unlink()  # epoch 5 incomplete -> latest complete is 1
    assert W.latest_pytorch_sbs_epoch(d, net) == 1
    with pytest.raises(ValueError, match=r"layer 2: .*Weight_L2_S5.npy is missing"):
        W.import_pytorch_sbs(d, net, epoch=5)
    bad = W.init_weights(net, 1)[0].astype(np.float64)
    bad[:, 3] *= 1.01
    np.save(d / "Weight_L0_S1.npy", bad.astype(np.float32))
    with pytest.raises(ValueError, match=r"layer 0: column 3 of Weight_L0_S1.npy sums to 1.01"):
        W.import_pytorch_sbs(d, net)
    np.save(d / "Weight_L0_S1.npy", np.ones((9, 5), np.float32) / 9)
    with pytest.raises(ValueError, match=r"layer 0: Weight_L0_S1.npy has shape \(9, 5\), the network needs"):
        W.import_pytorch_sbs(d, net)
    with pytest.raises(ValueError, match="neither an .npz weight file nor a pytorch-sbs directory"):
        W.load_any(tmp_path / "nothing", net)


def test_load_any_npz(tmp_path):
    net = tiny()
    w = W.init_weights(net, 2)
    W.save_weights(tmp_path / "a.npz", w, net, {"trainer": "test"})
    back, meta = W.load_any(str(tmp_path / "a.npz"), net)
    assert meta["trainer"] == "test" and all(np.array_equal(back[k], w[k]) for k in w)
