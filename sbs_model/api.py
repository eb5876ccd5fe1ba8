"""The model side of the Python API (re-exported by :mod:`sbs_model`): a few calls for the main
jobs, in the spirit of hls4ml's convert / compile / predict / build.

>>> import sbs_model
>>> model = sbs_model.load()                         # the shipped model (float32 golden kernels)
>>> images, labels = sbs_model.test_images(100)      # the embedded MNIST test images
>>> q = sbs_model.quantize(model, "int-e4m1")        # the bit-exact integer model the RTL equals
>>> q.evaluate(images, labels)["accuracy"]           # doctest: +SKIP
>>> print(sbs_model.compare(model, q, images[:2]).text())   # doctest: +SKIP

The objects are the project's own: :class:`sbs_model.model.Model` (``predict``, ``forward``,
``trace``, ``evaluate``) and :class:`sbs_model.quant.QuantizedModel` (the same plus ``trace_ip``
and overflow counters).  Verilog generation is :func:`rtl.generate_verilog`, the cocotb
regression :func:`sim.run_regression`.
"""
from __future__ import annotations

from sbs_model.data import load_dataset
from sbs_model.diff import compare as compare_runs
from sbs_model.diff import from_trace
from sbs_model.loader import shipped_model_path
from sbs_model.model import Model
from sbs_model.quant import QuantizedModel

__all__ = ["load", "quantize", "test_images", "compare"]


def load(weights=None, config="reference-mnist", spikes=None, dtype: str = "float32", seed: int = 0) -> Model:
    """The float model, as ``sbs eval`` builds it: network ``config`` (a preset name, a native
    ``.json`` or a pytorch-sbs directory) with ``spikes`` per IP when given, weights from ``weights``
    (an ``.npz`` file or a pytorch-sbs directory; ``None``: the project's trained model shipped in
    the package).  ``model.net``, ``model.weights``, ``model.meta`` (the weight file's record)."""
    if weights is None:
        weights = shipped_model_path()
    model = Model.load(config, weights, spikes=spikes, dtype=dtype, seed=seed)
    return model


def quantize(model: Model, datapath="int-e4m1", seed: int | None = None) -> QuantizedModel:
    """The bit-exact quantized model of ``model`` (same network, weights and spike seed) with
    ``datapath``: a preset name (``int-e4m1``, ``paper``, ...), a ``Datapath``, a JSON file, or
    ``{layer: datapath or None}`` to quantize some layers only."""
    q = QuantizedModel(model.net, model.weights, datapath, seed=model.seed if seed is None else seed)
    q.weights = model.weights
    return q


def test_images(n: int | None = None, data=None, dataset: str = "mnist"):
    """``(uint8 images (n, 28, 28), labels)``: the first ``n`` embedded MNIST test images, or of the
    IDX files in directory ``data``."""
    return load_dataset(dataset, directory=data, split="test", n=n)


def compare(a, b, images):
    """Run ``a`` and ``b`` (a :class:`Model` or :class:`QuantizedModel` each) on ``images`` and compare
    them layer by layer: the first divergence and per-layer errors (``.text()``, ``.equal``,
    ``.to_dict()``), as ``sbs diff`` prints them.  ``a`` is the reference."""
    return compare_runs(_run(a, images), _run(b, images))


def _run(m, images):
    if isinstance(m, QuantizedModel):
        return from_trace(m.trace(images), images)
    if isinstance(m, Model):  # the float golden kernels, traced through the quantized model's float path
        return from_trace(QuantizedModel(m.net, m.weights, {}, seed=m.seed).trace(images), images)
    raise ValueError(f"compare: expected a Model or QuantizedModel, got {type(m).__name__}")
