"""cocotb + Verilator regression of SpikeSampler against fixedpoint.rng.sample_index_int."""
import os
import random

import pytest

from rtl.sampler import SpikeSampler, reference
from sim.runner import build_and_test, simulator_available

pytestmark = pytest.mark.verilator
ok, why = simulator_available("verilator")
if not ok:
    pytest.skip(why, allow_module_level=True)

SEED = int(os.environ.get("SBS_SIM_SEED", "777"))  # override to explore other seeds
S, VW = 12, 10


def tb_inputs(seed, dut, idle=0.25, backpressure=0.25):
    rng = random.Random(seed)
    vmax = (1 << VW) - 1
    windows = [[0] * S, [vmax] * S, [vmax if i == 5 else 0 for i in range(S)],
               [rng.choice([0, 0, rng.randrange(vmax + 1)]) for _ in range(S)],
               [rng.randrange(vmax + 1) for _ in range(S)]]
    jobs = []
    for w in windows:
        draws = [0, (1 << 32) - 1] + [rng.getrandbits(32) for _ in range(60)]
        jobs.append({"values": w, "draws": draws, "expected": reference(w, draws)})
    return {"jobs": jobs, "index_width": dut.index_width, "idle": idle,
            "backpressure": backpressure}


def test_spike_sampler_verilator():
    dut = SpikeSampler(S, VW)
    res = build_and_test(dut, "spike_sampler", "sim.tb_sampler", data=tb_inputs(SEED, dut),
                         seed=SEED)
    assert res.tests == 1 and res.failures == 0, res.summary()
    assert res.out["draws"] == 5 * 62


def test_fault_injection_fails_regression():
    dut = SpikeSampler(S, VW, fault="flip_bit0")
    res = build_and_test(dut, "spike_sampler", "sim.tb_sampler", data=tb_inputs(SEED, dut),
                         seed=SEED)
    assert res.tests == 1 and res.failures == 1, res.summary()
    assert "first at index" in res.failed_cases[0][1]
