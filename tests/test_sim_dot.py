"""cocotb + Verilator: DotProduct against Datapath.dot (rows with idle and back-pressure)."""
import pytest

from fixedpoint.datapath import PRESETS
from rtl.dot import DotProduct
from sim.regress_units.dot import stimulus
from sim.runner import build_and_test, simulator_available

pytestmark = pytest.mark.verilator
ok, why = simulator_available("verilator")
if not ok:
    pytest.skip(why, allow_module_level=True)

SEED = 20261122


@pytest.mark.parametrize("preset,L", [("paper", 1), ("paper", 4), ("int-e4m1", 4),
                                      pytest.param("int-e4m1", 1, marks=pytest.mark.slow)])
def test_dot_random_rows_verilator(preset, L):
    N = 27  # not a multiple of 4: the last beat has masked lanes
    dut = DotProduct(PRESETS[preset], N, L)
    n_rows = 120
    res = build_and_test(dut, f"dot_{preset.replace('-', '_')}_l{L}", "sim.tb_dot",
                         data=stimulus(dut, n_rows, SEED), seed=SEED)
    assert res.tests == 2 and res.failures == 0, res.summary()
    assert res.out["rows"] == n_rows  # 3240 products


def test_dot_fault_fails_regression():
    dut = DotProduct(PRESETS["int-e4m1"], 27, 4, fault="flip_acc0")
    res = build_and_test(dut, "dot_fault", "sim.tb_dot", data=stimulus(dut, 60, SEED), seed=SEED,
                         testcase="random_rows_vs_model")
    assert res.tests == 1 and res.failures == 1, res.summary()
    assert "first at index" in res.failed_cases[0][1]
