"""DotProduct (rtl/dot.py) in Amaranth's simulator against Datapath.dot / fixedpoint.accumulate (==)."""
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from fixedpoint.datapath import PRESETS, Datapath
from rtl.dot import DotProduct, beats_of, pack_codes, reference
from sim.scoreboard import ScoreboardMismatch, check
from sim.stream import amaranth_sink, amaranth_source, amaranth_timed_sink


def rows_for(dut, n_rows, seed):
    """Corner rows (all zero codes, all max codes, one non-zero element, max h x min w), then random."""
    H, W, N = dut.h_fmt, dut.w_fmt, dut.N
    rng = np.random.default_rng(seed)
    hmax, wmax = H.n_codes - 1, W.n_codes - 1
    hr = [[0] * N, [hmax] * N, [0] * (N - 1) + [hmax], [hmax] * N]
    wr = [[wmax] * N, [wmax] * N, [wmax] * N, [0] * N]
    while len(hr) < n_rows:
        hr.append(rng.integers(0, H.n_codes, N).tolist())
        wr.append(rng.integers(0, W.n_codes, N).tolist())
    return hr, wr


def run(dut, h_rows, w_rows, seed, idle=0.0, bp=0.0):
    """Send the rows as beats (masked lanes of the last beat hold random codes), collect results."""
    rng = random.Random(seed)
    H, W, L = dut.h_fmt, dut.w_fmt, dut.lanes
    hb = [pack_codes(b, H.width) for r in h_rows for b in beats_of(r, L, lambda: rng.randrange(H.n_codes))]
    wb = [pack_codes(b, W.width) for r in w_rows for b in beats_of(r, L, lambda: rng.randrange(W.n_codes))]
    got = []
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(amaranth_source(dut.h, hb, seed + 1, idle))
    sim.add_testbench(amaranth_source(dut.w, wb, seed + 2, idle))
    sim.add_testbench(amaranth_sink(dut.o, len(h_rows), got, seed + 3, bp))
    sim.run()
    return got


def assert_rows(dut, n_rows, seed, idle=0.25, bp=0.25, w_format=None):
    hr, wr = rows_for(dut, n_rows, seed)
    exp = reference(dut.dp, hr, wr, w_format)
    got = run(dut, hr, wr, seed, idle, bp)
    check(got, exp, dut.acc_width + 1, f"DotProduct N={dut.N} L={dut.lanes}")
    return exp


@pytest.mark.parametrize("preset,N,L", [
    ("paper", 50, 4), ("paper", 13, 1), ("paper-e4m0", 37, 16), ("paper-e4m4", 20, 8),
    ("int-e4m1", 29, 2), ("int-e4m1", 64, 16), ("int-e4m0", 10, 4), ("int-uq0.8", 23, 8),
])
def test_presets_random_rows_with_stalls(preset, N, L):
    dut = DotProduct(PRESETS[preset], N, L)
    exp = assert_rows(dut, 40 if N >= 20 else 80, 7)
    assert exp[0] == 0  # the all-zero h row


def acc_of(dut, packed):
    return [p & ((1 << dut.acc_width) - 1) for p in packed], [p >> dut.acc_width for p in packed]


@pytest.mark.parametrize("ovf", ["saturate", "wrap"])
@pytest.mark.parametrize("L", [1, 4])
def test_overflow_small_accumulator(ovf, L):
    """uq1.12 overflows on most random rows; weights e4m1b10 (up to 48) make single terms >= 2**13."""
    dp = Datapath(weight_format="e4m1b10", weight_scaling="none", h_format="uq0.16", acc_format="uq1.12",
                  acc_overflow=ovf)
    dut = DotProduct(dp, 11, L)
    acc, flag = acc_of(dut, assert_rows(dut, 80, 3))
    assert 0 < sum(flag) < len(flag)
    if ovf == "saturate":
        assert all(a == (1 << 13) - 1 for a, f in zip(acc, flag) if f)


@pytest.mark.parametrize("ovf", ["saturate", "wrap"])
def test_shift_beyond_the_register_is_overflow(ovf):
    """Weights e3m0b-2 (4 .. 512) times integer h: aligned shifts up to 11 > 8 register bits."""
    dp = Datapath(weight_format="e3m0b-2", weight_scaling="none", h_format="uq4.0", acc_format="uq6.2",
                  acc_overflow=ovf)
    dut = DotProduct(dp, 3, 2)
    hr = [[4, 0, 0], [0, 0, 1], [1, 1, 0], [15, 15, 15], [0, 0, 0]]
    wr = [[7, 7, 7], [6, 6, 6], [0, 0, 0], [0, 0, 0], [7, 7, 7]]
    got = run(dut, hr, wr, 2)
    assert got == reference(dp, hr, wr)
    assert acc_of(dut, got)[1] == [1, 1, 0, 1, 0]
    assert_rows(dut, 60, 4)


def test_saturate_order_independent_big_term_first_or_last():
    dp = Datapath(weight_format="e4m1b10", weight_scaling="none", acc_format="uq1.12")
    dut = DotProduct(dp, 5, 2)
    W = dut.w_fmt
    big = int(W.all_codes()[-1])
    hr = [[65535, 0, 0, 0, 0], [0, 0, 0, 0, 65535], [1, 1, 1, 1, 1]]
    wr = [[big, 0, 0, 0, 0], [0, 0, 0, 0, big], [0] * 5]
    got = run(dut, hr, wr, 1)
    assert got == reference(dp, hr, wr)
    assert acc_of(dut, got)[1] == [1, 1, 0]


@pytest.mark.parametrize("rounding", ["trunc", "rne", "rna"])
def test_prod_bits_rounding_and_subnormal_zero_formats(rounding):
    dp = Datapath(weight_format="e3m2d", weight_scaling="none", h_format="e4m3z", prod_bits=3,
                  prod_rounding=rounding, acc_format="uq3.12", acc_overflow="wrap")
    dut = DotProduct(dp, 9, 4)
    assert_rows(dut, 100, 11)


def test_terms_below_the_grid_give_zero():
    """F = 4: products of tiny weights truncate to 0 -> A == 0 rows."""
    dp = Datapath(weight_format="e4m1", weight_scaling="none", acc_format="uq4.4")
    dut = DotProduct(dp, 6, 4)
    acc, _ = acc_of(dut, assert_rows(dut, 80, 5))
    assert acc.count(0) > 3


def test_scaled_weight_format():
    dp = PRESETS["int-e4m1"]
    wf = dp.weight_format_for(np.array([0.01, 0.2, 0.3]))
    assert str(wf) != dp.weight_format
    dut = DotProduct(dp, 19, 4, w_format=wf)
    assert_rows(dut, 60, 13, w_format=wf)


@pytest.mark.parametrize("N,L", [(1, 1), (3, 8), (17, 16), (5, 5)])
def test_small_rows_and_masked_lanes(N, L):
    dut = DotProduct(PRESETS["int-e4m1"], N, L)
    assert dut.beats == -(-N // L)
    assert_rows(dut, 40, N * 100 + L)


def first_output_cycle(dut, beats_h, beats_w):
    """Cycles from the transfer of the last beat of a row to o.valid (cycle 0 = that transfer)."""
    res = {}

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        for bh, bw in zip(beats_h, beats_w):
            ctx.set(dut.h.payload.as_value(), bh)
            ctx.set(dut.w.payload.as_value(), bw)
            ctx.set(dut.h.valid, 1)
            ctx.set(dut.w.valid, 1)
            await ctx.tick().until(dut.h.ready)
        ctx.set(dut.h.valid, 0)
        ctx.set(dut.w.valid, 0)
        cycles = 1
        while not ctx.get(dut.o.valid):
            await ctx.tick()
            cycles += 1
        res["latency"] = cycles
        res["value"] = ctx.get(dut.o.payload.as_value())
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return res


@pytest.mark.parametrize("L", [1, 2, 4, 8, 16])
def test_latency_formula(L):
    dp = PRESETS["paper"]
    dut = DotProduct(dp, 20, L)
    hr, wr = rows_for(dut, 5, 1)
    hb = [pack_codes(b, 16) for b in beats_of(hr[4], L)]
    wb = [pack_codes(b, dut.w_fmt.width) for b in beats_of(wr[4], L)]
    res = first_output_cycle(dut, hb, wb)
    assert res["latency"] == dut.latency == 3 + (L - 1).bit_length()
    assert [res["value"]] == reference(dp, hr[4:], wr[4:])


@pytest.mark.parametrize("N,L", [(13, 4), (8, 8), (3, 1)])
def test_back_to_back_rows_one_row_per_ceil_n_over_l_cycles(N, L):
    dp = PRESETS["int-e4m1"]
    dut = DotProduct(dp, N, L)
    hr, wr = rows_for(dut, 12, 2)
    H, W = dut.h_fmt, dut.w_fmt
    beats = [(pack_codes(bh, H.width), pack_codes(bw, W.width))
             for h, w in zip(hr, wr) for bh, bw in zip(beats_of(h, L), beats_of(w, L))]
    seen = {}

    async def source(ctx):
        for bh, bw in beats:  # no idle cycles
            ctx.set(dut.h.payload.as_value(), bh)
            ctx.set(dut.w.payload.as_value(), bw)
            ctx.set(dut.h.valid, 1)
            ctx.set(dut.w.valid, 1)
            await ctx.tick().until(dut.h.ready)
        ctx.set(dut.h.valid, 0)
        ctx.set(dut.w.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(amaranth_timed_sink(dut.o, len(hr), seen))
    sim.run()
    check(seen["got"], reference(dp, hr, wr), dut.acc_width + 1)
    assert {b - a for a, b in zip(seen["cycles"], seen["cycles"][1:])} == {dut.beats}
    assert seen["cycles"][0] == dut.beats + dut.latency  # beat k transfers at edge k + 1


def test_fault_flag_makes_the_check_fail():
    dut = DotProduct(PRESETS["int-e4m1"], 12, 4, fault="flip_acc0")
    with pytest.raises(ScoreboardMismatch, match="first at index"):
        assert_rows(dut, 60, 21)


def test_bad_parameters():
    dp = PRESETS["int-e4m1"]
    with pytest.raises(ValueError, match="N must be"):
        DotProduct(dp, 0)
    with pytest.raises(ValueError, match="lanes must be"):
        DotProduct(dp, 10, 65)
    with pytest.raises(ValueError, match="Datapath"):
        DotProduct("int-e4m1", 10)
    with pytest.raises(ValueError, match="fault"):
        DotProduct(dp, 10, fault="x")
    with pytest.raises(ValueError, match="signed"):
        DotProduct(dp, 10, w_format="se4m1")
    with pytest.raises(ValueError, match="pack_codes"):
        pack_codes([70000], 16)
