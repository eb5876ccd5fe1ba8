"""DotProduct against :meth:`fixedpoint.datapath.Datapath.dot`: the stimulus (:func:`stimulus`, also
used by ``tests/test_sim_dot.py``) and the ``sbs regress`` entries."""
from __future__ import annotations

import random

import numpy as np

from rtl.dot import DotProduct, beats_of, pack_codes, reference
from sim.regress import Entry, register
from sim.regress_units.common import DATAPATHS, LANES, datapath, ident, stalls, weight_format

DOT_N = 27  # not a multiple of 4: the last beat of a row has masked lanes


def stimulus(dut: DotProduct, rows: int, seed: int, idle: float = 0.25, backpressure: float = 0.25) -> dict:
    """``tb_data`` of ``sim.tb_dot``: corner rows (zeros, all max, one max h code, the initial h)
    then random rows alternating any codes (overflow, extreme exponents) and h-like distributions
    (``rows`` in all), as beats of L codes (masked lanes random), and the model's results."""
    dp, H, W, N, L = dut.dp, dut.h_fmt, dut.w_fmt, dut.N, dut.lanes
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    hr = [[0] * N, [H.n_codes - 1] * N, [0] * (N - 1) + [H.n_codes - 1], list(dp.initial_h(N))]
    wr = [[W.n_codes - 1] * N] * 3 + [rng.integers(0, W.n_codes, N).tolist()]
    while len(hr) < rows:
        if len(hr) % 2:   # any codes: overflow, wrap/saturate, extreme exponents
            h = rng.integers(0, H.n_codes, N)
        else:             # h-like: a random distribution over N, as the update produces
            p = rng.dirichlet(np.full(N, 0.3))
            h = H.encode(p, dp.h_rounding, "saturate")
        hr.append([int(c) for c in h])
        wr.append(rng.integers(0, W.n_codes, N).tolist())

    def beats(rs, fmt):
        return [pack_codes(b, fmt.width) for r in rs for b in beats_of(r, L, lambda: prng.randrange(fmt.n_codes))]
    return {"h_beats": beats(hr, H), "w_beats": beats(wr, W), "expected": reference(dp, hr, wr, W),
            "acc_width": dut.acc_width, "beats": dut.beats, "latency": dut.latency, "idle": idle,
            "backpressure": backpressure}


def vectors(dut, mode: str, seed: int):
    rows = {"quick": 60, "full": 2000}[mode]
    return stimulus(dut, rows, seed, **stalls(mode)), rows * dut.N


def register_entries() -> None:
    for dpname in DATAPATHS:
        for lanes in LANES:
            faults = (None, "flip_acc0") if (dpname, lanes) == ("int-e4m1", 4) else (None,)
            for fault in faults:
                register(Entry(unit="dot", datapath=dpname, lanes=lanes,
                               toplevel=f"dot_{ident(dpname)}_l{lanes}" if not fault else "dot_fault",
                               testbench="sim.tb_dot",
                               design=lambda fault, mode, dpname=dpname, lanes=lanes: DotProduct(
                                   datapath(dpname), DOT_N, lanes, w_format=weight_format(dpname), fault=fault),
                               vectors=vectors, fault=fault,
                               testcase="random_rows_vs_model" if fault else None,
                               note=f"DotProduct(N={DOT_N}, w {weight_format(dpname)}) decode, multiply, "
                                    "align, accumulate vs Datapath.dot; vectors = products"))
