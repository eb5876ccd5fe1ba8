"""cocotb + Verilator regression of rtl.layer.engine.LayerEngine (sim/tb_layer.py): every output code
== the quantized model with random idle cycles and back-pressure, the cycles per image == the cycle
model without stalls, and the fault entries (dropped IP, swapped IPs, stale h) must fail."""
import pytest

from sim.runner import build_and_test, simulator_available

pytestmark = pytest.mark.verilator
ok, why = simulator_available("verilator")
if not ok:
    pytest.skip(why, allow_module_level=True)

from sim import tb_layer_regress as lr  # noqa: E402  (registers the entries; needs the simulator check first)

SEED = 2718


def test_small_layer_with_stalls_then_exact_cycles():
    eng, _ = lr.small_engine()
    data, n = lr.small_vectors(eng, SEED, stalls=True)
    res = build_and_test(eng, "layer_engine", "sim.tb_layer", data=data, seed=SEED)
    assert res.tests == 1 and res.failures == 0, res.summary()
    assert res.out["codes"] == n == 3 * eng.n_ip * eng.N
    assert all(c > eng.cycles() for c in res.out["cycles"])  # the stalls cost cycles
    eng2, _ = lr.small_engine()
    data, _ = lr.small_vectors(eng2, SEED + 1, stalls=False)
    res = build_and_test(eng2, "layer_engine", "sim.tb_layer", data=data, seed=SEED)
    assert res.tests == 1 and res.failures == 0, res.summary()
    assert res.cached and res.out["cycles"] == [eng.cycles()] * 3


def test_fault_select_design_passes_without_a_fault():
    eng, _ = lr.small_engine("select")
    data, _ = lr.small_vectors(eng, SEED, stalls=True, fault_sel=0)
    res = build_and_test(eng, "layer_engine_faults", "sim.tb_layer", data=data, seed=SEED)
    assert res.tests == 1 and res.failures == 0, res.summary()


@pytest.mark.parametrize("fault", ["drop_ip", "swap_ips", "stale_h"])
def test_fault_entries_fail(fault):
    from rtl.layer.engine import FAULT_SELECT
    eng, _ = lr.small_engine("select")
    data, _ = lr.small_vectors(eng, SEED, stalls=True, fault_sel=FAULT_SELECT[fault])
    res = build_and_test(eng, "layer_engine_faults", "sim.tb_layer", data=data, seed=SEED)
    assert res.tests == 1 and res.failures == 1, res.summary()


def test_regress_entries_registered():
    from sim.regress import entries, run_one
    names = [e.name for e in entries()]
    for want in ("layer-engine/int-e4m1/L16", "layer-engine-timing/int-e4m1/L16",
                 "layer-engine-drop-ip/int-e4m1/L16/fault", "layer-engine-stale-h/int-e4m1/L16/fault"):
        assert want in names
    out = run_one("layer-engine-timing/int-e4m1/L16", "quick", SEED)
    assert out["ok"], out
    out = run_one("layer-engine-swap-ips/int-e4m1/L16/fault", "quick", SEED)
    assert out["ok"] and out["status"] == "fault detected", out


@pytest.mark.slow
@pytest.mark.parametrize("layer", [5, 4, 2, 0])
def test_shipped_layer_T1600_mnist(layer):
    from rtl.layer.design import engine_for
    eng = engine_for(lr._shipped_model(), layer, lr.SHIPPED[layer])
    data, n = lr.shipped_vectors(eng, layer, SEED)
    res = build_and_test(eng, "layer_engine", "sim.tb_layer", data=data, seed=SEED)
    assert res.tests == 1 and res.failures == 0, res.summary()
    assert res.out["codes"] == n
