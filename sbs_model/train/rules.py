"""Registries: every choice a user makes by name (config file or CLI) resolves here.

* learning rules (per SbS layer): ``backprop`` (spec section 6) and ``local`` (the reconstruction
  rule ``dW_si ~ -(p_s - R_s) h_i``, online NNMF/EM; uses no error from above);
* losses (:mod:`losses`), optimisers (:mod:`optimizers`), schedulers (:mod:`schedulers`);
* compute backends: ``numpy`` (reference), ``cpu`` (numba float64), ``cpu-golden32`` (forward by
  the float32 golden inference kernels of :mod:`sbs_model.kernels_cpu`, backward numba float64),
  ``cuda`` (numba.cuda).
"""
from __future__ import annotations

from sbs_model.network import NetworkSpec
from sbs_model.train import cuda
from sbs_model.train.backward import RULE_BACKPROP, RULE_LOCAL, sbs_layer_backward_ref
from sbs_model.train.backward_nb import sbs_layer_backward_nb
from sbs_model.train.forward import make_golden_forward, sbs_layer_ref
from sbs_model.train.forward_nb import sbs_layer_nb
from sbs_model.train.losses import LOSSES  # noqa: F401  (re-exported registry)
from sbs_model.train.optimizers import OPTIMIZERS  # noqa: F401
from sbs_model.train.schedulers import SCHEDULERS  # noqa: F401

RULES = {"backprop": RULE_BACKPROP, "local": RULE_LOCAL}
DEVICES = ("numpy", "cpu", "cpu-golden32", "cuda")


def parse_rules(text, net: NetworkSpec) -> dict[int, int]:
    """``"backprop"`` / ``"local"`` for every trainable SbS layer, or per layer
    ``"0:local,2:backprop"`` (unlisted layers use backprop) -> {layer index: rule code}."""
    layers = [i for i in net.sbs_layers() if net.layers[i].trainable]
    text = (text or "backprop").strip()
    if ":" not in text:
        if text not in RULES:
            raise ValueError(f"rule: unknown name {text!r}; allowed: {', '.join(RULES)}")
        return {i: RULES[text] for i in layers}
    out = {i: RULE_BACKPROP for i in layers}
    for item in text.split(","):
        try:
            k, name = item.split(":")
            k = int(k)
        except ValueError:
            raise ValueError(f"rule: expected 'LAYER:NAME[,LAYER:NAME...]', got {text!r}")
        if k not in out:
            raise ValueError(f"rule: layer {k} is not a trainable SbS layer; allowed: {layers}")
        if name not in RULES:
            raise ValueError(f"rule: unknown name {name!r}; allowed: {', '.join(RULES)}")
        out[k] = RULES[name]
    return out


def backend(device: str):
    """-> ``(sbs_forward, sbs_backward)`` functions of the chosen device."""
    if device == "numpy":
        return sbs_layer_ref, sbs_layer_backward_ref
    if device == "cpu":
        return sbs_layer_nb, sbs_layer_backward_nb
    if device == "cpu-golden32":
        return make_golden_forward("float32"), sbs_layer_backward_nb
    if device == "cuda":
        cuda.require()
        return cuda.sbs_layer_cuda, cuda.sbs_layer_backward_cuda
    raise ValueError(f"device: unknown name {device!r}; allowed: {', '.join(DEVICES)}")
