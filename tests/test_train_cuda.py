"""CUDA training kernels (numba.cuda; the simulator without a GPU) == CPU kernels bit for bit."""
import numpy as np
import pytest

from sbs_model.network import LayerSpec as L, NetworkSpec
from sbs_model.train.backward import RULE_BACKPROP, RULE_LOCAL
from sbs_model.train.backward_nb import sbs_layer_backward_nb
from sbs_model.train.forward import network_forward
from sbs_model.train.forward_nb import sbs_layer_nb

pytestmark = pytest.mark.cuda
cuda_mod = pytest.importorskip("sbs_model.train.cuda")


def _setup():
    net = NetworkSpec((1, 5, 5), (
        L("sbs", 1, 3, (3, 3), spikes=6),
        L("avgpool", 3, 3, (2, 2), (1, 1)),
        L("sbs", 3, 5, (2, 2), spikes=7),
    ))
    rng = np.random.default_rng(0)
    W = {}
    for i, s in net.weight_shapes().items():
        w = rng.uniform(1, 1.1, s)
        W[i] = w / w.sum(0)
    x = rng.random((2, 1, 5, 5)) + 1e-20
    return net, W, x


def test_cuda_forward_equals_cpu():
    net, W, x = _setup()
    pats = np.array([3, 11])
    _, a = network_forward(net, W, x, 9, pats, sbs_layer=sbs_layer_nb)
    _, b = network_forward(net, W, x, 9, pats, sbs_layer=cuda_mod.sbs_layer_cuda)
    for p, q in zip(a, b):
        assert np.array_equal(p, q)


@pytest.mark.parametrize("rule", [RULE_BACKPROP, RULE_LOCAL])
def test_cuda_backward_equals_cpu(rule):
    net, W, x = _setup()
    ins, outs = network_forward(net, W, x, 9, np.array([0, 1]), sbs_layer=sbs_layer_nb)
    layer = net.layers[2]
    g = np.random.default_rng(1).normal(size=outs[2].shape)
    a = sbs_layer_backward_nb(ins[2], outs[2], W[2], g, layer, rule)
    b = cuda_mod.sbs_layer_backward_cuda(ins[2], outs[2], W[2], g, layer, rule)
    assert a[1] == b[1]
    assert np.array_equal(a[0], b[0])
    assert np.array_equal(a[2], b[2])


def test_cuda_device_without_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(cuda_mod, "SIMULATOR", False)
    monkeypatch.setattr(cuda_mod.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="needs an NVIDIA GPU"):
        cuda_mod.require()
