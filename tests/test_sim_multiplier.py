"""cocotb + Verilator: ApproxMultiplier with prod_bits rounding (every code pair) against fixedpoint.product."""
import itertools

import pytest

from rtl.multiplier import ApproxMultiplier, reference
from sim.runner import build_and_test, simulator_available

pytestmark = pytest.mark.verilator
ok, why = simulator_available("verilator")
if not ok:
    pytest.skip(why, allow_module_level=True)

SEED = 20261122


def tb_inputs(dut):
    """Every code pair of the two formats, decoded on the host; exponents as bit patterns."""
    h, w = (list(c) for c in zip(*itertools.product(dut.h_fmt.all_codes().tolist(),
                                                     dut.w_fmt.all_codes().tolist())))
    sh, eh = dut.h_fmt.decode_parts(h)
    sw, ew = dut.w_fmt.decode_parts(w)
    ehb, ewb = len(dut.exp_h), len(dut.exp_w)
    vecs = [[int(a), int(b) & ((1 << ehb) - 1), int(c), int(d) & ((1 << ewb) - 1)]
            for a, b, c, d in zip(sh, eh, sw, ew)]
    P, E = reference(dut.h_fmt, dut.w_fmt, h, w, dut.prod_bits, dut.prod_rounding)
    eb = dut.exp_shape.width
    return {"vectors": vecs, "expected": [p | ((e & ((1 << eb) - 1)) << dut.prod_width) for p, e in zip(P, E)],
            "p_bits": dut.prod_width, "e_bits": eb}


def test_multiplier_rne_every_pair_verilator():
    dut = ApproxMultiplier("e3m2d", "e2m3", 3, "rne")  # subnormal h, ties, carries to 2**3
    res = build_and_test(dut, "multiplier_rne3", "sim.tb_multiplier", data=tb_inputs(dut), seed=SEED)
    assert res.tests == 1 and res.failures == 0, res.summary()
    assert res.out["vectors"] == 1024


def test_multiplier_fault_fails_regression():
    dut = ApproxMultiplier("e3m2d", "e2m3", 3, "rne", fault="flip_p0")
    res = build_and_test(dut, "multiplier_fault", "sim.tb_multiplier", data=tb_inputs(dut), seed=SEED)
    assert res.tests == 1 and res.failures == 1, res.summary()
    assert "first at index" in res.failed_cases[0][1]
