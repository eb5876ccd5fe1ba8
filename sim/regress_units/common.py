"""What the unit modules of :mod:`sim.regress_units` share: the datapaths and lanes of the entries,
the weight format they use, stream stalls, Verilog-safe names."""
from __future__ import annotations

import numpy as np

from fixedpoint.datapath import Datapath

DATAPATHS = ("paper", "int-e4m1")
LANES = (1, 4)

#: max |W| of the layer whose scaled weight format the entries use (``dp.weight_format_for``):
#: e4m1 -> e4m1b20 for the int presets (per-layer ``max`` scaling); the paper's is unscaled
W_MAX = 1 / 32


def datapath(name: str) -> Datapath:
    return Datapath.preset(name)


def weight_format(dpname: str) -> str:
    """The weight format of a layer with max |W| = :data:`W_MAX` under ``dpname``."""
    return datapath(dpname).weight_format_for(np.array([W_MAX])).text


def stalls(mode: str) -> dict:
    """Random idle cycles on inputs / back-pressure on outputs (the streams' protocol corners)."""
    return {"idle": 0.25, "backpressure": 0.25}


def ident(text: str) -> str:
    """``text`` as a Verilog identifier fragment."""
    return "".join(c if c.isalnum() else "_" for c in text)
