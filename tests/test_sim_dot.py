"""cocotb + Verilator: DotProduct against Datapath.dot (rows with idle and back-pressure)."""
import random

import numpy as np
import pytest

from fixedpoint.datapath import PRESETS
from rtl.dot import DotProduct, beats_of, pack_codes, reference
from sim.runner import build_and_test, simulator_available

pytestmark = pytest.mark.verilator
ok, why = simulator_available("verilator")
if not ok:
    pytest.skip(why, allow_module_level=True)

SEED = 20261122


def tb_inputs(dut, n_rows, seed, idle=0.25, backpressure=0.25):
    """Corner rows (zeros, max codes) then random rows; model results per row."""
    H, W, N, L = dut.h_fmt, dut.w_fmt, dut.N, dut.lanes
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    hr = [[0] * N, [H.n_codes - 1] * N, [0] * (N - 1) + [H.n_codes - 1]]
    wr = [[W.n_codes - 1] * N] * 3
    while len(hr) < n_rows:
        hr.append(rng.integers(0, H.n_codes, N).tolist())
        wr.append(rng.integers(0, W.n_codes, N).tolist())

    def beats(rows, fmt):
        return [pack_codes(b, fmt.width) for r in rows
                for b in beats_of(r, L, lambda: prng.randrange(fmt.n_codes))]
    return {"h_beats": beats(hr, H), "w_beats": beats(wr, W), "expected": reference(dut.dp, hr, wr),
            "acc_width": dut.acc_width, "beats": dut.beats, "latency": dut.latency, "idle": idle,
            "backpressure": backpressure}


@pytest.mark.parametrize("preset,L", [("paper", 1), ("paper", 4), ("int-e4m1", 4),
                                      pytest.param("int-e4m1", 1, marks=pytest.mark.slow)])
def test_dot_random_rows_verilator(preset, L):
    N = 27  # not a multiple of 4: the last beat has masked lanes
    dut = DotProduct(PRESETS[preset], N, L)
    n_rows = 120
    res = build_and_test(dut, f"dot_{preset.replace('-', '_')}_l{L}", "sim.tb_dot",
                         data=tb_inputs(dut, n_rows, SEED), seed=SEED)
    assert res.tests == 2 and res.failures == 0, res.summary()
    assert res.out["rows"] == n_rows  # 3240 products


def test_dot_fault_fails_regression():
    dut = DotProduct(PRESETS["int-e4m1"], 27, 4, fault="flip_acc0")
    res = build_and_test(dut, "dot_fault", "sim.tb_dot", data=tb_inputs(dut, 60, SEED), seed=SEED,
                         testcase="random_rows_vs_model")
    assert res.tests == 1 and res.failures == 1, res.summary()
    assert "first at index" in res.failed_cases[0][1]
