"""cocotb + Verilator regression of SpikeSampler against fixedpoint.rng.sample_index_int."""
import os

import pytest

from rtl.sampler import SpikeSampler
from sim.regress_units.sampler import stimulus
from sim.runner import build_and_test, simulator_available

pytestmark = pytest.mark.verilator
ok, why = simulator_available("verilator")
if not ok:
    pytest.skip(why, allow_module_level=True)

SEED = int(os.environ.get("SBS_SIM_SEED", "777"))  # override to explore other seeds
S, VW = 12, 10


def test_spike_sampler_verilator():
    dut = SpikeSampler(S, VW)
    res = build_and_test(dut, "spike_sampler", "sim.tb_sampler", data=stimulus(dut, 5, 62, SEED),
                         seed=SEED)
    assert res.tests == 1 and res.failures == 0, res.summary()
    assert res.out["draws"] == 5 * 62


def test_fault_injection_fails_regression():
    dut = SpikeSampler(S, VW, fault="flip_bit0")
    res = build_and_test(dut, "spike_sampler", "sim.tb_sampler", data=stimulus(dut, 5, 62, SEED),
                         seed=SEED)
    assert res.tests == 1 and res.failures == 1, res.summary()
    assert "first at index" in res.failed_cases[0][1]
