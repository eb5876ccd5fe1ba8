"""cocotb + Verilator: Normaliser against fixedpoint.normalise."""
import pytest

from fixedpoint.datapath import PRESETS
from rtl.normaliser import Normaliser
from sim.regress_units.normaliser import corner_and_random_values, stimulus
from sim.runner import build_and_test, simulator_available

pytestmark = pytest.mark.verilator
ok, why = simulator_available("verilator")
if not ok:
    pytest.skip(why, allow_module_level=True)

SEED = 20261122


@pytest.mark.parametrize("preset", ["paper", "int-e4m1"])  # 64-bit UQ9.55, R=24; 32-bit UQ2.30, R=16
def test_normaliser_verilator(preset):
    dut = Normaliser(PRESETS[preset])
    res = build_and_test(dut, f"normaliser_{preset.replace('-', '_')}", "sim.tb_normaliser",
                         data=stimulus(dut, corner_and_random_values(dut.acc_width, 3000, SEED)), seed=SEED)
    assert res.tests == 2 and res.failures == 0, res.summary()
    assert res.out["vectors"] == 3000


def test_normaliser_fault_fails_regression():
    dut = Normaliser(PRESETS["int-e4m1"], fault="flip_sig0")
    res = build_and_test(dut, "normaliser_fault", "sim.tb_normaliser", data=stimulus(dut, corner_and_random_values(dut.acc_width, 200, SEED)),
                         seed=SEED, testcase="random_values_vs_model")
    assert res.tests == 1 and res.failures == 1, res.summary()
    assert "first at index" in res.failed_cases[0][1]
