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
from sbs_model.hw_cycles import RNG_PERIOD, engine_latency, sampler_latency
from sbs_model.hw_cycles import spike_cycles as engine_spike_cycles

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
