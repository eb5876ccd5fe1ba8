"""Normaliser against :mod:`fixedpoint.normalise`: the stimulus (:func:`stimulus`, also used by
``tests/test_sim_normaliser.py``) and the ``sbs regress`` entries."""
from __future__ import annotations

import random

from fixedpoint.datapath import Datapath
from rtl.normaliser import Normaliser, reference
from sim.regress import Entry, register
from sim.regress_units.common import DATAPATHS, datapath, ident, stalls

#: a small accumulator for the exhaustive normaliser entry (every one of its 2**12 inputs)
SMALL_NORM = ("uq2.10", 8)


def corner_and_random_values(width: int, n: int, seed: int) -> list:
    """0, 1, all ones, each single bit, then random values of random bit length (``n`` in all)."""
    rng = random.Random(seed)
    values = [0, 1, (1 << width) - 1] + [1 << k for k in range(width)]
    while len(values) < n:
        b = rng.randint(1, width)
        values.append(rng.getrandbits(b) | (1 << (b - 1)))
    return values


def stimulus(dut: Normaliser, values, idle: float = 0.25, backpressure: float = 0.25) -> dict:
    """``tb_data`` of ``sim.tb_normaliser`` for accumulator ``values`` and the model's results."""
    return {"values": list(values), "expected": reference(dut.dp, values),
            "out_width": dut.norm_bits + dut.exp_shape.width + 1, "latency": dut.latency, "idle": idle,
            "backpressure": backpressure}


def datapath_of(dpname: str) -> Datapath:
    if dpname == "small":
        return Datapath(acc_format=SMALL_NORM[0], norm_bits=SMALL_NORM[1])
    return datapath(dpname)


def vectors_of(dpname: str):
    def vectors(dut, mode: str, seed: int):
        w = dut.acc_width
        if dpname == "small":
            values = list(range(1 << w))
            random.Random(seed).shuffle(values)
        else:
            values = corner_and_random_values(w, {"quick": 2000, "full": 50000}[mode], seed)
        return stimulus(dut, values, **stalls(mode)), len(values)
    return vectors


def register_entries() -> None:
    for dpname in DATAPATHS + ("small",):
        for fault in (None, "flip_sig0") if dpname == "int-e4m1" else (None,):
            register(Entry(unit="normaliser",
                           datapath=dpname if dpname != "small" else f"{SMALL_NORM[0]}-R{SMALL_NORM[1]}",
                           lanes=1,
                           toplevel=f"normaliser_{ident(dpname)}" if not fault else "normaliser_fault",
                           testbench="sim.tb_normaliser",
                           design=lambda fault, mode, dpname=dpname: Normaliser(datapath_of(dpname), fault=fault),
                           vectors=vectors_of(dpname), fault=fault,
                           testcase="random_values_vs_model" if fault else None,
                           note="Normaliser vs fixedpoint.normalise" +
                                (" (every input)" if dpname == "small" else "")))
