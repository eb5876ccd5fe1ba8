"""SbS networks: configs, data, the float golden model and kernels, the bit-exact quantized model,
training, exploration and the hardware cost model.

The Python API (``docs/api.md``), loaded on first use so that ``import sbs_model.<module>`` stays
light: :func:`load` (the float model: shipped or given weights), :func:`quantize` (the bit-exact
integer model of a datapath), :func:`test_images`, :func:`compare` (two runs layer by layer), and
the classes :class:`Model`, :class:`QuantizedModel`."""

_API = {"load": "sbs_model.api", "quantize": "sbs_model.api", "test_images": "sbs_model.api",
        "compare": "sbs_model.api", "Model": "sbs_model.model", "QuantizedModel": "sbs_model.quant"}
__all__ = list(_API)


def __getattr__(name):
    if name not in _API:
        raise AttributeError(f"module 'sbs_model' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_API[name]), name)
