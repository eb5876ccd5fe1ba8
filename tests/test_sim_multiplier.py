"""cocotb + Verilator: ApproxMultiplier with prod_bits rounding (every code pair) against fixedpoint.product."""
import pytest

from rtl.multiplier import ApproxMultiplier
from sim.regress_units.multiplier import every_pair, stimulus
from sim.runner import build_and_test, simulator_available

pytestmark = pytest.mark.verilator
ok, why = simulator_available("verilator")
if not ok:
    pytest.skip(why, allow_module_level=True)

SEED = 20261122


def test_multiplier_rne_every_pair_verilator():
    dut = ApproxMultiplier("e3m2d", "e2m3", 3, "rne")  # subnormal h, ties, carries to 2**3
    res = build_and_test(dut, "multiplier_rne3", "sim.tb_multiplier", data=stimulus(dut, every_pair(dut)), seed=SEED)
    assert res.tests == 1 and res.failures == 0, res.summary()
    assert res.out["vectors"] == 1024


def test_multiplier_fault_fails_regression():
    dut = ApproxMultiplier("e3m2d", "e2m3", 3, "rne", fault="flip_p0")
    res = build_and_test(dut, "multiplier_fault", "sim.tb_multiplier", data=stimulus(dut, every_pair(dut)), seed=SEED)
    assert res.tests == 1 and res.failures == 1, res.summary()
    assert "first at index" in res.failed_cases[0][1]
