"""The RTL side of the Python API (re-exported by :mod:`rtl`): Verilog of one layer of a model."""
from __future__ import annotations

from rtl.generate import generate
from sbs_model.model import Model
from sbs_model.quant import QuantizedModel
from sbs_model.quant_ref import load_datapath

__all__ = ["generate_verilog"]


def generate_verilog(model, layer: int, out_dir, datapath=None, lanes: int = 1, unit: str = "engine",
                     spikes: int | None = None, lint: bool = False) -> dict:
    """Write the IP engine (``unit="engine"``) or dot-product unit (``"dot"``) of SbS layer ``layer``
    (its position in the network) into ``out_dir``: deterministic Verilog, ``$readmemh`` memory images
    and ``manifest.json``, which is returned.  ``model``: a :class:`QuantizedModel` (its network,
    weights and that layer's datapath) or a :class:`Model` with ``datapath`` (a preset name, a
    ``Datapath`` or a JSON file).  ``lint=True`` also runs ``verilator --lint-only -Wall``."""
    if isinstance(model, QuantizedModel):
        dp = load_datapath(datapath) if datapath is not None else model.datapaths.get(layer)
        if dp is None:
            raise ValueError(f"layer {layer} is not quantized in this model; pass datapath=")
        weights = getattr(model, "weights", None)
        if weights is None:
            raise ValueError("generate_verilog: this QuantizedModel does not hold its float weights; make it with "
                             "sbs_model.quantize(model, datapath)")
    elif isinstance(model, Model):
        dp = load_datapath(datapath if datapath is not None else "int-e4m1")
        weights = model.weights
    else:
        raise ValueError(f"generate_verilog: expected a Model or QuantizedModel, got {type(model).__name__}")
    return generate(model.net, weights, dp, layer, out_dir, lanes=lanes, unit=unit, T=spikes, lint=lint)
