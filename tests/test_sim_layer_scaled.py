"""cocotb + Verilator regression of the layer engine with the scaled update (sim/tb_layer_scaled_regress.py):
every output code == the quantized model with stalls, cycles == the cycle model, the stale-h fault
entry fails.  Whole-design Verilator builds: marked slow."""
import pytest

from sim.runner import build_and_test, simulator_available

pytestmark = [pytest.mark.verilator, pytest.mark.slow]
ok, why = simulator_available("verilator")
if not ok:
    pytest.skip(why, allow_module_level=True)

from sim import tb_layer_scaled_regress as sr  # noqa: E402  (registers the entries; needs the simulator check first)

SEED = 1414


def test_scaled_entries_registered_and_run():
    from sim.regress import entries, run_one
    names = [e.name for e in entries()]
    for want in ("layer-engine-scaled/cheap-e4m1/L16", "layer-engine-scaled/scaled-e4m1/L16",
                 "layer-engine-scaled-timing/cheap-e4m1/L16", "layer-engine-scaled-stale-h/cheap-e4m1/L16/fault"):
        assert want in names
    out = run_one("layer-engine-scaled-timing/cheap-e4m1/L16", "quick", SEED)
    assert out["ok"] and out["status"] == "pass", out
    out = run_one("layer-engine-scaled-stale-h/cheap-e4m1/L16/fault", "quick", SEED)
    assert out["ok"] and out["status"] == "fault detected", out


def test_scaled_small_layer_with_stalls():
    eng = sr.small_engine("scaled-e4m1")
    data, n = sr.small_vectors(eng, SEED, stalls=True)
    res = build_and_test(eng, "layer_engine", "sim.tb_layer", data=data, seed=SEED)
    assert res.tests == 1 and res.failures == 0, res.summary()
    assert res.out["codes"] == n == 3 * eng.n_ip * eng.N
