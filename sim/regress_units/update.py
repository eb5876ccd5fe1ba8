"""UpdateUnit against :func:`rtl.update.reference` (:mod:`fixedpoint.update`): the stimulus
(:func:`stimulus`, also used by ``tests/test_sim_reciprocal.py``'s update test) and the ``sbs regress``
entries."""
from __future__ import annotations

import random

from fixedpoint.reciprocal import reciprocal
from rtl.update import UpdateUnit, exp_r_range
from rtl.update import reference as update_reference
from sim.regress import Entry, register
from sim.regress_units.common import LANES, datapath, stalls, weight_format

UPDATE_N = 10  # h elements per spike (not a multiple of 4: padded lanes in the last beat)
UPDATE_DP = "int-e4m1"


def stimulus(dut: UpdateUnit, n_spikes: int, seed: int, N: int = UPDATE_N, T: int = 1600, idle: float = 0.25,
             backpressure: float = 0.25) -> dict:
    """``tb_data`` of ``sim.tb_update``: ``n_spikes`` random spikes of N h elements (corner and random
    h codes, random weights, t, sig_r and exp_r corners), each with its coefficient word, its beats
    and the model's new h codes.  Lanes past N compute on padding (code 0); their model is the update
    of h = 0 (checked: the first N codes equal the unpadded update)."""
    dp, w_fmt, L = dut.dp, dut.W.text, dut.lanes
    H, W = dut.H, dut.W
    tab = dp.tables(T)
    R = int(dp.norm_bits)
    lo, hi = exp_r_range(dp)
    rng = random.Random(seed)
    spikes = []
    for _ in range(n_spikes):
        h = [rng.choice([0, H.n_codes - 1, rng.randrange(H.n_codes), rng.randrange(1 << 12)]) for _ in range(N)]
        w = [rng.randrange(W.n_codes) for _ in range(N)]
        t = rng.choice([0, 1, T - 1, rng.randrange(T)])
        sig = rng.randrange(1 << (R - 1), 1 << R)
        er = rng.choice([lo, hi, rng.randrange(lo, hi + 1)])
        Y = int(reciprocal(sig, R, dp.recip_bits, dp.recip_method, dp.recip_rounding, dp.lut_bits, dp.nr_iters))
        C, G = int(tab.C[t]), int(tab.G[t])
        pad = (-N) % L
        _, _, codes = update_reference(dp, w_fmt, h + [0] * pad, w + [0] * pad, C, G, Y, er)
        if pad and codes[:N] != update_reference(dp, w_fmt, h, w, C, G, Y, er)[2]:
            raise RuntimeError("update model: padded lanes changed the first N codes")
        spikes.append({"coef": dut.pack_coef(C, G, Y, er),
                       "beats": [dut.pack_beat(h[i:i + L], w[i:i + L]) for i in range(0, N, L)],
                       "expected": [dut.pack_beat(codes[i:i + L], []) for i in range(0, N + pad, L)]})
    return {"spikes": spikes, "width": L * H.width, "idle": idle, "backpressure": backpressure}


def vectors(dut, mode: str, seed: int):
    n_spikes = {"quick": 60, "full": 3000}[mode]
    return stimulus(dut, n_spikes, seed, **stalls(mode)), n_spikes * UPDATE_N   # vectors = h elements updated


def register_entries() -> None:
    for lanes in LANES:
        for fault in (None, "flip_bit0") if lanes == 4 else (None,):
            register(Entry(unit="update", datapath=UPDATE_DP, lanes=lanes,
                           toplevel=f"update_l{lanes}" if not fault else "update_l4_fault",
                           testbench="sim.tb_update",
                           design=lambda fault, mode, lanes=lanes: UpdateUnit(
                               datapath(UPDATE_DP), weight_format(UPDATE_DP), lanes, fault=fault),
                           vectors=vectors, fault=fault,
                           note=f"UpdateUnit (w {weight_format(UPDATE_DP)}) vs rtl.update.reference "
                                "(fixedpoint.update); vectors = h elements"))
