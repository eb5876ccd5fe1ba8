"""Model API: prediction, batching invariance, validation, evaluate, pytorch-sbs accuracy (slow)."""
import numpy as np
import pytest

from conftest import MNIST_DIR, PYTORCH_SBS_DIR
from sbs_model import float_ref
from sbs_model.model import Model, wilson_interval
from sbs_model.network import LayerSpec, NetworkSpec, reference_mnist

L = LayerSpec
NET = NetworkSpec((1, 8, 8), (
    L("sbs", 1, 6, (3, 3), spikes=40),
    L("avgpool", 6, 6, (2, 2), (2, 2)),
    L("sbs", 6, 10, (3, 3), spikes=40),
))


def weights(net=NET, seed=0):
    g = np.random.default_rng(seed)
    return {i: (lambda w: w / w.sum(axis=0))(g.random(s) + 0.01) for i, s in net.weight_shapes().items()}


def images(n, seed=1):
    return np.random.default_rng(seed).random((n, 1, 8, 8)) + 1e-20


def test_predict_forward_trace_match_reference_float64():
    m = Model(NET, weights(), dtype="float64", seed=9)
    x = images(4)
    ref = float_ref.forward_trace(NET, weights(), x, seed=9, first_pattern=3)
    tr = m.trace(x, first_pattern=3)
    assert [t.shape for t in tr] == [(4,) + s for s in NET.shapes()]
    for a, b in zip(ref, tr):
        assert np.array_equal(a, b)
    h = m.forward(x, first_pattern=3)
    assert h.shape == (4, 10) and np.allclose(h.sum(1), 1)
    assert m.predict(x, first_pattern=3).tolist() == np.argmax(ref[-1].reshape(4, 10), 1).tolist()


def test_pattern_index_makes_batches_irrelevant():
    m = Model(NET, weights(), seed=1)
    x = images(6)
    assert np.array_equal(m.forward(x)[2:5], m.forward(x[2:5], first_pattern=2))
    assert not np.array_equal(m.forward(x)[2:5], m.forward(x[2:5]))
    assert m.forward(x).dtype == np.float32


@pytest.mark.parametrize("bad,match", [
    (np.ones((2, 8, 8)), "expected shape"),
    (np.ones((2, 1, 8, 7)), "expected shape"),
    (np.full((1, 1, 8, 8), np.nan), "NaN"),
    (np.full((1, 1, 8, 8), np.inf), "NaN or infinite"),
    (-np.ones((1, 1, 8, 8)), "negative"),
    (np.array([["a"]]), "real array"),
])
def test_bad_input_names_argument(bad, match):
    with pytest.raises(ValueError, match=match) as e:
        Model(NET, weights()).predict(bad)
    assert str(e.value).startswith("x:")


def test_bad_construction():
    with pytest.raises(ValueError, match="dtype"):
        Model(NET, weights(), dtype="float16")
    with pytest.raises(ValueError, match="seed"):
        Model(NET, weights(), seed=-1)
    with pytest.raises(ValueError, match="missing layer 2"):
        Model(NET, {0: weights()[0]})
    w = weights()
    w[0] = -w[0]
    with pytest.raises(ValueError, match="non-negative"):
        Model(NET, w)
    with pytest.raises(ValueError, match="first_pattern"):
        Model(NET, weights()).predict(images(1), first_pattern=-1)


def test_wilson_interval_known_values():
    # 95 % Wilson interval for 9/10: (0.5958, 0.9821); for 0/10: (0, 0.2775)
    lo, hi = wilson_interval(9, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.5958, 0.9821)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0 and round(hi, 4) == 0.2775
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_evaluate_counts_and_batches():
    net = reference_mnist(spikes=30)
    g = np.random.default_rng(2)
    w = {i: (lambda a: a / a.sum(0))(g.random(s)) for i, s in net.weight_shapes().items()}
    m = Model(net, w, seed=4)
    imgs = g.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    from sbs_model.data import preprocess

    pred = m.predict(preprocess(imgs))
    labels = pred.copy()
    labels[[1, 5]] = (labels[[1, 5]] + 1) % 10  # two wrong labels: 5/7 correct
    for batch in (1, 3, 7):
        res = m.evaluate(imgs, labels, batch=batch, progress=batch == 3)
        assert res["correct"] == 5 and res["n"] == 7 and res["accuracy"] == 5 / 7
        assert res["ci95"] == list(wilson_interval(5, 7))
        assert res["ms_per_pattern"] > 0
    with pytest.raises(ValueError, match="labels"):
        m.evaluate(imgs, labels[:3])
    with pytest.raises(ValueError, match="images"):
        m.evaluate(imgs.astype(np.float32), labels)
    with pytest.raises(ValueError, match="batch"):
        m.evaluate(imgs, labels, batch=0)


needs_pytorch_sbs = pytest.mark.skipif(
    not (PYTORCH_SBS_DIR / "Weight_L0_S199.npy").is_file(),
    reason=f"pytorch-sbs weights not found in {PYTORCH_SBS_DIR}")


@needs_pytorch_sbs
def test_load_pytorch_sbs_and_predict_embedded_digits():
    from sbs_model.data import load_dataset

    m = Model.load("reference-mnist", PYTORCH_SBS_DIR, spikes=400)
    images_, labels = load_dataset(n=20)
    res = m.evaluate(images_, labels, progress=False)
    assert res["correct"] >= 19  # the trained network at T = 400 on easy test digits
    with pytest.raises(ValueError, match="weights_spec"):
        Model.load("reference-mnist", None)


@pytest.mark.slow
@needs_pytorch_sbs
@pytest.mark.skipif(not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason=f"MNIST test set not found in {MNIST_DIR}")
def test_pytorch_sbs_accuracy_all_10000_test_images():
    from sbs_model.data import load_dataset

    m = Model.load("reference-mnist", PYTORCH_SBS_DIR, spikes=1600, dtype="float32", seed=0)
    images_, labels = load_dataset("mnist", directory=MNIST_DIR, split="test")
    assert len(labels) == 10000
    res = m.evaluate(images_, labels, batch=500, progress=False)
    print(f"pytorch-sbs reference network, 10000 MNIST test images, T=1600: {100 * res['accuracy']:.2f} %")
    assert res["accuracy"] >= 0.993
