"""WeightDecoder (rtl/decoder.py) in Amaranth's simulator against fmt.decode_parts (==), every code."""
import pytest
from amaranth.sim import Simulator

from fixedpoint.datapath import PRESETS
from fixedpoint.formats import parse_format
from rtl.decoder import WeightDecoder, exp_range, reference, sig_bits
from sim.scoreboard import ScoreboardMismatch, check

# the presets' weight and h formats, scaled weight formats, z / d codes, fixed formats
FORMATS = sorted({PRESETS[p].weight_format for p in PRESETS} | {PRESETS[p].h_format for p in PRESETS}
                 | {"e4m1b17", "e4m0b12", "e3m2d", "e2m2z", "e6m4b40z", "e2m0", "e3m1b-2", "uq-4.8",
                    "uq2.3", "uq0.1"})


def decode_all(dut, codes):
    """(sig, exp) lists read from the combinational ports for each code."""
    sigs, exps = [], []

    async def tb(ctx):
        for c in codes:
            ctx.set(dut.code, c)
            sigs.append(ctx.get(dut.sig))
            exps.append(ctx.get(dut.exp))
    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    return sigs, exps


@pytest.mark.parametrize("text", FORMATS)
def test_every_code_matches_decode_parts(text):
    fmt = parse_format(text)
    dut = WeightDecoder(fmt)
    codes = [int(c) for c in fmt.all_codes()]
    sig, exp = decode_all(dut, codes)
    ref_sig, ref_exp = reference(fmt, codes)
    check(sig, ref_sig, dut.sig_bits, f"{text} sig")
    check(exp, ref_exp, len(dut.exp), f"{text} exp")
    assert (min(ref_exp), max(ref_exp)) == exp_range(fmt)  # ports exactly as wide as needed
    assert max(ref_sig) < (1 << sig_bits(fmt))


def test_zero_and_subnormal_codes():
    sig, exp = decode_all(WeightDecoder("e5m11z"), [0, 1, 0x800])
    assert sig == [0, 0x801, 0x800] and exp[1:] == [-42, -41]
    sig, exp = decode_all(WeightDecoder("e3m2d"), [0, 1, 3, 4])
    assert sig == [0, 1, 3, 4] and exp == [-8, -8, -8, -8]


def test_fault_flag_makes_the_check_fail():
    fmt = parse_format("e4m1")
    codes = [int(c) for c in fmt.all_codes()]
    sig, _ = decode_all(WeightDecoder(fmt, fault="flip_sig0"), codes)
    with pytest.raises(ScoreboardMismatch, match="first at index 3"):
        check(sig, reference(fmt, codes)[0], 2)


def test_bad_parameters():
    with pytest.raises(ValueError, match="signed"):
        WeightDecoder("sq1.6")
    with pytest.raises(ValueError, match="fault"):
        WeightDecoder("e4m1", fault="flip_exp9")
    with pytest.raises(ValueError, match="not a format"):
        WeightDecoder("e4x1")
