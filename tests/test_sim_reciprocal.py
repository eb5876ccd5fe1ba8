"""cocotb + Verilator regressions of Reciprocal (div and nr) and of the UpdateUnit (coefficient + h update)."""
import random

import numpy as np
import pytest

from fixedpoint.datapath import Datapath
from rtl.reciprocal import Reciprocal, reference
from rtl.update import UpdateUnit
from rtl.update import reference as update_reference
from sim.runner import build_and_test, simulator_available

pytestmark = pytest.mark.verilator
ok, why = simulator_available("verilator")
if not ok:
    pytest.skip(why, allow_module_level=True)

SEED = 99
INT = Datapath.preset("int-e4m1")


def recip_inputs(dp, seed, n=300):
    rng = random.Random(seed)
    R = dp.norm_bits
    xs = [0, 1 << (R - 1), (1 << R) - 1] + [rng.randrange(1 << (R - 1), 1 << R) for _ in range(n)]
    return {"inputs": xs, "expected": reference(dp, xs), "y_width": dp.recip_bits + 1, "idle": 0.25,
            "backpressure": 0.25}


@pytest.mark.parametrize("method", ["div", pytest.param("nr", marks=pytest.mark.slow)])
def test_reciprocal_verilator(method):
    dp = Datapath(recip_method=method)
    res = build_and_test(Reciprocal(dp), f"reciprocal_{method}", "sim.tb_reciprocal", data=recip_inputs(dp, SEED),
                         seed=SEED)
    assert res.tests == 1 and res.failures == 0, res.summary()
    assert res.out["values"] == 303


@pytest.mark.slow
def test_reciprocal_fault_fails():
    res = build_and_test(Reciprocal(INT, fault="flip_bit0"), "reciprocal_fault", "sim.tb_reciprocal",
                         data=recip_inputs(INT, SEED), seed=SEED)
    assert res.tests == 1 and res.failures == 1, res.summary()
    assert "first at index" in res.failed_cases[0][1]


def update_inputs(dut, dp, w_fmt, seed, n_spikes=40, N=10):
    from fixedpoint.formats import parse_format
    from fixedpoint.reciprocal import reciprocal
    from rtl.update import exp_r_range
    rng = random.Random(seed)
    H, W = parse_format(dp.h_format), parse_format(w_fmt)
    tab = dp.tables(100)
    R, L = dp.norm_bits, dut.lanes
    lo, hi = exp_r_range(dp)
    spikes = []
    for _ in range(n_spikes):
        h = [rng.choice([0, H.n_codes - 1, rng.randrange(H.n_codes)]) for _ in range(N)]
        w = [rng.randrange(W.n_codes) for _ in range(N)]
        t = rng.randrange(100)
        sig = rng.randrange(1 << (R - 1), 1 << R)
        er = rng.choice([lo, hi, rng.randrange(lo, hi + 1)])
        Y = int(reciprocal(sig, R, dp.recip_bits, dp.recip_method, dp.recip_rounding, dp.lut_bits, dp.nr_iters))
        C, G = int(tab.C[t]), int(tab.G[t])
        _, _, codes = update_reference(dp, w_fmt, h, w, C, G, Y, er)
        pad = (-N) % L
        beats = [dut.pack_beat(h[i:i + L], w[i:i + L]) for i in range(0, N, L)]
        # lanes past N compute on padding (code 0): the model of those lanes is the update of h = 0
        _, _, pad_codes = update_reference(dp, w_fmt, h + [0] * pad, w + [0] * pad, C, G, Y, er)
        exp = [dut.pack_beat(pad_codes[i:i + L], []) for i in range(0, N + pad, L)]
        assert pad_codes[:N] == codes
        spikes.append({"coef": dut.pack_coef(C, G, Y, er), "beats": beats, "expected": exp})
    return {"spikes": spikes, "width": L * H.width, "idle": 0.2, "backpressure": 0.2}


@pytest.mark.parametrize("fault", [None, pytest.param("flip_bit0", marks=pytest.mark.slow)])
def test_update_unit_verilator(fault):
    w = np.random.default_rng(2).uniform(0.001, 0.2, size=(12, 10))
    w_fmt = INT.weight_format_for(w)
    dut = UpdateUnit(INT, w_fmt, 4, fault=fault)
    res = build_and_test(dut, "update_l4" + ("_fault" if fault else ""), "sim.tb_update",
                         data=update_inputs(dut, INT, w_fmt, SEED), seed=SEED)
    if fault:
        assert res.tests == 1 and res.failures == 1, res.summary()
    else:
        assert res.tests == 1 and res.failures == 0, res.summary()
        assert res.out["beats"] == 120
