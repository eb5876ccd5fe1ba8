"""Analytic hardware cost and latency of one SbS engine built from a :class:`fixedpoint.datapath.Datapath`.

An *engine* processes one IP at a time with ``L`` lanes: per spike a dot pass (``ceil(N/L)`` cycles,
``L`` products per cycle into an adder tree), one normalisation, one reciprocal, then an update pass
(``ceil(N/L)`` cycles).  Several engines work on different IPs in parallel.

Everything here is a formula on bit widths (no synthesis).  Units: LUTs of the target's size K
(LUT6 for ``xc7``, LUT4 for ``ecp5``), flip-flops (FF), DSP blocks, memory in bits, latency in clock
cycles.  The formulas and their assumptions are listed in the README section "Hardware cost model";
the building blocks are:

* ``adder_luts(w) = w``: one LUT per bit on the carry chain (CARRY4 / CCU2C); subtractors and
  comparators likewise.
* ``logic_luts(n)``: a single-output function of ``n`` inputs as a LUT tree, ``ceil((n-1)/(K-1))``.
* ``shifter_luts(w, v)``: a barrel shifter with ``v`` distinct shift amounts producing ``w`` bits,
  ``s = ceil(log2 v)`` mux stages, ``j`` stages per LUT (``j = 2``: a 4:1 mux per LUT6; ``j = 1``:
  a 2:1 mux per LUT4): ``w * ceil(s / j)``.
* ``multiplier(a, b)``: ``a`` x ``b`` bits.  On a DSP when both operands have at least
  ``target.dsp_min`` bits (``ceil(a/A)*ceil(b/B)`` blocks of ``A`` x ``B`` unsigned bits, best
  orientation); otherwise ``a - 1`` carry-chain adders of ``b + 1`` bits (each adder's LUTs also form
  the AND terms of its partial products); an ``a``-bit operand with a hidden leading one (a float
  significand ``1.m``) needs ``m = a - 1`` adders, so ``e4m0`` weights need no multiplier at all
  (the product is a shift, done by the aligner) and ``e4m1`` one adder.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from fixedpoint.datapath import Datapath, _sig_bits

RNG_ROUNDS = 20


def clog2(n: int) -> int:
    """ceil(log2 n) for n >= 1 (0 for n = 1)."""
    return (int(n) - 1).bit_length()


@dataclass(frozen=True)
class Target:
    """FPGA family parameters: LUT inputs K, unsigned DSP multiplier ports A x B bits, the minimum
    operand width that goes to a DSP, bits of one block RAM."""

    name: str
    lut_inputs: int
    dsp_a: int
    dsp_b: int
    dsp_min: int
    bram_bits: int

    @property
    def mux_stages_per_lut(self) -> int:
        """Largest j with 2**j data + j select inputs <= K (LUT6: 2, LUT4: 1)."""
        j = 1
        while (1 << (j + 1)) + (j + 1) <= self.lut_inputs:
            j += 1
        return j


TARGETS = {
    # 7-series: LUT6, DSP48E1 25x18 signed = 24x17 unsigned, BRAM36 (36 kbit incl. parity)
    "xc7": Target("xc7", 6, 24, 17, 10, 36864),
    # ECP5: LUT4, MULT18X18D (unsigned mode 18x18), EBR 18 kbit
    "ecp5": Target("ecp5", 4, 18, 18, 10, 18432),
}


def get_target(target) -> Target:
    if isinstance(target, Target):
        return target
    if target not in TARGETS:
        raise ValueError(f"target {target!r}; allowed: {', '.join(TARGETS)}")
    return TARGETS[target]


@dataclass(frozen=True)
class Cost:
    """LUTs, flip-flops, DSP blocks and memory bits of one unit (or a sum of units)."""

    lut: int = 0
    ff: int = 0
    dsp: int = 0
    mem_bits: int = 0

    def __add__(self, o: "Cost") -> "Cost":
        return Cost(self.lut + o.lut, self.ff + o.ff, self.dsp + o.dsp, self.mem_bits + o.mem_bits)

    def __mul__(self, k: int) -> "Cost":
        return Cost(self.lut * k, self.ff * k, self.dsp * k, self.mem_bits * k)

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
    s = clog2(shift_values)
    return int(width) * -(-s // t.mux_stages_per_lut)


def multiplier(a: int, b: int, t: Target, hidden_a: bool = False) -> Cost:
    """Unsigned ``a`` x ``b`` multiplier (``hidden_a``: a's top bit is a constant 1); output registered."""
    a, b = int(a), int(b)
    out = a + b
    if min(a, b) >= t.dsp_min and not (hidden_a and a == 1):
        n = min(-(-a // t.dsp_a) * -(-b // t.dsp_b), -(-a // t.dsp_b) * -(-b // t.dsp_a))
        return Cost(0, out, n)
    if hidden_a:
        return Cost((a - 1) * (b + 1), out if a > 1 else 0, 0)
    if a > b:
        a, b = b, a
    if a == 1:
        return Cost(b, out, 0)  # AND gates
    return Cost((a - 1) * (b + 1), out, 0)


def _exp_span(fmt) -> int:
    """Number of distinct exponents of a format's decode_parts (fixed point: 1)."""
    return 1 << fmt.exp_bits if fmt.kind == "float" else 1


def _decoder(fmt, t: Target) -> Cost:
    """Code -> (significand, exponent): fixed point is wiring; a float's hidden bit is the OR of the
    exponent field when there is a zero code (``z``/``d``); subnormals add an exponent fix-up adder."""
    if fmt.kind != "float":
        return Cost()
    lut = 0
    if fmt.zero or fmt.subnormal:
        lut += logic_luts(fmt.exp_bits, t)
    if fmt.subnormal:
        lut += adder_luts(fmt.exp_bits)
    return Cost(lut, 0, 0)


def _value_bits(fmt) -> int:
    """Every value of ``fmt`` is below 2**value_bits (as in ``fixedpoint.datapath.value_bits_nb``)."""
    if fmt.kind == "float":
        bias = fmt.bias if fmt.bias is not None else fmt.default_bias
        return (1 << fmt.exp_bits) - bias
    return fmt.width - fmt.frac_bits


# fp32 building blocks of the paper's float32 update (IEEE single, no subnormals)
def _fp32_mul(t: Target) -> Cost:
    """float32 multiply: 24x24 significand multiply, 8-bit exponent adder, 1-bit normalise mux, round adder."""
    return multiplier(24, 24, t) + Cost(adder_luts(9) + 24 + adder_luts(24), 32, 0)


def _fp32_add(t: Target) -> Cost:
    """float32 add: exponent compare, align shifter, 25-bit adder, leading-one detector + normalise
    shifter, round adder."""
    lut = (adder_luts(8) + shifter_luts(24, 25, t) + adder_luts(25) + 25 + shifter_luts(24, 25, t)
           + adder_luts(24))
    return Cost(lut, 64, 0)


@dataclass(frozen=True)
class HwConfig:
    """Engine organisation: ``lanes`` L (1..4096), ``engines`` in parallel (1..65536), ``clock_mhz``,
    ``target`` family, RNG ``rng_mode`` (``pipelined``: 20 unrolled rounds, one draw per cycle;
    ``iterative``: one round per cycle)."""

    lanes: int = 8
    engines: int = 1
    clock_mhz: float = 100.0
    target: str = "xc7"
    rng_mode: str = "pipelined"

    def __post_init__(self):
        for name, lo, hi in (("lanes", 1, 4096), ("engines", 1, 65536)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{name} {v!r} out of range {lo}..{hi}")
        if not (isinstance(self.clock_mhz, (int, float)) and 0 < self.clock_mhz <= 2000):
            raise ValueError(f"clock_mhz {self.clock_mhz!r} out of range (0, 2000]")
        get_target(self.target)
        if self.rng_mode not in ("pipelined", "iterative"):
            raise ValueError(f"rng_mode {self.rng_mode!r}; allowed: pipelined, iterative")


# ---------------------------------------------------------------------------- units
def unit_costs(dp: Datapath, hw: HwConfig = HwConfig(), S_max: int = 1024, T_max: int = 1600) -> dict[str, Cost]:
    """Cost of every unit of one engine (lane units already multiplied by L).

    ``S_max``: the largest receptive field (sampler memory depth); ``T_max``: schedule table length.
    """
    t = get_target(hw.target)
    L = hw.lanes
    W, H = dp.formats()
    I, F = dp.acc
    wacc = I + F
    a = _sig_bits(W)                       # weight significand bits (float: m + 1 with hidden bit)
    b = _sig_bits(H)                       # h significand bits
    hidden_w = W.kind == "float"
    pw = a + b if dp.prod_bits is None else min(a + b, int(dp.prod_bits))
    R = int(dp.norm_bits)
    u = {}

    # 1. decoders (weights and h), per lane
    u["decoder"] = (_decoder(W, t) + _decoder(H, t)) * L
    # 2. multiplier sig_w x sig_h, per lane (+ product rounding adder when prod_bits < exact and not trunc)
    mul = multiplier(a, b, t, hidden_a=hidden_w) if not (hidden_w and a == 1) else Cost()
    if pw < a + b and dp.prod_rounding != "trunc":
        mul = mul + Cost(adder_luts(pw), 0, 0)
    u["multiplier"] = mul * L
    # 3. aligner: product shifted by exp_w + exp_h into the accumulator grid, per lane
    shifts = _exp_span(W) + _exp_span(H) - 1
    out_w = min(wacc, pw + shifts - 1)
    exp_add = adder_luts(max(W.exp_bits if W.kind == "float" else 0, H.exp_bits if H.kind == "float" else 0) + 1) \
        if (W.kind == "float" and H.kind == "float") else 0
    u["aligner"] = Cost(shifter_luts(out_w, shifts, t) + exp_add, out_w, 0) * L
    # 4. adder tree (L-1 adders of accumulator width, registered) + accumulator (+ saturation)
    sat = wacc if dp.acc_overflow == "saturate" else 0
    u["adder_tree"] = Cost(adder_luts(wacc) * (L - 1), wacc * (L - 1), 0) + Cost(adder_luts(wacc) + sat, wacc, 0)
    # 5. normaliser: leading-one detector over wacc bits + shifter to R bits
    lod = wacc + clog2(wacc) * logic_luts(max(wacc // 2, 1), t)
    u["normaliser"] = Cost(lod + shifter_luts(R, max(wacc - R + 1, 1), t), R + clog2(wacc + 1), 0)
    # 6. reciprocal / coefficient and 7. update unit
    Qb = int(dp.recip_bits)
    if dp.update == "int":
        if dp.recip_method == "div":
            per_bit = 1 if t.lut_inputs >= 6 else 2          # restore mux merged into the subtractor LUT6
            u["reciprocal"] = Cost(adder_luts(R + 2) * per_bit + adder_luts(Qb + 1) + adder_luts(clog2(Qb + 3)),
                                   (R + 2) + (Qb + 2) + clog2(Qb + 3), 0)
        else:
            rom = (Qb + 1) * max(1, 1 << max(int(dp.lut_bits) - t.lut_inputs, 0))
            it = int(dp.nr_iters)
            c = Cost(rom, Qb + 1, 0)
            for _ in range(it):
                c = c + multiplier(R, Qb + 1, t) + multiplier(Qb + 1, Qb + 1, t) + Cost(adder_luts(R + Qb + 1), 0, 0)
            u["reciprocal"] = c
        # coefficient K = G_t * Y (per engine)
        u["reciprocal"] = u["reciprocal"] + multiplier(int(dp.g_bits), Qb + 1, t)
        # per lane: C_t*h, K*P, alignment of K*P onto the 2**-Fu grid, sum, rounding into H (+ saturation)
        upd_w = int(dp.upd_frac_bits) + max(_value_bits(H), 1)
        lane = multiplier(int(dp.c_bits), b, t) + multiplier(int(dp.coef_bits), pw, t)
        lane = lane + Cost(shifter_luts(upd_w, shifts, t) + adder_luts(upd_w) + adder_luts(H.width) + H.width,
                           upd_w + H.width, 0)
        u["update"] = lane * L
        table_bits = int(dp.c_bits) + int(dp.g_bits)
    else:
        # paper: one float32 divide eps/r per spike (iterative, 1 bit per cycle) and float32 c*(eps/r);
        # per lane: two float32 multiplies and one float32 add, then conversion into H
        u["reciprocal"] = Cost(adder_luts(26) * (1 if t.lut_inputs >= 6 else 2) + adder_luts(8), 26 + 26 + 8, 0) \
            + _fp32_mul(t)
        u["update"] = (_fp32_mul(t) * 2 + _fp32_add(t) + Cost(adder_luts(H.width) + H.width, H.width, 0)) * L
        table_bits = 64
    # 8. schedule table ROM (T x (Fc + Fg) bits; float32 mode: eps32 and c32)
    u["schedule_rom"] = Cost(0, 0, 0, int(T_max) * table_bits)
    # 9. sampler: cumulative-sum memory, cumsum adder, 32 x total multiplier, comparator, search address
    vw = int(dp.sampler_frac_bits) + max(_value_bits(H), 0)
    vw = max(vw, 1)
    cw = vw + clog2(S_max)
    u["sampler"] = (multiplier(32, cw, t) + Cost(adder_luts(cw) * 2 + adder_luts(clog2(S_max) + 1),
                                               2 * cw + 32 + 2 * max(1, clog2(S_max)), 0, S_max * cw))
    # 10. RNG: Threefry-2x32-20 (add, rotate = wiring, xor); key injection every 4 rounds (2 adds)
    inj = RNG_ROUNDS // 4 + 1
    if hw.rng_mode == "pipelined":
        u["rng"] = Cost(RNG_ROUNDS * (adder_luts(32) + 32) + inj * 2 * adder_luts(32), RNG_ROUNDS * 64 + 64 * 2, 0)
    else:
        rot = 32 * (-(-clog2(8) // t.mux_stages_per_lut))   # 8 rotation constants: a 32-bit 8:1 mux
        u["rng"] = Cost(adder_luts(32) + 32 + rot + 2 * adder_luts(32) + 64, 64 + 64 + clog2(RNG_ROUNDS + 1), 0)
    return u


def memory_bits(dp: Datapath, net, lanes: int = 8) -> dict:
    """Weight and h memories of a network (every SbS layer's weights on chip, sbspool weights are fixed).

    ``weight_bits = sum S*N*w`` (w = weight format width); ``weight_bits_per_lane = sum S*ceil(N/L)*w``;
    ``h_bits_per_lane = ceil(N_max/L)*wh`` (the IP being updated); ``act_bits = sum N*X*Y*wh`` (every
    layer's output, the next layer's input)."""
    W, H = dp.formats()
    w, wh = W.width, H.width
    wb = lane = 0
    nmax = 0
    for li, (S, N) in net.weight_shapes().items():
        wb += S * N * w
        lane += S * -(-N // lanes) * w
        nmax = max(nmax, N)
    act = sum(c * x * y for c, x, y in net.shapes()) * wh
    return {"weight_bits": wb, "weight_bits_per_lane": lane, "h_bits_per_lane": -(-nmax // lanes) * wh,
            "act_bits": act, "n_weights": sum(S * N for S, N in net.weight_shapes().values())}


def spike_cycles(dp: Datapath, N: int, lanes: int) -> int:
    """Clock cycles of one spike at one IP (no overlap between consecutive spikes: the next dot product
    needs the updated h):

    dot pass ``ceil(N/L)`` + dot pipeline (decode 1, multiply 1, align 1, adder tree ``ceil(log2 L)``,
    accumulate 1) + normalise 2 + reciprocal (``div``: Qb + 2; ``nr``: 1 + 2*iters; float32: 26) +
    coefficient 1 + update pass ``ceil(N/L)`` + update pipeline 3."""
    L = int(lanes)
    p = -(-int(N) // L)
    dot_pipe = 4 + clog2(L)
    if dp.update == "int":
        recip = int(dp.recip_bits) + 2 if dp.recip_method == "div" else 1 + 2 * int(dp.nr_iters)
    else:
        recip = 26
    return p + dot_pipe + 2 + recip + 1 + p + 3


def ip_cycles(dp: Datapath, N: int, S: int, T: int, lanes: int) -> int:
    """Cycles of one IP: cumulative-sum load (S), first draw (sampler ``ceil(log2 S)`` + 1; later draws
    are computed ahead, they do not depend on h), h initialisation and write-back (2 ceil(N/L)), T spikes."""
    L = int(lanes)
    return int(S) + max(1, clog2(S)) + 1 + 2 * -(-int(N) // L) + int(T) * spike_cycles(dp, N, L)


def latency(dp: Datapath, net, hw: HwConfig = HwConfig()) -> dict:
    """Cycles and seconds per image: layers one after another; the IPs of a layer spread over
    ``hw.engines`` engines (``ceil(IPs/engines)`` rounds); pooling layers stream their output through
    the lanes (``ceil(N*X*Y/L)`` cycles)."""
    layers = []
    total = 0
    for li, layer in enumerate(net.layers):
        N, X, Y = net.shapes()[li]
        if layer.is_sbs:
            c = -(-(X * Y) // hw.engines) * ip_cycles(dp, N, layer.window, layer.spikes, hw.lanes)
        else:
            c = -(-(N * X * Y) // hw.lanes)
        layers.append(c)
        total += c
    return {"cycles_per_image": total, "cycles_per_layer": layers,
            "ms_per_image": total / (hw.clock_mhz * 1e3)}


def hw_cost(dp: Datapath, net=None, hw: HwConfig = HwConfig(), S_max: int | None = None,
            T_max: int | None = None) -> dict:
    """Totals for ``hw.engines`` engines of ``hw.lanes`` lanes: ``lut``, ``ff``, ``dsp``, ``bram``
    (block RAMs: every lane its own weight memory, plus activations), memory bits, per-unit breakdown
    of one engine, and (with ``net``) latency.  Without ``net``: S_max = 1024, T_max = 1600."""
    if not isinstance(dp, Datapath):
        raise ValueError(f"dp must be a Datapath, got {type(dp).__name__}")
    t = get_target(hw.target)
    if net is not None:
        S_max = S_max or max(l.window for l in net.layers if l.is_sbs)
        T_max = T_max or max(l.spikes for l in net.layers if l.is_sbs)
    S_max, T_max = S_max or 1024, T_max or 1600
    units = unit_costs(dp, hw, S_max, T_max)
    engine = Cost()
    for c in units.values():
        engine = engine + c
    total = engine * hw.engines
    out = {"target": t.name, "lanes": hw.lanes, "engines": hw.engines, "lut": total.lut, "ff": total.ff,
           "dsp": total.dsp, "logic_mem_bits": total.mem_bits,
           "units": {k: asdict(v) for k, v in units.items()}}
    if net is not None:
        mem = memory_bits(dp, net, hw.lanes)
        out.update(mem)
        per_lane = mem["weight_bits_per_lane"] + mem["h_bits_per_lane"]
        out["bram"] = hw.engines * (hw.lanes * -(-per_lane // t.bram_bits)) + -(-mem["act_bits"] // t.bram_bits)
        out.update(latency(dp, net, hw))
    return out


def float32_reference_weight_bits(net) -> int:
    """Weight memory of float32 weights (32 bits each)."""
    return 32 * sum(S * N for S, N in net.weight_shapes().values())


__all__ = ["Target", "TARGETS", "Cost", "HwConfig", "unit_costs", "memory_bits", "spike_cycles", "ip_cycles",
           "latency", "hw_cost", "multiplier", "shifter_luts", "logic_luts", "adder_luts", "clog2",
           "float32_reference_weight_bits", "get_target"]
