"""cocotb + Verilator: WeightDecoder (every code) against fmt.decode_parts."""
import pytest

from fixedpoint.formats import parse_format
from rtl.decoder import WeightDecoder
from sim.regress_units.decoder import stimulus
from sim.runner import build_and_test, simulator_available

pytestmark = pytest.mark.verilator
ok, why = simulator_available("verilator")
if not ok:
    pytest.skip(why, allow_module_level=True)

SEED = 20261122


@pytest.mark.parametrize("fmt", ["e5m11z", "e4m1"])  # paper h; paper and int-e4m1 weights
def test_decoder_every_code_verilator(fmt):
    dut = WeightDecoder(fmt)
    res = build_and_test(dut, f"weight_decoder_{fmt}", "sim.tb_decoder", data=stimulus(dut, dut.fmt.all_codes()), seed=SEED)
    assert res.tests == 1 and res.failures == 0, res.summary()
    assert res.out["vectors"] == parse_format(fmt).n_codes


def test_decoder_fault_fails_regression():
    dut = WeightDecoder("e4m1", fault="flip_sig0")
    res = build_and_test(dut, "weight_decoder_fault", "sim.tb_decoder", data=stimulus(dut, dut.fmt.all_codes()), seed=SEED)
    assert res.tests == 1 and res.failures == 1, res.summary()
    assert "first at index 3" in res.failed_cases[0][1]
