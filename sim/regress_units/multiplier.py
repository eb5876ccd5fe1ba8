"""ApproxMultiplier against :mod:`fixedpoint.product`: the stimulus (:func:`stimulus`, also used by
``tests/test_sim_multiplier.py``) and the ``sbs regress`` entries."""
from __future__ import annotations

import itertools
import random

import numpy as np

from rtl.multiplier import ApproxMultiplier, reference
from sim.regress import Entry, register
from sim.regress_units.common import DATAPATHS, datapath, ident, weight_format

#: a small multiplier that exercises prod_bits rounding (rne ties, carries): every code pair
SMALL_MUL = ("e3m2d", "e2m3", 3, "rne")


def every_pair(dut: ApproxMultiplier) -> list:
    """Every (h code, w code) pair of the two formats."""
    return list(itertools.product(range(dut.h_fmt.n_codes), range(dut.w_fmt.n_codes)))


def stimulus(dut: ApproxMultiplier, pairs) -> dict:
    """``tb_data`` of ``sim.tb_multiplier`` for ``(h code, w code)`` pairs: both decoded on the host
    (exponents as bit patterns) and the model's ``(P, E)`` packed as the multiplier's output."""
    H, W = dut.h_fmt, dut.w_fmt
    h = [int(a) for a, _ in pairs]
    w = [int(b) for _, b in pairs]
    sh, eh = H.decode_parts(h)
    sw, ew = W.decode_parts(w)
    ehb, ewb = len(dut.exp_h), len(dut.exp_w)
    vecs = [[int(a), int(b) & ((1 << ehb) - 1), int(c), int(d) & ((1 << ewb) - 1)]
            for a, b, c, d in zip(sh, eh, sw, ew)]
    P, E = reference(H, W, h, w, dut.prod_bits, dut.prod_rounding)
    eb = dut.exp_shape.width
    return {"vectors": vecs, "p_bits": dut.prod_width, "e_bits": eb,
            "expected": [p | ((e & ((1 << eb) - 1)) << dut.prod_width) for p, e in zip(P, E)]}


def design_of(dpname: str):
    if dpname == "small":
        return lambda fault, mode: ApproxMultiplier(*SMALL_MUL, fault=fault)
    return lambda fault, mode: ApproxMultiplier.from_datapath(datapath(dpname), weight_format(dpname), fault=fault)


def vectors_of(dpname: str):
    def vectors(dut, mode: str, seed: int):
        H, W = dut.h_fmt, dut.w_fmt
        if dpname == "small":
            pairs = every_pair(dut)
        else:  # corner codes crossed, then random pairs
            n = {"quick": 2000, "full": 40000}[mode]
            ch = sorted({0, 1, 2, H.n_codes - 1, H.n_codes // 2, H.n_codes // 2 - 1})
            cw = sorted({0, 1, 2, W.n_codes - 1, W.n_codes // 2, W.n_codes // 2 - 1})
            pairs = list(itertools.product(ch, cw))
            rng = np.random.default_rng(seed)
            pairs += list(zip(rng.integers(0, H.n_codes, n - len(pairs)).tolist(),
                              rng.integers(0, W.n_codes, n - len(pairs)).tolist()))
        random.Random(seed).shuffle(pairs)
        return stimulus(dut, pairs), len(pairs)
    return vectors


def register_entries() -> None:
    for dpname in DATAPATHS + ("small",):
        label = dpname if dpname != "small" else "{}x{}-p{}{}".format(*SMALL_MUL)
        for fault in (None, "flip_p0") if dpname == "int-e4m1" else (None,):
            register(Entry(unit="multiplier", datapath=label, lanes=1,
                           toplevel=("multiplier_rne3" if dpname == "small" else f"multiplier_{ident(dpname)}")
                           if not fault else "multiplier_fault",
                           testbench="sim.tb_multiplier", design=design_of(dpname),
                           vectors=vectors_of(dpname), fault=fault,
                           note="ApproxMultiplier vs fixedpoint.product" +
                                (" (every code pair, prod_bits rounding)" if dpname == "small" else "")))
