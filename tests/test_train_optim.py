"""Losses, optimisers, schedulers, learning rules, chaotic regulariser and QAT of `sbs train`."""
import numpy as np
import pytest

from sbs_model.data import load_dataset
from sbs_model.network import LayerSpec as L, NetworkSpec, reference_mnist
from sbs_model.train.backward import RULE_LOCAL
from sbs_model.train.forward import unfold
from sbs_model.train.losses import ChaoticLoss, get_loss
from sbs_model.train.optimizers import make_optimizer, project
from sbs_model.train.rules import parse_rules
from sbs_model.train.schedulers import make_scheduler
from sbs_model.train.trainer import Trainer, TrainSettings

NET = NetworkSpec((1, 24, 24), (
    L("sbs", 1, 6, (5, 5), stride=(2, 2), spikes=30),
    L("avgpool", 6, 6, (2, 2), (2, 2)),
    L("sbs", 6, 10, (5, 5), spikes=30),
))


@pytest.fixture(scope="module")
def mnist():
    imgs, labs = load_dataset("mnist", None, "test", 200)
    return (imgs[:160], labs[:160]), (imgs[160:], labs[160:])


@pytest.mark.parametrize("name", ["mixed", "ce", "nll"])
def test_loss_gradients_match_finite_differences(name):
    rng = np.random.default_rng(0)
    h = rng.uniform(0.05, 1, (3, 5))
    h /= h.sum(1, keepdims=True)
    labels = np.array([0, 4, 2])
    fn = get_loss(name)
    loss, g = fn(h, labels)
    fd = np.zeros_like(h)
    for k in np.ndindex(h.shape):
        a = h.copy(); a[k] += 1e-6
        b = h.copy(); b[k] -= 1e-6
        fd[k] = (fn(a, labels)[0] - fn(b, labels)[0]) / 2e-6
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-7)
    assert fn(np.eye(5)[labels] * (1 - 4e-9) + 1e-9, labels)[0] < loss


def test_mixed_loss_value():
    h = np.array([[0.5, 0.25, 0.25]])
    loss, _ = get_loss("mixed")(h, [1])
    expected = (0.5 * (0.25 + 0.5625 + 0.0625) + (np.log(1 + 1e-20) - np.log(0.25 + 1e-20))) / 1.5
    assert loss == pytest.approx(expected, rel=1e-12)


def test_multiplicative_adam_step_and_projection():
    W = np.array([[0.5, 0.2], [0.3, 0.3], [0.2, 0.5]])
    g = np.array([[1.0, -2.0], [0.0, 0.5], [-3.0, 0.0]])
    opt = make_optimizer("madam", {0: 1.0}, lr=0.1, eps=1e-8)
    new = opt.step({0: W}, {0: g})[0]
    m_hat, v_hat = g, g * g  # first step: bias correction undoes (1-beta)
    raw = W * (1 + 0.5 * np.tanh(-0.1 * m_hat / (np.sqrt(v_hat) + 1e-8)))
    np.testing.assert_allclose(new, project(raw, 0.001), rtol=1e-12)
    assert new[2, 0] > W[2, 0] and new[0, 0] < W[0, 0]  # against the gradient
    np.testing.assert_allclose(new.sum(0), 1.0, rtol=1e-12)
    # clamp: a weight pushed to 0 comes back to at least threshold / C_in (renormalised)
    p = project(np.array([[1.0], [0.0], [1.0]]), 0.001 / 4)
    assert p[1, 0] >= 0.001 / 4 / (1 + 0.001 / 4) and p.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_other_optimisers_descend_and_keep_columns_normalised(name):
    W = np.full((4, 2), 0.25)
    g = np.array([[1.0, 0], [-1.0, 0], [0, 1.0], [0, -1.0]])
    new = make_optimizer(name, {0: 1.0}, lr=0.05).step({0: W}, {0: g})[0]
    assert new[1, 0] > new[0, 0] and new[3, 1] > new[2, 1]
    np.testing.assert_allclose(new.sum(0), 1.0)


def test_optimiser_and_scheduler_names_are_checked():
    with pytest.raises(ValueError, match="optimizer: unknown name 'adamw'; allowed: madam, adam, sgd"):
        make_optimizer("adamw", {0: 1.0})
    with pytest.raises(ValueError, match="scheduler: unknown name"):
        make_scheduler("linear", 0.1)
    with pytest.raises(ValueError, match="rule: unknown name"):
        parse_rules("hebb", reference_mnist())
    assert parse_rules("0:local", reference_mnist()) == {0: RULE_LOCAL, 2: 0, 4: 0, 5: 0}


def test_schedulers():
    s = make_scheduler("plateau", 1.0, patience=2)
    lrs = [s.step(v) for v in [5, 4, 4, 4, 4, 4, 4, 3]]
    assert lrs == [1, 1, 1, 1, pytest.approx(0.1), 0.1, 0.1, pytest.approx(0.1)]
    st = make_scheduler("step", 1.0, step_size=2, gamma=0.5)
    assert [st.step(0) for _ in range(4)] == [1.0, 0.5, 0.5, 0.25]
    c = make_scheduler("cosine", 1.0, t_max=4)
    assert [round(c.step(0), 6) for _ in range(4)] == [0.853553, 0.5, 0.146447, 0.0]


def test_local_rule_reduces_reconstruction_error(mnist):
    net = NetworkSpec((1, 24, 24), (L("sbs", 1, 8, (5, 5), stride=(3, 3), spikes=40),
                                    L("sbs", 8, 10, (6, 6), spikes=10)))
    s = TrainSettings(epochs=1, batch=16, update_every=16, lr=0.2, rules="0:local", eval_n=8)
    t = Trainer(net, mnist[0], mnist[1], "/nonexistent", s, progress=False)
    from sbs_model.data import preprocess
    from sbs_model.train.forward import network_forward

    x = preprocess(mnist[0][0][:32])

    def recon_error():
        _, outs = network_forward(net, t.W, x, 0, np.arange(32), sbs_layer=t.fwd)
        win = unfold(x, net.layers[0])
        p = win / win.sum(-1, keepdims=True)
        h = outs[0].reshape(32, 8, -1).transpose(0, 2, 1)
        return np.mean((p - h @ t.W[0].T) ** 2)

    e0 = recon_error()
    rng = np.random.default_rng(0)
    acc = {}
    for k in range(8):
        t.batch_step(mnist[0][0][16 * k:16 * k + 16], mnist[0][1][16 * k:16 * k + 16].astype(int), 1000 * k,
                     rng, acc)
        acc = {0: acc[0]}  # only the local layer learns here
        t.update(acc)
    assert recon_error() < 0.9 * e0


def _train(mnist, tmp, **kw):
    s = TrainSettings(epochs=1, batch=8, update_every=8, lr=0.05, seed=3, eval_n=8, **kw)
    t = Trainer(NET, (mnist[0][0][:48], mnist[0][1][:48]), mnist[1], tmp, s, progress=False, log=lambda *_: None)
    t.run()
    return t


def test_chaotic_loss_changes_trajectory_and_decays(mnist, tmp_path):
    base = _train(mnist, tmp_path / "a")
    chaos = _train(mnist, tmp_path / "b", chaos_layer=2, chaos_z0=1.0, chaos_beta=0.5)
    assert not np.array_equal(base.W[0], chaos.W[0])
    assert chaos.chaos.z == pytest.approx(0.5 ** 6)  # 6 optimiser steps
    c = ChaoticLoss(2, z0=1.0, beta=0.5)
    h = np.full((1, 10, 1, 1), 0.1)
    g0 = np.abs(c(h)[1]).max()
    for _ in range(40):
        c.step()
    assert np.abs(c(h)[1]).max() < 1e-11 * g0
    assert ChaoticLoss(2, z0=0.0)(h)[0] == 0.0


def test_qat_forward_sees_quantised_weights_and_learns_the_float_master(mnist, tmp_path):
    t = _train(mnist, tmp_path, qat="e4m1")
    from fixedpoint.formats import parse_format

    wq = t.forward_weights()
    for k, w in wq.items():
        vals = np.unique(w)
        assert len(vals) <= parse_format("e4m1").n_codes
        assert not np.array_equal(w, t.W[k])
    plain = _train(mnist, tmp_path / "plain")
    assert not np.array_equal(plain.W[0], t.W[0])
