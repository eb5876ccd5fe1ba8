"""Analytic hardware cost and latency of SbS engines built from a :class:`fixedpoint.datapath.Datapath`.

Organisation (as :class:`rtl.engine.IPEngine`): an *engine* holds one SbS layer (its weight ROM) and
processes one IP at a time with ``L`` lanes: per spike a dot pass (``B = ceil(N/L)`` beats of L
products into an adder tree and the accumulator), the normaliser, the reciprocal and coefficient,
then an update pass (``B`` beats).  Every SbS layer has ``engines`` engines working on different IPs.

Everything here is a formula on bit widths (no synthesis).  Units: LUTs of the target's size K
(LUT6 for ``xc7``, LUT4 for ``ecp5``), flip-flops (FF), DSP blocks, memory bits and block RAMs,
latency in clock cycles.  Building blocks (docs/cost-model.md lists every unit):

* ``adder_luts(w) = w``: one LUT per bit on the carry chain (CARRY4 / CCU2C); subtractors and
  comparators likewise.
* ``logic_luts(n) = ceil((n-1)/(K-1))``: a single-output function of ``n`` inputs as a LUT tree.
* ``shifter_luts(w, v) = w * ceil(ceil(log2 v) / j)``: a barrel shifter with ``v`` distinct shift
  amounts producing ``w`` bits, ``j`` mux stages per LUT (a 4:1 mux per LUT6, ``j = 2``; a 2:1 mux per
  LUT4, ``j = 1``).
* ``multiplier(a, b)``: on DSPs when both operands have at least ``target.dsp_min`` bits
  (``ceil(a/A)*ceil(b/B)`` blocks of ``A`` x ``B`` unsigned bits, best orientation); otherwise
  ``a - 1`` carry-chain adders of ``b + 1`` bits (each adder's LUTs also form the AND terms of its
  partial products); an operand ``1.m`` with a hidden one needs ``m`` adders, so ``e4m0`` weights need
  no multiplier (the product is a shift, done by the aligner) and ``e4m1`` one adder.
* memories: block RAMs ``max(ceil(bits / bram_bits), ceil(word_bits / bram_width))``; memories of at
  most ``lutram_max_bits`` bits go to LUT RAM (``ceil(bits / 2**K)`` LUTs).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from fixedpoint.bits import clog2, sig_bits
from fixedpoint.datapath import Datapath
from fixedpoint.formats import parse_format
from fixedpoint.rng import ROUNDS as RNG_ROUNDS
from sbs_model import layer_cycles as lc
from sbs_model.hw_cycles import RNG_PERIOD, engine_latency, sampler_latency
from sbs_model.hw_cycles import spike_cycles as engine_spike_cycles
from sbs_model.network_cycles import FMAP_BANK_WORDS, fmap_banks

FLOAT32_DIV_CYCLES = 26             # model-only float32 update: eps/r, one quotient bit per cycle


@dataclass(frozen=True)
class Target:
    """FPGA family: LUT inputs K, unsigned DSP multiplier ports A x B bits, the minimum operand width
    that goes to a DSP, bits and widest word of one block RAM, largest memory kept in LUT RAM."""

    name: str
    lut_inputs: int
    dsp_a: int
    dsp_b: int
    dsp_min: int
    bram_bits: int
    bram_width: int
    lutram_max_bits: int

    @property
    def mux_stages_per_lut(self) -> int:
        """Largest j with 2**j data + j select inputs <= K (LUT6: 2, LUT4: 1)."""
        j = 1
        while (1 << (j + 1)) + (j + 1) <= self.lut_inputs:
            j += 1
        return j


TARGETS = {
    # 7-series: LUT6, DSP48E1 25x18 signed = 24x17 unsigned, BRAM36 (36 kbit with parity, up to 72 bits wide)
    "xc7": Target("xc7", 6, 24, 17, 10, 36864, 72, 1024),
    # ECP5: LUT4, MULT18X18D (18x18 unsigned), EBR 18 kbit (up to 36 bits wide)
    "ecp5": Target("ecp5", 4, 18, 18, 10, 18432, 36, 512),
}


def get_target(target) -> Target:
    if isinstance(target, Target):
        return target
    if target not in TARGETS:
        raise ValueError(f"target {target!r}; allowed: {', '.join(TARGETS)}")
    return TARGETS[target]


@dataclass(frozen=True)
class Cost:
    """LUTs, flip-flops, DSP blocks, memory bits and block RAMs of one unit (or a sum of units)."""

    lut: int = 0
    ff: int = 0
    dsp: int = 0
    mem_bits: int = 0
    bram: int = 0

    def __add__(self, o: "Cost") -> "Cost":
        return Cost(*(a + b for a, b in zip(asdict(self).values(), asdict(o).values())))

    def __mul__(self, k: int) -> "Cost":
        return Cost(*(a * int(k) for a in asdict(self).values()))

    __rmul__ = __mul__


# ---------------------------------------------------------------------------- building blocks
def adder_luts(w: int) -> int:
    """A ``w``-bit adder/subtractor/comparator: one LUT per bit (carry chain)."""
    return max(int(w), 0)


def logic_luts(n_inputs: int, t: Target) -> int:
    """A single-output function of ``n_inputs`` inputs as a LUT tree: ceil((n-1)/(K-1))."""
    n = int(n_inputs)
    return 0 if n <= 1 else -(-(n - 1) // (t.lut_inputs - 1))


def shifter_luts(width: int, shift_values: int, t: Target) -> int:
    """Barrel shifter, ``width`` output bits, ``shift_values`` distinct shift amounts."""
    s = clog2(max(int(shift_values), 1))
    return int(width) * -(-s // t.mux_stages_per_lut)


def multiplier(a: int, b: int, t: Target, hidden_a: bool = False) -> Cost:
    """Unsigned ``a`` x ``b`` multiplier (``hidden_a``: a's top bit is a constant 1); output registered."""
    a, b = int(a), int(b)
    if hidden_a and a == 1:
        return Cost()                                   # 1 x b: a wire
    out = a + b
    if min(a, b) >= t.dsp_min:
        n = min(-(-a // t.dsp_a) * -(-b // t.dsp_b), -(-a // t.dsp_b) * -(-b // t.dsp_a))
        return Cost(0, out, n)
    if hidden_a:
        return Cost((a - 1) * (b + 1), out)
    a, b = min(a, b), max(a, b)
    if a == 1:
        return Cost(b, out)                             # AND gates
    return Cost((a - 1) * (b + 1), out)


def memory(bits: int, word_bits: int, t: Target) -> Cost:
    """A RAM/ROM of ``bits`` bits read ``word_bits`` at a time: LUT RAM when small, else block RAMs."""
    bits, word_bits = int(bits), int(word_bits)
    if bits <= 0:
        return Cost()
    if bits <= t.lutram_max_bits:
        return Cost(-(-bits // (1 << t.lut_inputs)), 0, 0, bits, 0)
    return Cost(0, 0, 0, bits, max(-(-bits // t.bram_bits), -(-word_bits // t.bram_width)))


def _exp_span(fmt) -> int:
    """Number of distinct exponents of a format's decode_parts (fixed point: 1)."""
    return 1 << fmt.exp_bits if fmt.kind == "float" else 1


def _decoder(fmt, t: Target) -> Cost:
    """Code -> (significand, exponent): fixed point is wiring; a float's hidden bit is the OR of the
    exponent field when there is a zero code (``z``/``d``); subnormals add an exponent fix-up adder."""
    if fmt.kind != "float":
        return Cost()
    lut = logic_luts(fmt.exp_bits, t) if (fmt.zero or fmt.subnormal) else 0
    if fmt.subnormal:
        lut += adder_luts(fmt.exp_bits)
    return Cost(lut)


def _value_bits(fmt) -> int:
    """Every value of ``fmt`` is below 2**value_bits (``fixedpoint.datapath.value_bits_nb``)."""
    if fmt.kind == "float":
        bias = fmt.bias if fmt.bias is not None else fmt.default_bias
        return (1 << fmt.exp_bits) - bias
    return fmt.width - fmt.frac_bits


def window_value_bits(dp: Datapath, layer_index: int) -> int:
    """Bits of one sampler-window value (``rtl.engine.window_value_width``): 8 for layer 0 (pixels),
    else those of ``floor(max h * 2**sampler_frac_bits)``."""
    if layer_index == 0:
        return 8
    H = parse_format(dp.h_format)
    top = int(H.to_fixed(np.array([H.n_codes - 1]), dp.sampler_frac_bits)[0])
    return max(1, top.bit_length())


# fp32 building blocks of the paper's float32 update (model-only; IEEE single, no subnormals)
def _fp32_mul(t: Target) -> Cost:
    """float32 multiply: 24x24 significand multiply, 9-bit exponent adder, normalise mux, round adder."""
    return multiplier(24, 24, t) + Cost(adder_luts(9) + 24 + adder_luts(24), 32)


def _fp32_add(t: Target) -> Cost:
    """float32 add: exponent compare, align shifter, 25-bit adder, leading-one detector, normalise
    shifter, round adder."""
    return Cost(adder_luts(8) + shifter_luts(24, 25, t) + adder_luts(25) + 25 + shifter_luts(24, 25, t)
                + adder_luts(24), 64)


@dataclass(frozen=True)
class HwConfig:
    """Organisation: ``lanes`` L (1..4096), ``engines`` per SbS layer (1..65536), ``clock_mhz``,
    ``target`` family, RNG ``rng_mode`` (``iterative``: one round per cycle, one draw per
    ``RNG_PERIOD`` cycles, as :class:`rtl.engine.IPEngine`; ``pipelined``: 20 unrolled rounds),
    ``dsp_min``: smallest operand width mapped to a DSP (None: the target's, 10; yosys' default
    ``synth_xilinx``/``synth_ecp5`` mapping puts multiplies of operands >= 2 bits on DSPs: use 2 to
    compare with it)."""

    lanes: int = 8
    engines: int = 1
    clock_mhz: float = 100.0
    target: str = "xc7"
    rng_mode: str = "iterative"
    dsp_min: int | None = None

    def __post_init__(self):
        for name, lo, hi in (("lanes", 1, 4096), ("engines", 1, 65536)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{name} {v!r} out of range {lo}..{hi}")
        if isinstance(self.clock_mhz, bool) or not isinstance(self.clock_mhz, (int, float)) \
                or not 0 < self.clock_mhz <= 2000:
            raise ValueError(f"clock_mhz {self.clock_mhz!r} out of range (0, 2000]")
        get_target(self.target)
        if self.rng_mode not in ("pipelined", "iterative"):
            raise ValueError(f"rng_mode {self.rng_mode!r}; allowed: pipelined, iterative")
        if self.dsp_min is not None and (isinstance(self.dsp_min, bool) or not isinstance(self.dsp_min, int)
                                         or not 1 <= self.dsp_min <= 64):
            raise ValueError(f"dsp_min {self.dsp_min!r} out of range 1..64 (or None: the target's)")

    def resolved_target(self) -> Target:
        """The target with ``dsp_min`` overridden when given."""
        t = get_target(self.target)
        return t if self.dsp_min is None else replace(t, dsp_min=int(self.dsp_min))


# ---------------------------------------------------------------------------- units of one engine
def unit_costs(dp: Datapath, hw: HwConfig = HwConfig(), S: int = 1024, N: int = 64, T: int = 1600,
               layer_index: int = 1) -> dict[str, Cost]:
    """Cost of every unit of one engine for a layer with window ``S``, ``N`` outputs, ``T`` spikes
    (lane units already multiplied by L).  Memories: weight ROM ``S*B`` words of ``L*w`` bits, h RAM
    ``B`` words of ``L*wh`` bits, schedule ROM ``T`` words, sampler ``S`` cumulative sums."""
    if not isinstance(dp, Datapath):
        raise ValueError(f"dp must be a Datapath, got {type(dp).__name__}")
    for name, v in (("S", S), ("N", N), ("T", T)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    t = hw.resolved_target()
    L = hw.lanes
    B = -(-N // L)
    W, H = dp.formats()
    I, F = dp.acc
    wacc = I + F
    a, b = sig_bits(W), sig_bits(H)                   # significand bits (float: m + 1, hidden one)
    hidden_w = W.kind == "float"
    pw = a + b if dp.prod_bits is None else min(a + b, int(dp.prod_bits))
    R = int(dp.norm_bits)
    Qb = int(dp.recip_bits)
    u = {}

    # decode + multiply (shared by the dot and the update pass: the RTL has one of each per pass)
    dec = _decoder(W, t) + _decoder(H, t)
    mul = multiplier(a, b, t, hidden_a=hidden_w)
    if pw < a + b and dp.prod_rounding != "trunc":
        mul = mul + Cost(adder_luts(pw))
    # 1.-2. decoders and multipliers of the dot pass, per lane
    u["decoder"] = dec * L
    u["multiplier"] = mul * L
    # 3. aligner: P shifted by exp_w + exp_h onto the accumulator grid (clamped span), per lane
    shifts = min(_exp_span(W) + _exp_span(H) - 1, wacc + pw + 1)
    out_w = min(wacc, pw + shifts - 1)
    both_float = W.kind == "float" and H.kind == "float"
    exp_add = adder_luts(max(W.exp_bits, H.exp_bits) + 1) if both_float else 0
    u["aligner"] = Cost(shifter_luts(out_w, shifts, t) + exp_add, out_w + 1) * L
    # 4. adder tree (L-1 registered adders of accumulator width) + accumulator (+ saturation)
    sat = wacc if dp.acc_overflow == "saturate" else 0
    u["adder_tree"] = Cost(adder_luts(wacc) * (L - 1), (wacc + 1) * (L - 1)) + \
        Cost(adder_luts(wacc) + sat, 2 * wacc + 1)
    # 5. normaliser: leading-one detector (tree of priority merges) + shifter to R bits, 2 stages
    lod = wacc + clog2(wacc) * logic_luts(max(wacc // 2, 1), t)
    u["normaliser"] = Cost(lod + shifter_luts(R, wacc + 1, t), wacc + clog2(wacc + 1) + R + 8)
    if dp.update == "int":
        # 6. reciprocal: div = restoring divider, one (R+1)-bit subtractor (restore mux merged on LUT6),
        #    quotient and remainder registers, rounding adder; nr = ROM + one Newton step per cycle
        if dp.recip_method == "div":
            per_bit = 1 if t.lut_inputs >= 6 else 2
            u["reciprocal"] = Cost(adder_luts(R + 1) * per_bit + adder_luts(Qb + 1) + adder_luts(clog2(Qb + 3)),
                                   (R + 1) + (Qb + 2) + (Qb + 1) + clog2(Qb + 3))
        else:
            u["reciprocal"] = (memory((1 << int(dp.lut_bits)) * (Qb + 1), Qb + 1, t) + multiplier(R, Qb + 1, t)
                               + multiplier(Qb + 1, Qb + 2, t) + Cost(adder_luts(R + Qb + 1), Qb + 1 + R))
        # 7. coefficient K = G_t * Y truncated to coef_bits (multiplier, leading-one, shifter), per engine
        gy = int(dp.g_bits) + Qb + 1
        u["coefficient"] = multiplier(int(dp.g_bits), Qb + 1, t) + Cost(
            gy + shifter_luts(int(dp.coef_bits), gy, t), int(dp.coef_bits) + int(dp.c_bits) + 8)
        # 8. update unit, per lane: decode + multiply again, C_t*h, K*P, K*P barrel shifter onto 2**-Fu,
        #    term clamps, sum, rounding into H with saturation; 3 register stages
        upd_w = int(dp.upd_frac_bits) + max(_value_bits(H), 1) + 1
        kp = int(dp.coef_bits) + pw
        lane = dec + mul + multiplier(int(dp.c_bits), b, t) + multiplier(int(dp.coef_bits), pw, t)
        lane = lane + Cost(shifter_luts(upd_w, min(shifts + Qb + R, kp + upd_w), t) + 2 * upd_w
                           + adder_luts(upd_w) + adder_luts(H.width) + H.width, 2 * upd_w + H.width)
        u["update"] = lane * L
        table_bits = int(dp.c_bits) + int(dp.g_bits)
    else:
        # paper (model-only): one float32 divide eps/r per spike (one quotient bit per cycle) and one
        # float32 multiply c*(eps/r); per lane two float32 multiplies, one float32 add, conversion into H
        u["reciprocal"] = Cost(adder_luts(26) * (1 if t.lut_inputs >= 6 else 2) + adder_luts(8), 26 + 26 + 8)
        u["coefficient"] = _fp32_mul(t)
        u["update"] = (dec + mul + _fp32_mul(t) * 2 + _fp32_add(t)
                       + Cost(shifter_luts(H.width, 1 << H.exp_bits if H.kind == "float" else 1, t)
                              + adder_luts(H.width) + H.width, H.width)) * L
        table_bits = 64
    # 9. memories: weight ROM (L codes per word), h RAM, schedule ROM (T x (Fc + Fg) bits)
    u["weight_rom"] = memory(S * B * L * W.width, L * W.width, t)
    u["h_ram"] = memory(B * L * H.width, L * H.width, t)
    u["schedule_rom"] = memory(T * table_bits, table_bits, t)
    # 10. sampler: cumulative sums (memory + adder), 32 x total multiplier, binary search compare/address
    vw = window_value_bits(dp, layer_index)
    cw = vw + clog2(S)
    steps = max(1, clog2(S))
    u["sampler"] = multiplier(32, cw, t) + memory(S * cw, cw, t) + Cost(
        adder_luts(cw) * 2 + adder_luts(steps + 1) * 2, 2 * cw + 32 + 3 * steps)
    # 11. RNG: Threefry-2x32-20 (add, rotate = wiring, xor); key injection every 4 rounds (2 adds)
    inj = RNG_ROUNDS // 4 + 1
    if hw.rng_mode == "pipelined":
        u["rng"] = Cost(RNG_ROUNDS * (adder_luts(32) + 32) + inj * 2 * adder_luts(32), RNG_ROUNDS * 64 + 128)
    else:
        rot = 32 * -(-clog2(8) // t.mux_stages_per_lut)   # 8 rotation constants: a 32-bit 8:1 mux per word
        u["rng"] = Cost(adder_luts(32) + 32 + 2 * rot + 2 * adder_luts(32) + 64,
                        64 + 64 + 32 + clog2(RNG_ROUNDS + 1))
    return u


# ---------------------------------------------------------------------------- latency
def _rtl_view(dp: Datapath) -> Datapath:
    """The datapath whose engine timing stands for ``dp``: itself for the ``int`` update; the paper's
    model-only float32 update as an ``int`` engine whose reciprocal takes FLOAT32_DIV_CYCLES (a
    restoring divider, one quotient bit per cycle)."""
    if dp.update == "int":
        return dp
    return Datapath(**{**Datapath.preset("int-e4m1").to_dict(), "recip_method": "div",
                       "recip_bits": FLOAT32_DIV_CYCLES - 2})


def spike_cycles(dp: Datapath, N: int, S: int, L: int) -> int:
    """Cycles of one accepted spike at one IP (:func:`sbs_model.hw_cycles.spike_cycles`; no overlap
    between spikes: the next dot product needs the new h)."""
    return int(engine_spike_cycles(_rtl_view(dp), int(N), int(S), int(L))["accepted"])


def ip_cycles(dp: Datapath, N: int, S: int, T: int, L: int, rng_mode: str = "iterative") -> int:
    """Cycles of one IP from the job to the last h code out, every spike accepted: the RTL engine's
    own cycle model :func:`sbs_model.hw_cycles.engine_latency` (window, first draw and index, T spikes, output; the
    iterative RNG's one draw per ``RNG_PERIOD`` cycles included).  ``pipelined`` RNG: a draw per cycle,
    so the spike loop never waits for draws (``S + 1 + 21 + sampler latency + T * spike + N``)."""
    v = _rtl_view(dp)
    if rng_mode == "pipelined":
        per = int(engine_spike_cycles(v, int(N), int(S), int(L))["accepted"])
        return int(S) + 1 + (RNG_ROUNDS + 1) + sampler_latency(S) + int(T) * per + int(N)
    return int(engine_latency(v, int(N), int(S), int(T), int(L)))


def latency(dp: Datapath, net, hw: HwConfig = HwConfig()) -> dict:
    """Cycles and milliseconds per image.  SbS layers one after another (each needs the previous
    layer's whole output); a layer's IPs spread over its ``engines`` (``ceil(IPs/engines)`` rounds);
    pooling layers stream their ``N*X*Y`` outputs through L lanes.  ``cycles_per_image`` is the
    latency of one image; ``interval_cycles`` the slowest layer (the image interval when layers run as a
    pipeline on their own engines, as they do: one engine holds one layer)."""
    per_layer = []
    shapes = net.shapes()
    for li, layer in enumerate(net.layers):
        N, X, Y = shapes[li]
        if layer.is_sbs:
            c = -(-(X * Y) // hw.engines) * ip_cycles(dp, N, layer.window, layer.spikes, hw.lanes, hw.rng_mode)
        else:
            c = -(-(N * X * Y) // hw.lanes)
        per_layer.append(c)
    total = sum(per_layer)
    f = hw.clock_mhz * 1e3  # cycles per ms
    return {"cycles_per_image": total, "cycles_per_layer": per_layer, "ms_per_image": total / f,
            "interval_cycles": max(per_layer), "interval_ms": max(per_layer) / f}


# ---------------------------------------------------------------------------- the whole network
def memory_bits(dp: Datapath, net) -> dict:
    """Weight memory of the network: ``weight_bits = sum S*N*w`` (w the weight format's width; sbspool
    weights are fixed and not stored), ``h_bits = sum N*wh`` (one IP's h per layer)."""
    W, H = dp.formats()
    shapes = net.weight_shapes()
    return {"weight_bits": sum(S * N for S, N in shapes.values()) * W.width,
            "h_bits": sum(N for _, N in shapes.values()) * H.width,
            "n_weights": sum(S * N for S, N in shapes.values())}


def hw_cost(dp: Datapath, net=None, hw: HwConfig = HwConfig()) -> dict:
    """Totals for ``hw.engines`` engines per SbS layer of ``net`` (default: one engine for a layer with
    S = 1024, N = 64, T = 1600): ``lut``, ``ff``, ``dsp``, ``bram``, ``mem_bits``, the per-unit breakdown
    summed over layers (``units``), the memories, and with ``net`` the latency (:func:`latency`)."""
    if not isinstance(dp, Datapath):
        raise ValueError(f"dp must be a Datapath, got {type(dp).__name__}")
    layers = []
    if net is None:
        layers.append(unit_costs(dp, hw))
    else:
        for li, layer in enumerate(net.layers):
            if layer.kind == "sbs":
                layers.append(unit_costs(dp, hw, layer.window, layer.out_channels, layer.spikes, li))
    units: dict[str, Cost] = {}
    for lu in layers:
        for k, c in lu.items():
            units[k] = units.get(k, Cost()) + c * hw.engines
    total = Cost()
    for c in units.values():
        total = total + c
    out = {"target": get_target(hw.target).name, "lanes": hw.lanes, "engines": hw.engines,
           "clock_mhz": hw.clock_mhz, "lut": total.lut, "ff": total.ff, "dsp": total.dsp, "bram": total.bram,
           "mem_bits": total.mem_bits, "units": {k: asdict(v) for k, v in units.items()}}
    if net is not None:
        out.update(memory_bits(dp, net))
        out.update(latency(dp, net, hw))
    return out


__all__ = ["Target", "TARGETS", "Cost", "HwConfig", "unit_costs", "memory_bits", "spike_cycles", "ip_cycles",
           "latency", "hw_cost", "multiplier", "memory", "shifter_luts", "logic_luts", "adder_luts", "clog2",
           "get_target", "window_value_bits"]


# ============================================================================ streaming layer engine
# The model of ``rtl.layer.engine.LayerEngine`` (E engine cores of P interleaved IPs, L lanes) and of
# the whole-network design ``rtl.network.top.NetworkAccelerator``, on ECP5 (docs/cost-model.md).
# Multipliers and block RAMs are counted exactly as Yosys ``synth_ecp5`` maps them (every ``*`` in
# the RTL whose operands both have >= 2 bits becomes ceil(a/18)*ceil(b/18) MULT18X18D after Yosys
# narrows constants; every memory goes through :func:`ecp5_memory`, an emulation of Yosys'
# ``memory_libmap`` choice between soft logic, TRELLIS_DPR16X4 LUT RAM and DP16KD/PDPW16KD).  LUT4
# and FF are structural counts per component times a per-component factor fitted to Yosys
# (``LAYER_FIT``; bench/bench_cost_calibration.py).  LUT4 counts LUT4 cells + 2 per CCU2C + 4 per
# TRELLIS_DPR16X4 (as ``sbs pnr`` reports Yosys LUTs; nextpnr's TRELLIS_COMB is the same kind).

# LUT4 and FF factors per component, fitted by bench/bench_cost_calibration.py on the training
# designs (their per-component Yosys numbers); None where the structural count is used as it is.
LAYER_FIT = {
    "upd": (0.704, 0.974), "dot": (0.603, 0.905), "norm": (1.014, 1.812), "recip": (0.997, 0.958),
    "coef": (0.289, 1.05), "sched": (1.0, 1.0), "gen": (1.105, 0.897), "loader": (0.994, 0.903),
    "core": (1.371, 1.176), "engine": (0.821, 0.839),
    # the scaled/cheap update lanes (fitted on the cheap-e4m1 layer-5 engine, L = 10: its update and dot
    # lanes together, the dot lanes at their own factor)
    "upd_scaled": (1.127, 1.042),
}
# nextpnr packs Yosys' LUT4s, carry cells and LUT RAMs into TRELLIS_COMB cells with some overhead:
# placed / Yosys LUT4 was 1.085, 1.100 and 1.083 for the three streaming layer engines placed so far
# (layer 5, L = 10, at three RTL versions; 1.037 .. 1.059 for the older one-IP engines); the device's
# LUT4 count is in TRELLIS_COMB units, so budgets use the estimate times this factor (FF, MULT18X18D
# and DP16KD were equal in Yosys and nextpnr)
NEXTPNR_LUT_FACTOR = 1.09

# ECP5 block RAM shapes the layer engine is built from (rtl.layer.core, rtl.layer.weight_rom use these)
HRAM_GROUP_BITS = 144  # the h RAM is split in groups of lanes at most this wide: 4 DP16KD (512 x 36)
ROM_SHAPES = ((1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))  # DP16KD with two read ports
ROM_BANK_DEPTH = 16384  # the deepest of them


def rom_slice_bits(depth: int) -> int:
    """Bits per weights-ROM slice: the widest two-read-port DP16KD shape at least ``depth`` deep (1
    beyond 16384 words)."""
    for d, w in ROM_SHAPES:
        if depth <= d:
            return w
    return 1

def ram_is_sliced(depth: int) -> bool:
    """Whether a one-write, one-read RAM of ``depth`` words is stored in bit slices
    (``rtl.layer.sliced_ram``): deeper than one 1024 x 18 block RAM, and no deeper than 16384 words."""
    return ROM_SHAPES[0][0] < int(depth) <= ROM_BANK_DEPTH


def ram_slice_bits(depth: int) -> int:
    """Bits per slice of a sliced RAM: the widest DP16KD shape at least ``depth`` deep."""
    return rom_slice_bits(depth)


def sliced_ram_cost(depth: int, width: int) -> "Cost":
    """Cost of ``rtl.layer.sliced_ram.SlicedRAM(width, depth)``: one block RAM per slice when sliced,
    else Yosys' mapping of the one memory."""
    if not ram_is_sliced(depth):
        return ecp5_memory(depth, width).cost()
    sb = ram_slice_bits(depth)
    out = Cost(0, 0, 0, 0, 0)
    for lo in range(0, int(width), sb):
        out = out + ecp5_memory(depth, min(sb, int(width) - lo), style="block").cost()
    return out


ECP5_BRAM = (("DP16KD", 14, (1, 2, 4, 9, 18), 128, None),        # name, abits, widths, cost, write width
             ("PDPW16KD", 14, (1, 2, 4, 9, 18, 36), 128, 36))
ECP5_BYTE = 9
DPR_COST = 4


@dataclass(frozen=True)
class MemMap:
    """How Yosys maps one memory on ECP5: ``kind`` (``block``, ``lutram``, ``logic``), block RAMs,
    LUT RAM cells, and the soft logic around them (LUT4, FF)."""

    kind: str
    bram: int
    dpr: int
    lut: int
    ff: int

    def cost(self) -> Cost:
        return Cost(self.lut + 4 * self.dpr, self.ff, 0, 0, self.bram)


def _rom_luts(words: int) -> int:
    """LUT4s of one output bit of a ROM of ``words`` words (a function of ceil(log2 words) inputs)."""
    a = clog2(max(int(words), 2))
    return max(1, 1 << max(0, a - 4))


def ecp5_memory(words: int, width: int, reads: int = 1, writes: int = 1, rom: bool = False,
                style: str | None = None) -> MemMap:
    """Yosys' choice for a memory of ``words`` x ``width`` bits with ``reads`` synchronous read ports
    and ``writes`` (0 or 1) write ports (``rom``: constant contents, no write port): the cheapest of
    soft logic (cost ``bits`` for a RAM, ``bits/16`` for a ROM, truncated), TRELLIS_DPR16X4 (16 x 4,
    cost 4 each; not for ROMs) and the block RAMs DP16KD (two read/write ports, 16K x 1 .. 1K x 18) and
    PDPW16KD (one read port, one 36-bit write port, .. 512 x 36), cost 128 each, as ``memory_libmap``
    computes it: per base width the blocks ``ceil(ranges * padded width / unit)`` (a write port pads
    the word to whole 9-bit bytes), replicated per extra read port; plus half a point per bit of the
    read multiplexer over address ranges and per write-enable range, two points per emulated feature
    (one per read port; six per write port for the read-old-data emulation of a block RAM, as
    observed: a 96 x 16 RAM goes to LUT RAM, an 88 x 23 one to a block RAM).  ``style="block"`` (the RTL's ``ram_style`` attribute): block RAM only."""
    words, width, reads, writes = int(words), int(width), int(reads), 0 if rom else int(writes)
    words = max(words, 2)
    bits = words * width
    best_kind, best_cost, best = "logic", int(bits / 16 if rom else bits), None
    if style == "block":
        best_cost = float("inf")
    cands = []
    for name, abits, dbits, unit_cost, wr_width in ECP5_BRAM:
        if name == "DP16KD":
            space = 2 - writes
            repl_port = -(-reads // space) if reads else 1
        else:
            repl_port = max(reads, 1)
        emu = reads + (6 * writes if reads else 0)
        for bw, unit in enumerate(dbits):
            if writes and wr_width is not None and unit < ECP5_BYTE:
                continue                                    # a 36-bit write port narrower than a byte
            eb = (ECP5_BYTE if ECP5_BYTE <= unit else unit) if writes else 1
            sw = -(-width // eb) * eb
            ranges = (words - 1) // (1 << (abits - bw)) + 1
            repl = -(-(ranges * sw) // unit)
            c = unit_cost * repl * repl_port + 0.5 * (ranges - 1) * width * reads
            c += 0.5 * ranges * writes if ranges > 1 else 0
            c += 2 * emu
            cands.append((c, "block", repl * repl_port, ranges))
    if not rom and writes <= 1 and style != "block":
        ranges = (words - 1) // 16 + 1
        repl = -(-(ranges * (-(-width // 4) * 4)) // 4)     # the word padded to whole 4-bit cells
        c = DPR_COST * repl * max(reads, 1) + 0.5 * (ranges - 1) * width * reads + (0.5 * ranges if ranges > 1 else 0)
        c += 2 * reads
        cands.append((c, "lutram", repl * max(reads, 1), ranges))
    for c in cands:
        if c[0] < best_cost and (best is None or c[0] < best[0]):
            best = c
    if best is None:
        if rom:
            return MemMap("logic", 0, 0, width * _rom_luts(words) * reads, width * reads)
        return MemMap("logic", 0, 0, width * words // 2 * reads + words, bits + width * reads)
    _, kind, n, ranges = best
    mux = (ranges - 1) * width * reads
    if kind == "block":
        return MemMap("block", n, 0, mux + (ranges if ranges > 1 and writes else 0), clog2(ranges) * reads)
    return MemMap("lutram", 0, n, mux + (ranges if ranges > 1 else 0), width * reads)


def ecp5_mults(a: int, b: int) -> int:
    """MULT18X18D blocks of an unsigned ``a`` x ``b`` multiply (Yosys mul2dsp: operands of 2..18 bits
    in one block, wider ones split into 18-bit parts; a 1-bit operand is an AND, no block)."""
    a, b = int(a), int(b)
    if min(a, b) < 2:
        return 0
    return -(-a // 18) * -(-b // 18)


def _const_mult(x_bits: int, k: int) -> int:
    """MULT18X18D of ``x * k`` for a constant ``k``: none for a power of two (a shift) or a 1-bit ``x``."""
    k = int(k)
    if k <= 1 or k & (k - 1) == 0:
        return 0
    return ecp5_mults(x_bits, k.bit_length())


def _adder(w) -> int:
    return max(int(w), 0)


def _shifter(width: int, amounts: int) -> int:
    """2:1 mux LUT4s of a barrel shifter with ``amounts`` shift amounts and ``width`` output bits."""
    return int(width) * clog2(max(int(amounts), 1))


def _signed_bits(lo: int, hi: int) -> int:
    """Width of the narrowest two's complement number holding every integer in [lo, hi]."""
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi < (1 << (n - 1))):
        n += 1
    return n


def layer_geometry(layer, in_shape) -> dict:
    """Window length S, IPs, input values and the loader's ROM coordinate width of one SbS layer
    (:func:`rtl.layer.window.geometry`)."""
    C, H, W = (int(v) for v in in_shape)
    ho, wo = layer.output_hw(H, W)
    (kh, kw), (sy, sx), (dly, dlx), (py, px) = layer.kernel, layer.stride, layer.dilation, layer.padding
    ip_vals = [v for oy in range(ho) for ox in range(wo)
               for v in (oy * sy - py, ox * sx - px, (oy * sy - py) * W + ox * sx - px)]
    s_vals = [v for c in range(C) for ky in range(kh) for kx in range(kw)
              for v in (ky * dly, kx * dlx, c * H * W + ky * dly * W + kx * dlx)]
    vals = ip_vals + s_vals
    n_in = C * H * W
    cs = _signed_bits(min(vals) - 1, max(vals) + 1 + max(H, W, n_in))

    def rom_bits(v):
        """Bits of a geometry ROM that are not the same in every word (Yosys drops constant bits):
        a field that is never negative needs the bits of its largest value, another all ``cs``."""
        return sum(cs if min(v[f::3]) < 0 else max(v[f::3]).bit_length() for f in range(3))
    return {"S": C * kh * kw, "n_ip": ho * wo, "n_in": n_in, "coord_bits": cs,
            "ip_rom_bits": rom_bits(ip_vals), "s_rom_bits": rom_bits(s_vals)}


def layer_engine_units(dp: Datapath, layer, in_shape, layer_index: int, lanes: int, engines: int = 1,
                       w_format=None, input_kind: str | None = None, fit: bool = True,
                       w_const_bits: tuple[int, int] = (0, 0), key_register: bool = True,
                       n_slots: int | None = None) -> dict[str, Cost]:
    """Cost of every component of one ``rtl.layer.engine.LayerEngine`` (ECP5), summed over its
    ``engines`` cores: ``upd`` (update lanes), ``dot`` (dot lanes, adder tree, accumulator), ``norm``,
    ``recip`` (pipelined divider), ``coef``, ``sched`` (schedule ROM), ``gen`` (Threefry pipe,
    sampler, window memories, spike FIFO), ``loader`` (window loader and its geometry ROMs),
    ``core`` (weights ROM, h / coefficient / spike-row RAMs, pass pipeline), ``engine`` (input RAM,
    output serialiser, wave control).  ``layer``: the :class:`sbs_model.network.LayerSpec`;
    ``in_shape``: its input ``(C, H, W)``; ``w_format``: the weight format (default: the datapath's
    ``weight_format``; the build's bias changes no width).  ``fit``: apply :data:`LAYER_FIT`.
    ``w_const_bits``: ``(zero, one)`` -- how many bits of the weight code are 0 (1) in every weight of
    the layer (:func:`weight_const_bits`; Yosys drops ROM bits that are the same in every word, so
    they decide whether the weights ROM needs one block RAM more; default none).  ``key_register``:
    the engine registers the job's spike key (64 flip-flops); ``False`` in the whole network, whose top
    holds the key (``LayerEngine(key_held=True)``).  ``n_slots``: the cores' slots P
    (:func:`sbs_model.layer_cycles.core_slots`; default the fewest the chain allows)."""
    if not isinstance(dp, Datapath):
        raise ValueError(f"dp must be a Datapath, got {type(dp).__name__}")
    if dp.update not in ("int", "scaled"):
        raise ValueError(f"layer engine cost: datapath update must be int or scaled, got {dp.update!r}")
    L, E = int(lanes), int(engines)
    geo = layer_geometry(layer, in_shape)
    S, n_ip, n_in = geo["S"], geo["n_ip"], geo["n_in"]
    N, T = int(layer.out_channels), int(layer.spikes)
    W = parse_format(w_format if w_format is not None else dp.weight_format)
    H = parse_format(dp.h_format)
    hw, ww = H.width, W.width
    a, b = sig_bits(W), sig_bits(H)
    pw = a + b
    I, F = dp.acc
    wacc = I + F
    R, Qb, Fc, Fg, cb, Fu = (int(dp.norm_bits), int(dp.recip_bits), int(dp.c_bits), int(dp.g_bits),
                             int(dp.coef_bits), int(dp.upd_frac_bits))
    B = lc.beats(N, L)
    P = lc.core_slots(N, L, Qb, n_slots)
    KS = clog2(S)
    sw = max(1, KS)
    if input_kind is None:
        input_kind = "pixels" if layer_index == 0 else "codes"
    vw = 8 if input_kind == "pixels" else window_value_bits(dp, max(1, layer_index))
    cw = vw + max(1, KS)
    e_span = (1 << W.exp_bits) if W.kind == "float" else 1          # weight exponents (h fixed point)
    cap = max(H.width - H.frac_bits, 0) + Fu                         # log2 of the update clamp
    scaled = dp.update == "scaled"
    # scaled update (estimated: no Yosys number yet): the lanes keep the last round's sums (X + 1 bits,
    # X = Fu - Fh + h width + j_max with j_max = 2 for the reference schedule) in the h memory; the
    # per-slot factor is j_t (2 bits) instead of C_t (Fc + 1 bits)
    X = Fu - H.frac_bits + hw + 2
    ow = max(X + 1, hw) if scaled else hw
    c_width = 2 if scaled else Fc + 1
    u: dict[str, Cost] = {}

    # product of a decoded h and w: shifted adds when the narrower significand has <= 4 bits
    narrow = min(a, b) <= 4
    prod_lut = (min(a, b) - 1) * (max(a, b) + 1) + max(a, b) if narrow else 0
    prod_dsp = 0 if narrow else ecp5_mults(a, b)
    dec_lut = 1 if W.kind == "float" else 0

    # ---- dot lanes: inputs, decode + product + shift amount, alignment, adder tree, accumulator
    span = min(e_span + 1, wacc + pw)
    lane = Cost(dec_lut + prod_lut + 8 + _shifter(wacc + 1, span) + 4,
                hw + ww + pw + clog2(span + 1) + wacc + 1, prod_dsp)
    tree_ff = 0
    n = L
    for _ in range(clog2(L)):
        n = -(-n // 2)
        tree_ff += n * (wacc + 1) + 2
    u["dot"] = lane * L + Cost(_adder(wacc) * (L - 1) + 2 * wacc + 4, tree_ff + 2 * (wacc + 1) + 4)

    # ---- update lanes
    if dp.update == "int":
        t1 = Fc + 1 + b
        t2 = cb + pw
        lane = Cost(dec_lut + prod_lut + 16 + _shifter(t2 + cap, cap + 1) + _shifter(t2, t2 + 1) + (t2 + cap)
                    + 2 * (cap + 1) + _adder(cap + 2) + _adder(cap + 2 - (Fu - H.frac_bits) + 1) + hw,
                    b + pw + 6 + t1 + t2 + 12 + (t1 - max(0, Fc + H.frac_bits - Fu)) + (t2 + cap)
                    + 2 * (cap + 1) + (cap + 2) + hw
                    + (Fc + 1 + cb) + (t1 + t2 + 12),  # C/K copy per lane; the products registered twice
                    prod_dsp + ecp5_mults(Fc + 1, b) + ecp5_mults(cb, pw))
        u["upd"] = lane * L + Cost(0, Fc + 1 + cb + 8)
    else:
        shift_add = cb <= 6
        kp_lut = (cb - 1) * (pw + cb) + pw if shift_add else 0
        kp_dsp = 0 if shift_add else ecp5_mults(cb, pw)
        t2 = cb + pw
        lane = Cost(dec_lut + prod_lut + kp_lut + 16 + _shifter(t2 + cap, cap + 1) + _shifter(t2, t2 + 1)
                    + (cap + 1) + 2 * (cap + 3) + _adder(cap + 4) + _adder(cap + 4 - (Fu - H.frac_bits)) + 2 * hw,
                    b + pw + 6 + t2 + 12 + b + (t2 + cap) + b + 2 * (cap + 3) + (cap + 4) + (cap + 4)
                    + (cap + 4),  # stage 7: the output registered once more
                    prod_dsp + kp_dsp)
        u["upd"] = lane * L + Cost(0, cb + 16)

    # ---- normaliser, reciprocal (Qb + 2 restoring stages + rounding), coefficient
    u["norm"] = Cost(wacc + clog2(wacc) * (wacc // 4) + _shifter(R, wacc + 1) + 2 * 8,
                     2 + wacc + clog2(wacc + 1) + R + 8)
    u["recip"] = Cost((Qb + 2) * (2 * (R + 1)) + _adder(Qb + 1) + 4,
                      sum((R + 1) + (i + 1) + R for i in range(Qb + 2)) + Qb + 1)
    if dp.update == "int":
        u["coef"] = Cost(2 * (Fg + Qb + 1) + _shifter(cb, Fg + Qb + 2 - cb) + 16,
                         Fg + Qb + 1 + 8 + 2 * (Fg + Qb + 1) + 8 + cb + 8, ecp5_mults(Fg, Qb + 1))
        sched = ecp5_memory(T, Fc + Fg, rom=True)
    else:
        u["coef"] = Cost(2 * (Fg + Qb + 1) + _shifter(cb, Fg + Qb + 2 - cb) + 16,
                         Fg + Qb + 1 + 8 + 2 * (Fg + Qb + 1) + 8 + cb + 8, ecp5_mults(Fg, Qb + 1))
        sched = ecp5_memory(T, Fg + 2, rom=True)
    u["sched"] = sched.cost()

    # ---- spike generator: Threefry (26 stages of the valid flag and the two state words; the key is read
    # from the generator's held key, plus five registers of key + s), sampler (target, KS search steps),
    # window memories, FIFO
    rng = Cost(20 * (32 + 32) + 5 * 3 * 32 + 32 + 8, 26 * (1 + 64) + 5 * 32)
    th = max(cw - 16, 0)
    smp_dsp = 2 * ecp5_mults(16, 16) + (2 * ecp5_mults(16, th) if th else 0) + _const_mult(32, S)
    fields = 2 + clog2(max(P, 2)) + cw + 2 * sw
    smp = Cost(33 + 50 + 32 + KS * (cw + 2 + sw) + 8,
               3 * (1 + 32 + clog2(max(P, 2))) + cw + 4 * 32 + 33 + 50 + 32 + KS * (3 * fields + 2 * cw + fields),
               smp_dsp)
    mem = ecp5_memory(P, cw).cost()
    for j in range(KS):
        mem = mem + sliced_ram_cost(P << (KS - 1 - j), cw)  # rtl.layer.sliced_ram
    depth = lc.spike_fifo_depth(lc.spikegen_latency(S))
    fifo = ecp5_memory(depth, sw).cost() + Cost(3 * clog2(depth) + 8, sw + 3 * clog2(depth) + 2)  # rtl.layer.index_fifo
    ctrl = Cost(2 * 24 + 3 * clog2(max(T, 2)) + 3 * clog2(depth + 1) + 16,
                64 + 24 + 24 + clog2(max(T, 2)) + 3 * clog2(max(P, 2)) + clog2(depth + 1) + 5,  # + pop_q
                # the FIFO's prime threshold (n_active * T) keeps 3 bits: no block when T is a multiple of 8
                0 if T % 8 == 0 else ecp5_mults(min(3, clog2(P + 1)), (T % 8).bit_length()))
    u["gen"] = rng + smp + mem + fifo + ctrl

    # ---- window loader: geometry ROMs, address adders, range checks, cumulative sum
    cs = geo["coord_bits"]
    roms = (ecp5_memory(n_ip, geo["ip_rom_bits"], rom=True).cost()
            + ecp5_memory(S, geo["s_rom_bits"], rom=True).cost())
    u["loader"] = roms + Cost(3 * _adder(cs) + 4 * cs + _adder(cw) + cw + 2 * clog2(max(n_ip, 2)) + 16,
                              2 * 3 * cs + 3 * (2 + clog2(max(P, 2)) + sw) + clog2(max(n_in, 2)) + 2 * cw + 16
                              + (2 + clog2(max(P, 2)) + sw) + vw)  # the input RAM's output registered as read

    # ---- core: memories, address arithmetic, pass pipeline delay lines
    ek = 8
    # weights ROM word: lanes holding a weight in every beat lose the code bits constant in the layer,
    # lanes that are padding (0) in the last beat only the constant-0 bits, lanes >= N everything
    c0, c1 = (int(v) for v in w_const_bits)
    n_full = N - (B - 1) * L if B > 1 else min(L, N)
    n_pad = L - n_full if B > 1 else 0
    wbits = n_full * (ww - c0 - c1) + n_pad * (ww - c0)
    # in bit slices (rtl.layer.weight_rom): slices of the widest two-port DP16KD shape as deep as the ROM, one
    # block RAM each (banks of 16384 words beyond that, with a bank multiplexer); the dot port's slices
    # registered next to their block RAMs
    rom_depth = S * B
    sbits = rom_slice_bits(min(rom_depth, ROM_BANK_DEPTH))
    nb = -(-rom_depth // ROM_BANK_DEPTH)
    wrom = Cost(0, 0, 0, wbits * rom_depth, nb * -(-wbits // sbits))
    wrom = wrom + Cost(2 * (nb - 1) * wbits + 3 * clog2(max(nb, 2)), nb * wbits + 3 * clog2(max(nb, 2)))
    # h RAM: ram_style block, split in groups of lanes up to 144 bits wide (rtl.layer.core.hram_groups),
    # each with its own read address register and write address delay line
    per = max(1, HRAM_GROUP_BITS // ow)
    groups = [min(per, L - j0) for j0 in range(0, L, per)]
    hram = Cost(0, 0, 0, 0, 0)
    for n in groups:
        hram = hram + ecp5_memory(P * B, n * ow, style="block").cost()
    ab = clog2(max(P * B, 2))
    hram = hram + Cost(len(groups) * ab, len(groups) * ab * (1 + lc.WRITE))
    cram = ecp5_memory(P, 1 + c_width + cb + ek, style="block").cost()
    sram = ecp5_memory(P, sw).cost()
    # row * B for the two weight reads (the h RAM address is a counter): constant multiplies, blocks
    # unless B is a power of two
    addr_dsp = 2 * _const_mult(sw, B)
    write = lc.WRITE
    dl = lc.dot_latency(L)
    tag = 4 + clog2(max(P, 2)) + clog2(max(B, 2))
    delay_ff = (2 * (L * hw + Fc + 1 + cb + ek) + 2 * L * ww + (write - 1) * (clog2(max(S * B, 2)) + tag + 12)
                + (dl + lc.NORM + Qb + 3 + lc.COEF) * (1 + clog2(max(P, 2)) + 12) + lc.COEF * (1 + Fc) + 16)
    u["core"] = wrom + hram + cram + sram + Cost(
        L * hw + 2 * _adder(clog2(max(S * B, 2))) + 3 * clog2(max(P * B, 2)) + clog2(T + 1) + 40,
        delay_ff + L * hw + Fc + 1 + cb + ek + 2 * sw + clog2(T + 1) + 16, addr_dsp)

    for k in list(u):
        u[k] = u[k] * E
    # ---- engine: input RAM (E read ports), serialiser, wave control, output address
    xram = ecp5_memory(n_in, vw, reads=E).cost()
    u["engine"] = xram + Cost(L * ow + E * L * ow + 4 * clog2(n_ip + E * P + 1) + E * 8 + 32,
                              L * ow + 64 * bool(key_register) + 2 * clog2(n_ip + E * P + 1) + clog2(max(n_in, 2))
                              + 16)
    if scaled:   # FinalScale on the output stream: U (ow bits, split at 18) times C_{T-1} (Fc + 2 bits)
        lo, hi = min(18, ow), max(ow - 18, 0)
        u["engine"] = u["engine"] + Cost(_adder(ow + Fc + 2) + _adder(hw + 2) + hw + 8,
                                         ow + lo + Fc + 2 + hi + Fc + 2 + ow + Fc + 2 + hw + 8,
                                         ecp5_mults(lo, Fc + 2) + ecp5_mults(hi, Fc + 2))
    if fit:
        for k, c in u.items():
            fl, ff = LAYER_FIT.get("upd_scaled" if (k == "upd" and scaled) else k, (1.0, 1.0))
            u[k] = Cost(int(round(c.lut * fl)), int(round(c.ff * ff)), c.dsp, c.mem_bits, c.bram)
    return u


def weight_const_bits(w_codes, width: int) -> tuple[int, int]:
    """``(zero, one)``: the number of bits of ``width``-bit codes that are 0, resp. 1, in every code."""
    ored, anded = 0, (1 << int(width)) - 1
    for c in np.asarray(w_codes, dtype=np.int64).ravel():
        ored |= int(c)
        anded &= int(c)
    return int(width) - bin(ored).count("1"), bin(anded).count("1")


def layer_engine_cost(dp: Datapath, layer, in_shape, layer_index: int, lanes: int, engines: int = 1,
                      w_format=None, input_kind: str | None = None, w_const_bits: tuple[int, int] = (0, 0)) -> dict:
    """Totals of :func:`layer_engine_units`: ``lut4``, ``ff``, ``mult18``, ``dp16kd`` and ``units``
    (per component, lists ``[lut4, ff, mult18, dp16kd]``); an estimate, not a synthesis result."""
    u = layer_engine_units(dp, layer, in_shape, layer_index, lanes, engines, w_format, input_kind,
                           w_const_bits=w_const_bits)
    tot = Cost()
    for c in u.values():
        tot = tot + c
    return {"lut4": tot.lut, "ff": tot.ff, "mult18": tot.dsp, "dp16kd": tot.bram,
            "units": {k: [c.lut, c.ff, c.dsp, c.bram] for k, c in u.items()}}


def pool_unit_cost(layer, in_shape, h_width: int) -> Cost:
    """``rtl.network.pool.PoolUnit``: geometry ROM (``n_out*k`` words: in-range flag + plane index) and
    its word register, counters, the window sum, the divide-by-k (a constant multiply; a shift for k a
    power of two), rounding (average) or compare (max), output address."""
    C, h, w = (int(v) for v in in_shape)
    ho, wo = layer.output_hw(h, w)
    k = layer.kernel[0] * layer.kernel[1]
    n_out, plane = ho * wo, h * w
    sw = int(h_width) + max(1, clog2(k))
    rom = ecp5_memory(n_out * k, 1 + clog2(max(plane, 2)), rom=True).cost()
    M = -(-(1 << (sw + clog2(k))) // k)
    dsp = _const_mult(sw, M) if layer.kind == "avgpool" else 0
    ctl = 3 * clog2(max(n_out * k, 2)) + 2 * clog2(max(C * plane, 2)) + 2 * clog2(max(C * n_out, 2))
    rom_q = 1 + clog2(max(plane, 2)) + 3 + clog2(max(C * plane, 2))  # the ROM word, flags, channel base
    return rom + Cost(ctl + 3 * _adder(sw) + int(h_width) + 16, ctl + 4 * sw + int(h_width) + 12 + rom_q, dsp)


def network_engine_cost(dp: Datapath, layer, in_shape, layer_index: int, lanes: int, engines: int,
                        w_const_bits: tuple[int, int] = (0, 0), n_slots: int | None = None) -> Cost:
    """One SbS layer's engine as the whole network builds it (``LayerEngine(key_held=True)``: no key
    register, the top holds the key): :func:`layer_engine_units` summed (``n_slots``: its P)."""
    tot = Cost()
    for c in layer_engine_units(dp, layer, in_shape, layer_index, lanes, engines, w_const_bits=w_const_bits,
                                key_register=False, n_slots=n_slots).values():
        tot = tot + c
    return tot


def network_units(net, dps: dict, plan: dict, w_const_bits: dict | None = None) -> dict[str, Cost]:
    """Cost of ``rtl.network.top.NetworkAccelerator`` per part: ``layer<i>`` (each SbS layer's
    :func:`network_engine_cost`; ``dps[i]`` its datapath, ``plan[i]`` ``{"lanes", "engines"}`` and
    optionally ``"slots"``),
    ``pool<i>`` (:func:`pool_unit_cost`), ``fmaps`` (one RAM per layer output, one write and one read
    port), ``top`` (feeders, pixel crop, scheduler, argmax, debug read mux).  ``w_const_bits``:
    ``{layer: (zero, one)}`` (:func:`weight_const_bits`) when the weights are known."""
    shapes, ins = net.shapes(), net.input_shapes()
    h_width = parse_format(dps[min(dps)].h_format).width
    out: dict[str, Cost] = {}
    for i, layer in enumerate(net.layers):
        if layer.is_sbs:
            out[f"layer{i}"] = network_engine_cost(dps[i], layer, ins[i], i, int(plan[i]["lanes"]),
                                                   int(plan[i]["engines"]), (w_const_bits or {}).get(i, (0, 0)),
                                                   plan[i].get("slots"))
        else:
            out[f"pool{i}"] = pool_unit_cost(layer, ins[i], h_width)
    fm = Cost()
    for c, x, y in shapes:  # rtl.network.fmap.FeatureMap: banks of FMAP_BANK_WORDS words, each with an output
        words = c * x * y   # register; the bank select pipeline, the write register and the output multiplexer
        nb = fmap_banks(words)
        for b in range(nb):
            fm = fm + ecp5_memory(min(FMAP_BANK_WORDS, words - b * FMAP_BANK_WORDS), h_width).cost()
        sel = clog2(max(nb, 2))
        fm = fm + Cost(nb * h_width // 2 if nb > 1 else 0, nb * h_width + 2 * sel)
    out["fmaps"] = fm
    n = len(net.layers)
    feeders = sum(2 * clog2(max(c * x * y, 2)) + 4 for i, (c, x, y) in enumerate(shapes[:-1])
                  if net.layers[i + 1].is_sbs)
    top = Cost(feeders + n * h_width + 2 * h_width + 64 + 3 * sum(clog2(max(c * x * y, 2)) for c, x, y in shapes),
               feeders + 64 + 2 * h_width + 16 + 2 * sum(clog2(max(c * x * y, 2)) for c, x, y in shapes)
               + 8 + 2  # the crop register: a pixel, its valid and the sticky `lost` flag
               + 64 + 1  # the job's key registered beside the job port and `key_take`
               + 64 * len(net.sbs_layers()))  # the spike key's copy beside each engine
    out["top"] = top
    return out


def network_cost(net, dps: dict, plan: dict, w_const_bits: dict | None = None) -> dict:
    """Totals of :func:`network_units`: ``lut4``, ``ff``, ``mult18``, ``dp16kd``, ``parts`` (per part,
    ``[lut4, ff, mult18, dp16kd]``); an estimate, not a synthesis result."""
    u = network_units(net, dps, plan, w_const_bits)
    tot = Cost()
    for c in u.values():
        tot = tot + c
    return {"lut4": tot.lut, "ff": tot.ff, "mult18": tot.dsp, "dp16kd": tot.bram,
            "parts": {k: [c.lut, c.ff, c.dsp, c.bram] for k, c in u.items()}}
