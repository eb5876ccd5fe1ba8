"""cocotb + Verilator: Normaliser against fixedpoint.normalise."""
import random

import pytest

from fixedpoint.datapath import PRESETS
from rtl.normaliser import Normaliser, reference
from sim.runner import build_and_test, simulator_available

pytestmark = pytest.mark.verilator
ok, why = simulator_available("verilator")
if not ok:
    pytest.skip(why, allow_module_level=True)

SEED = 20261122


def tb_inputs(dut, n, seed, idle=0.25, backpressure=0.25):
    """0, 1, all ones, every single bit, then random values of random bit length."""
    w = dut.acc_width
    rng = random.Random(seed)
    values = [0, 1, (1 << w) - 1] + [1 << k for k in range(w)]
    while len(values) < n:
        b = rng.randint(1, w)
        values.append(rng.getrandbits(b) | (1 << (b - 1)))
    return {"values": values, "expected": reference(dut.dp, values),
            "out_width": dut.norm_bits + dut.exp_shape.width + 1, "latency": dut.latency,
            "idle": idle, "backpressure": backpressure}


@pytest.mark.parametrize("preset", ["paper", "int-e4m1"])  # 64-bit UQ9.55, R=24; 32-bit UQ2.30, R=16
def test_normaliser_verilator(preset):
    dut = Normaliser(PRESETS[preset])
    res = build_and_test(dut, f"normaliser_{preset.replace('-', '_')}", "sim.tb_normaliser",
                         data=tb_inputs(dut, 3000, SEED), seed=SEED)
    assert res.tests == 2 and res.failures == 0, res.summary()
    assert res.out["vectors"] == 3000


def test_normaliser_fault_fails_regression():
    dut = Normaliser(PRESETS["int-e4m1"], fault="flip_sig0")
    res = build_and_test(dut, "normaliser_fault", "sim.tb_normaliser", data=tb_inputs(dut, 200, SEED),
                         seed=SEED, testcase="random_values_vs_model")
    assert res.tests == 1 and res.failures == 1, res.summary()
    assert "first at index" in res.failed_cases[0][1]
