"""cocotb + Verilator regression of SpikeRandom against fixedpoint.rng.spike_random."""
import os

import pytest

from rtl.rng import SpikeRandom
from sim.regress_units.rng import stimulus
from sim.runner import build_and_test, simulator_available

pytestmark = pytest.mark.verilator
ok, why = simulator_available("verilator")
if not ok:
    pytest.skip(why, allow_module_level=True)

SEED = int(os.environ.get("SBS_SIM_SEED", "20261122"))  # override to explore other seeds
def test_spike_random_verilator():
    dut = SpikeRandom("pipelined")
    res = build_and_test(dut, "spike_random", "sim.tb_rng", data=stimulus(dut, 5000, SEED),
                         seed=SEED)
    print(f"build {'cached' if res.cached else f'{res.build_seconds:.1f} s'}, "
          f"{res.out.get('vectors_per_second', 0):.0f} vectors/s")
    assert res.tests == 2 and res.failures == 0, res.summary()
    assert res.out["vectors"] == 5000


def test_fault_injection_fails_regression():
    dut = SpikeRandom("pipelined", fault="flip_bit3")
    res = build_and_test(dut, "spike_random", "sim.tb_rng", data=stimulus(dut, 200, SEED),
                         seed=SEED, testcase="random_stream_vs_model")
    assert res.tests == 1 and res.failures == 1, res.summary()
    assert "first at index" in res.failed_cases[0][1]


def test_build_is_reused_for_the_same_verilog():
    dut = SpikeRandom("pipelined")
    data = stimulus(dut, 40, 1)
    first = build_and_test(dut, "spike_random", "sim.tb_rng", data=data, seed=1,
                           testcase="back_to_back_one_per_cycle")
    again = build_and_test(SpikeRandom("pipelined"), "spike_random", "sim.tb_rng", data=data,
                           seed=2, testcase="back_to_back_one_per_cycle")
    assert first.ok and again.ok, again.summary()
    assert again.cached and again.build_dir == first.build_dir
    assert again.test_dir != first.test_dir and (again.test_dir / "rerun.sh").is_file()


@pytest.mark.slow  # compiles Verilator's run-time library with tracing once (~15 s)
def test_waves_are_dumped():
    dut = SpikeRandom("iterative")
    res = build_and_test(dut, "spike_random_it", "sim.tb_rng", data=stimulus(dut, 8, 3),
                         seed=3, waves=True, testcase="random_stream_vs_model")
    assert res.ok, res.summary()
    dumps = [p for p in res.test_dir.iterdir() if p.name in ("dump.fst", "dump.vcd")]
    assert dumps and dumps[0].stat().st_size > 1000


def test_icarus_is_optional():
    from sim.runner import SimulatorUnavailable
    ok_iv, why_iv = simulator_available("icarus")
    if ok_iv:
        pytest.skip("iverilog present: nothing to check about its absence")
    with pytest.raises(SimulatorUnavailable, match="iverilog"):
        build_and_test(SpikeRandom("iterative"), "spike_random_it", "sim.tb_rng",
                       data={}, simulator="icarus")
