"""Reciprocal against :mod:`fixedpoint.reciprocal`: the stimulus (:func:`stimulus`, also used by
``tests/test_sim_reciprocal.py``) and the ``sbs regress`` entries."""
from __future__ import annotations

import dataclasses
import random

from rtl.reciprocal import Reciprocal, reference
from sim.regress import Entry, register
from sim.regress_units.common import datapath, stalls

#: int-only (the paper's float32 update is model-only): the preset's ``div``, its ``nr`` variant
#: and a small ``div`` datapath checked on every input in both modes
RECIP_DATAPATHS = {"int-e4m1": {}, "int-e4m1-nr": {"recip_method": "nr"},
                   "R10-Qb10": {"norm_bits": 10, "recip_bits": 10}}

#: toplevel names (the same Verilog as tests/test_sim_reciprocal.py's designs: shared builds)
RECIP_TOPS = {"int-e4m1": "reciprocal_div", "int-e4m1-nr": "reciprocal_nr", "R10-Qb10": "reciprocal_r10"}


def corner_and_random_inputs(R: int, n: int, seed: int) -> list:
    """0, the smallest and the largest normalised ``sig_r`` of R bits, then ``n`` random ones."""
    rng = random.Random(seed)
    return [0, 1 << (R - 1), (1 << R) - 1] + [rng.randrange(1 << (R - 1), 1 << R) for _ in range(n)]


def every_input(R: int, seed: int) -> list:
    """0 and every normalised ``sig_r`` of R bits, shuffled."""
    xs = [0] + list(range(1 << (R - 1), 1 << R))
    random.Random(seed).shuffle(xs)
    return xs


def stimulus(dut: Reciprocal, inputs, idle: float = 0.25, backpressure: float = 0.25) -> dict:
    """``tb_data`` of ``sim.tb_reciprocal`` for ``sig_r`` inputs and the model's reciprocals."""
    return {"inputs": list(inputs), "expected": reference(dut.dp, inputs), "y_width": dut.y_width, "idle": idle,
            "backpressure": backpressure}


def datapath_of(label: str):
    return dataclasses.replace(datapath("int-e4m1"), **RECIP_DATAPATHS[label])


def vectors_of(label: str):
    def vectors(dut, mode: str, seed: int):
        if label == "R10-Qb10" or mode == "full":
            xs = every_input(dut.R, seed)
        else:
            xs = corner_and_random_inputs(dut.R, 400, seed)
        return stimulus(dut, xs, **stalls(mode)), len(xs)
    return vectors


def register_entries() -> None:
    for label in RECIP_DATAPATHS:
        for fault in (None, "flip_bit0") if label == "int-e4m1" else (None,):
            register(Entry(unit="reciprocal", datapath=label, lanes=1,
                           toplevel=RECIP_TOPS[label] if not fault else "reciprocal_fault",
                           testbench="sim.tb_reciprocal",
                           design=lambda fault, mode, label=label: Reciprocal(datapath_of(label), fault=fault),
                           vectors=vectors_of(label), fault=fault,
                           note="Reciprocal vs fixedpoint.reciprocal" +
                                (" (every input)" if label == "R10-Qb10" else " (full: every input)")))
