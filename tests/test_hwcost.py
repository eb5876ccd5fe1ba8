"""Analytic hardware cost model: building blocks by hand, monotonicity, lane scaling, latency = RTL."""
import dataclasses

import pytest

from fixedpoint.datapath import Datapath
from sbs_model import hwcost
from sbs_model.hwcost import (TARGETS, Cost, HwConfig, hw_cost, ip_cycles, memory, multiplier, shifter_luts,
                              unit_costs)
from sbs_model.network import reference_mnist

XC7, ECP5 = TARGETS["xc7"], TARGETS["ecp5"]
INT = Datapath.preset("int-e4m1")


def total(units):
    t = Cost()
    for c in units.values():
        t = t + c
    return t


def test_building_blocks_by_hand():
    # barrel shifter, 32 output bits, 16 shift amounts = 4 mux stages: 2 per LUT6, 1 per LUT4
    assert shifter_luts(32, 16, XC7) == 64 and shifter_luts(32, 16, ECP5) == 128
    assert shifter_luts(32, 17, XC7) == 32 * 3 and shifter_luts(10, 1, XC7) == 0
    # LUT multipliers: a-1 adders of b+1 bits; hidden one: m adders; 1 x b hidden = wire
    assert multiplier(8, 16, XC7) == Cost(7 * 17, 24, 0)
    assert multiplier(2, 16, XC7, hidden_a=True) == Cost(17, 18, 0)       # e4m1 x uq0.16: one adder
    assert multiplier(1, 16, XC7, hidden_a=True) == Cost()                 # e4m0: a shift, no multiplier
    assert multiplier(1, 16, XC7) == Cost(16, 17, 0)                       # uq0.1: AND gates
    # DSPs: 24x17 unsigned on xc7, 18x18 on ecp5, best orientation
    assert multiplier(16, 16, XC7).dsp == 1 and multiplier(18, 21, XC7).dsp == 2
    assert multiplier(18, 18, ECP5).dsp == 1 and multiplier(32, 20, ECP5).dsp == 4
    assert multiplier(24, 24, XC7).dsp == 2
    # memories: LUT RAM when small, else block RAMs limited by bits and by word width
    assert memory(512, 64, XC7) == Cost(8, 0, 0, 512, 0)
    assert memory(51200, 32, XC7).bram == 2 and memory(4096, 144, XC7).bram == 2


def test_int_e4m1_units_by_hand():
    u = unit_costs(INT, HwConfig(lanes=8), S=800, N=64, T=1600, layer_index=2)
    # aligner per lane: e4m1 has 16 exponents, h fixed: 16 shift amounts, product 2+16 bits,
    # output min(32, 18 + 15) = 32 bits: 32 * ceil(4/2) = 64 LUT6; registers 33
    assert u["aligner"] == Cost(8 * 64, 8 * 33, 0)
    # adder tree: 7 registered 32-bit adders (+ overflow bit) and the saturating accumulator
    assert u["adder_tree"] == Cost(7 * 32 + 32 + 32, 7 * 33 + 65, 0)
    assert u["multiplier"] == Cost(8 * 17, 8 * 18, 0) and u["decoder"] == Cost()
    # weight ROM: S * ceil(N/L) words of L * 5 bits
    assert u["weight_rom"].mem_bits == 800 * 8 * 8 * 5 and u["weight_rom"].bram == 7  # ceil(256000 / 36864)
    assert u["schedule_rom"].mem_bits == 1600 * 32


def test_more_bits_never_cheaper():
    """Widening any format never lowers LUTs, FFs or memory unless multipliers move to DSPs
    (then the DSP count rises); DSPs and memory never fall."""
    net = reference_mnist()

    def key(dp):
        c = hw_cost(dp, net, HwConfig(lanes=8))
        return c["lut"], c["ff"], c["dsp"], c["mem_bits"], c["weight_bits"]

    ladders = {
        "weight_format": ["e4m0", "e4m1", "e4m2", "e4m3", "e4m4", "e4m6"],
        "weight_format ": ["uq0.2", "uq0.3", "uq0.4", "uq0.6", "uq0.8", "uq0.9", "uq0.10", "uq0.12"],
        "h_format": ["uq0.8", "uq0.10", "uq0.12", "uq0.16", "uq0.20"],
        "acc_format": ["uq2.20", "uq2.26", "uq2.30", "uq4.30", "uq2.40"],
        "recip_bits": [8, 12, 16, 20],
        "coef_bits": [10, 14, 18, 22],
    }
    for field, values in ladders.items():
        prev = None
        for v in values:
            cur = key(dataclasses.replace(INT, **{field.strip(): v}))
            if prev is not None:
                lut, ff, dsp, mem, wb = cur
                assert dsp >= prev[2] and mem >= prev[3] and wb >= prev[4], (field, v)
                if dsp == prev[2]:
                    assert lut >= prev[0] and ff >= prev[1], (field, v, prev, cur)
            prev = cur
    # weight memory is exactly bits x weights
    n_w = sum(S * N for S, N in net.weight_shapes().values())
    assert hw_cost(Datapath.preset("int-uq0.8"), net)["weight_bits"] == 8 * n_w
    assert hw_cost(Datapath.preset("int-e4m0"), net)["weight_bits"] == 4 * n_w


def test_lane_scaling():
    u1 = unit_costs(INT, HwConfig(lanes=1), S=100, N=64, T=100)
    for L in (2, 8, 32):
        uL = unit_costs(INT, HwConfig(lanes=L), S=100, N=64, T=100)
        for k in ("decoder", "multiplier", "aligner", "update"):
            assert uL[k] == u1[k] * L, (k, L)
        for k in ("normaliser", "reciprocal", "coefficient", "sampler", "rng", "schedule_rom"):
            assert uL[k] == u1[k], (k, L)
        assert uL["adder_tree"].lut == 32 * (L - 1) + u1["adder_tree"].lut
        # weight ROM holds S*N codes (N a multiple of L here)
        assert uL["weight_rom"].mem_bits == u1["weight_rom"].mem_bits
    # cycles per spike: two passes of ceil(N/L) beats + a tree one level deeper per doubling
    c1, c8 = hwcost.spike_cycles(INT, 96, 50, 1), hwcost.spike_cycles(INT, 96, 50, 8)
    assert c1 - c8 == 2 * (96 - 12) - 3
    # the reciprocal's latency is part of every spike: div Qb + 2 = 18, model-only float32 divide 26
    assert hwcost.spike_cycles(Datapath.preset("paper-e4m1"), 96, 50, 8) - c8 == 26 - 18


def test_latency_is_the_rtl_engine_cycle_model():
    from rtl.engine import engine_cycles, engine_latency

    nr = dataclasses.replace(INT, recip_method="nr", nr_iters=2)
    for dp in (INT, nr, Datapath.preset("int-uq0.8")):
        for L in (1, 3, 8):
            for N, S, T in ((32, 25, 40), (10, 96, 7), (4, 3, 30), (96, 576, 2)):
                c = ip_cycles(dp, N, S, T, L)
                assert c == engine_latency(dp, N, S, T, L) == engine_cycles(dp, N, S, L, [False] * T)
                # every further spike adds one spike's cycles, or one draw period when the
                # iterative RNG (a draw per 22 cycles) is slower than the spike loop
                per = hwcost.spike_cycles(dp, N, S, L)
                assert ip_cycles(dp, N, S, T + 1, L) - c == max(per, hwcost.RNG_PERIOD), (L, N, S, T)
                # a pipelined RNG never slows an IP down
                assert ip_cycles(dp, N, S, T, L, "pipelined") <= c


def test_network_latency_and_engines():
    net = reference_mnist(spikes=100)
    one = hw_cost(INT, net, HwConfig(lanes=8, engines=1, clock_mhz=100.0))
    four = hw_cost(INT, net, HwConfig(lanes=8, engines=4, clock_mhz=200.0))
    # layer 0: 20x20 IPs, N = 32, S = 25
    assert one["cycles_per_layer"][0] == 400 * ip_cycles(INT, 32, 25, 100, 8)
    assert four["cycles_per_layer"][0] == 100 * ip_cycles(INT, 32, 25, 100, 8)
    assert one["cycles_per_image"] == sum(one["cycles_per_layer"])
    assert one["ms_per_image"] == pytest.approx(one["cycles_per_image"] / 1e5)
    assert four["ms_per_image"] == pytest.approx(four["cycles_per_image"] / 2e5)
    assert four["lut"] == 4 * one["lut"] and four["dsp"] == 4 * one["dsp"]
    assert one["interval_cycles"] == max(one["cycles_per_layer"])


def test_paper_float32_update_costs_more_than_int():
    net = reference_mnist()
    p = hw_cost(Datapath.preset("paper-e4m1"), net)
    i = hw_cost(INT, net)
    assert p["lut"] > i["lut"] and p["dsp"] > i["dsp"]
    assert p["weight_bits"] == i["weight_bits"]


def test_bad_input():
    with pytest.raises(ValueError, match="lanes 0 out of range 1..4096"):
        HwConfig(lanes=0)
    with pytest.raises(ValueError, match="target 'asic'; allowed: xc7, ecp5"):
        HwConfig(target="asic")
    with pytest.raises(ValueError, match="clock_mhz"):
        HwConfig(clock_mhz=0)
    with pytest.raises(ValueError, match="dp must be a Datapath"):
        hw_cost("int-e4m1")
    with pytest.raises(ValueError, match="N must be an integer >= 1"):
        unit_costs(INT, N=0)


def test_dsp_threshold_override_moves_narrow_multipliers_to_dsps():
    default = unit_costs(INT, HwConfig(lanes=4), S=96, N=10, T=100, layer_index=5)
    yosys_like = unit_costs(INT, HwConfig(lanes=4, dsp_min=2), S=96, N=10, T=100, layer_index=5)
    # e4m1 x uq0.16: one 17-LUT adder per lane by default, one DSP per lane with dsp_min = 2
    assert default["multiplier"] == Cost(4 * 17, 4 * 18, 0)
    assert yosys_like["multiplier"] == Cost(0, 4 * 18, 4)
    e4m0 = dataclasses.replace(INT, weight_format="e4m0")
    assert unit_costs(e4m0, HwConfig(lanes=4, dsp_min=2), S=96, N=10, T=100)["multiplier"] == Cost()
    with pytest.raises(ValueError, match="dsp_min 0 out of range 1..64"):
        HwConfig(dsp_min=0)
