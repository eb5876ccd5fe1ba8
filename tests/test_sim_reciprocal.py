"""cocotb + Verilator regressions of Reciprocal (div and nr) and of the UpdateUnit (coefficient + h update)."""
import numpy as np
import pytest

from fixedpoint.datapath import Datapath
from rtl.reciprocal import Reciprocal
from rtl.update import UpdateUnit
from sim.regress_units import reciprocal as recip_stim
from sim.regress_units import update as update_stim
from sim.runner import build_and_test, simulator_available

pytestmark = pytest.mark.verilator
ok, why = simulator_available("verilator")
if not ok:
    pytest.skip(why, allow_module_level=True)

SEED = 99
INT = Datapath.preset("int-e4m1")


@pytest.mark.parametrize("method", ["div", pytest.param("nr", marks=pytest.mark.slow)])
def test_reciprocal_verilator(method):
    dp = Datapath(recip_method=method)
    dut = Reciprocal(dp)
    res = build_and_test(dut, f"reciprocal_{method}", "sim.tb_reciprocal",
                         data=recip_stim.stimulus(dut, recip_stim.corner_and_random_inputs(dp.norm_bits, 300, SEED)),
                         seed=SEED)
    assert res.tests == 1 and res.failures == 0, res.summary()
    assert res.out["values"] == 303


@pytest.mark.slow
def test_reciprocal_fault_fails():
    dut = Reciprocal(INT, fault="flip_bit0")
    res = build_and_test(dut, "reciprocal_fault", "sim.tb_reciprocal",
                         data=recip_stim.stimulus(dut, recip_stim.corner_and_random_inputs(INT.norm_bits, 300, SEED)),
                         seed=SEED)
    assert res.tests == 1 and res.failures == 1, res.summary()
    assert "first at index" in res.failed_cases[0][1]


@pytest.mark.parametrize("fault", [None, pytest.param("flip_bit0", marks=pytest.mark.slow)])
def test_update_unit_verilator(fault):
    w = np.random.default_rng(2).uniform(0.001, 0.2, size=(12, 10))
    w_fmt = INT.weight_format_for(w)
    dut = UpdateUnit(INT, w_fmt, 4, fault=fault)
    res = build_and_test(dut, "update_l4" + ("_fault" if fault else ""), "sim.tb_update",
                         data=update_stim.stimulus(dut, 40, SEED, T=100, idle=0.2, backpressure=0.2), seed=SEED)
    if fault:
        assert res.tests == 1 and res.failures == 1, res.summary()
    else:
        assert res.tests == 1 and res.failures == 0, res.summary()
        assert res.out["beats"] == 120
