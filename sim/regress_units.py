"""The registered ``sbs regress`` entries: unit x datapath x lanes, vectors, expected values.

Each unit registers a clean entry per (datapath, lanes) and one fault-injection entry (the unit
built with its ``fault=`` flag, which the regression must detect).  Vectors are drawn from the
entry's seed (:func:`sim.regress.entry_seed`) plus fixed corner cases; expected outputs come from
the units' model functions (``rtl.<unit>.reference``, i.e. ``fixedpoint``), so the testbenches
compare RTL with the model by ``==``.  Testbenches are the units' own ``sim/tb_<unit>.py``; a unit
whose testbench module is not importable yet is simply not registered.

Units: rng (pipelined, iterative), sampler, decoder (w and h formats), multiplier, dot (lanes 1,
4), normaliser, reciprocal, update (lanes 1, 4), engine (lanes 1, 4; plus a no-stall cycle-count
entry), engine-layer0/2/4 (--full: whole IPs of the shipped model's layers at T = 1600).
Datapaths: ``paper`` (the paper's formats of the weight/h/accumulator path; its float32
update is model-only, so reciprocal, update and engine are int-only) and ``int-e4m1`` (weights in
the scaled format of a layer with max |W| = :data:`W_MAX`), plus small exhaustive designs.  Units
without datapath parameters (the RNG) register under ``any``.  Designs never depend on the seed
(the engine's weights are fixed), so their builds are cached across seeds.
"""
from __future__ import annotations

import importlib.util
import random

from sim.regress import Entry, register

DATAPATHS = ("paper", "int-e4m1")
LANES = (1, 4)


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _dp(name: str):
    from fixedpoint.datapath import Datapath
    return Datapath.preset(name)


def _stalls(mode: str) -> dict:
    """Random idle cycles on inputs / back-pressure on outputs (the streams' protocol corners)."""
    return {"idle": 0.25, "backpressure": 0.25}


# ------------------------------------------------------------------------------ SpikeRandom

RNG_CORNERS = [(0, 0, 0, 0, 0), (0xFFFFFFFF, 0xFFFFFFFF, 255, (1 << 24) - 1, 0xFFFFFFFF),
               (1, 0, 0, 1, 0), (0, 1, 1, 0, 0xFFFFFFFF)]


def _rng_vectors(arch: str):
    def vectors(mode: str, seed: int):
        import numpy as np

        from fixedpoint.rng import ROUNDS, spike_random
        from rtl.rng import pack_request
        n = {"quick": 2000, "full": 50000}[mode] if arch == "pipelined" else \
            {"quick": 200, "full": 5000}[mode]
        rng = random.Random(seed)
        vecs = list(RNG_CORNERS)
        while len(vecs) < n:
            vecs.append((rng.getrandbits(32), rng.getrandbits(32), rng.randrange(256),
                         rng.randrange(1 << 24), rng.getrandbits(32)))
        a = np.array(vecs, dtype=np.uint64).T
        data = {"requests": [pack_request(*v) for v in vecs],
                "expected": [int(v) for v in spike_random(a[0], a[1], a[2], a[3], a[4])],
                "latency": ROUNDS if arch == "pipelined" else ROUNDS + 1, **_stalls(mode)}
        return data, n
    return vectors


def _rng_design(arch: str):
    def design(fault, mode):
        from rtl.rng import SpikeRandom
        return SpikeRandom(arch, fault=fault)
    return design


def _register_rng() -> None:
    for arch, unit, top in (("pipelined", "rng", "spike_random"),
                            ("iterative", "rng-iter", "spike_random_it")):
        for fault in (None, "flip_bit3") if arch == "pipelined" else (None,):
            register(Entry(unit=unit, datapath="any", lanes=1, toplevel=top, testbench="sim.tb_rng",
                           design=_rng_design(arch), vectors=_rng_vectors(arch), fault=fault,
                           # the back-to-back test checks the pipelined unit's 1 draw/cycle
                           testcase=None if arch == "pipelined" and not fault
                           else "random_stream_vs_model",
                           note=f"SpikeRandom({arch!r}) vs fixedpoint.rng.spike_random"))


# ------------------------------------------------------------------------------ SpikeSampler

SAMPLER_S = 32  # the reference network's first SbS layer has 32 neurons per window


def _sampler_params(dpname: str) -> tuple[int, int]:
    """(S, value_width): window values are ``floor(h * 2**sampler_frac_bits)`` <= 2**sfb."""
    return SAMPLER_S, int(_dp(dpname).sampler_frac_bits) + 1


def _sampler_vectors(dpname: str):
    def vectors(mode: str, seed: int):
        from rtl.sampler import reference
        S, vw = _sampler_params(dpname)
        vmax = (1 << vw) - 1
        rng = random.Random(seed)
        windows = [[0] * S, [vmax] * S, [vmax if i == S // 2 else 0 for i in range(S)],
                   [1 if i == S - 1 else 0 for i in range(S)]]
        n_windows = {"quick": 12, "full": 200}[mode]
        draws_per = {"quick": 40, "full": 100}[mode]
        while len(windows) < n_windows:
            kind = rng.randrange(3)
            if kind == 0:
                windows.append([rng.randrange(vmax + 1) for _ in range(S)])
            elif kind == 1:   # sparse: most of the mass in a few entries
                windows.append([rng.choice([0, 0, 0, rng.randrange(vmax + 1)]) for _ in range(S)])
            else:             # h-like: values summing to about 2**sfb
                windows.append([rng.randrange((vmax + 1) // S * 2) for _ in range(S)])
        jobs = []
        for w in windows:
            draws = [0, (1 << 32) - 1] + [rng.getrandbits(32) for _ in range(draws_per - 2)]
            jobs.append({"values": w, "draws": draws, "expected": reference(w, draws)})
        index_width = max(1, (S - 1).bit_length())
        data = {"jobs": jobs, "index_width": index_width, **_stalls(mode)}
        return data, sum(len(j["draws"]) for j in jobs)
    return vectors


def _sampler_design(dpname: str):
    def design(fault, mode):
        from rtl.sampler import SpikeSampler
        S, vw = _sampler_params(dpname)
        return SpikeSampler(S, vw, fault=fault)
    return design


def _register_sampler() -> None:
    for dpname in DATAPATHS:
        for fault in (None, "flip_bit0") if dpname == "int-e4m1" else (None,):
            register(Entry(unit="sampler", datapath=dpname, lanes=1, toplevel="spike_sampler",
                           testbench="sim.tb_sampler", design=_sampler_design(dpname),
                           vectors=_sampler_vectors(dpname), fault=fault,
                           note=f"SpikeSampler(S={SAMPLER_S}, sampler_frac_bits + 1) vs "
                                "fixedpoint.rng.sample_index_int"))


# ------------------------------------------------------------------------------ WeightDecoder

def _ident(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


#: max |W| of the layer whose scaled weight format the entries use (``dp.weight_format_for``):
#: e4m1 -> e4m1b20 for the int presets (per-layer ``max`` scaling); the paper's is unscaled
W_MAX = 1 / 32


def _w_format(dpname: str) -> str:
    """The weight format of a layer with max |W| = :data:`W_MAX` under ``dpname``."""
    import numpy as np
    return _dp(dpname).weight_format_for(np.array([W_MAX])).text


def _decoder_fmt(dpname: str, which: str) -> str:
    return _dp(dpname).h_format if which == "h" else _w_format(dpname)


def _decoder_vectors(dpname: str, which: str):
    def vectors(mode: str, seed: int):
        from rtl.decoder import WeightDecoder, reference
        fmt = _decoder_fmt(dpname, which)
        dut = WeightDecoder(fmt)
        dut._MustUse__silence = True
        n_codes = dut.fmt.n_codes
        if mode == "full" or n_codes <= 4096:
            codes = list(range(n_codes))
        else:  # quick: the first and last 256 codes plus random ones, shuffled
            rng = random.Random(seed)
            codes = list(range(256)) + list(range(n_codes - 256, n_codes))
            codes += rng.sample(range(256, n_codes - 256), 1500)
        random.Random(seed).shuffle(codes)
        sig, exp = reference(dut.fmt, codes)
        eb = dut.exp_shape.width
        data = {"codes": codes, "sig_bits": dut.sig_bits, "exp_bits": eb,
                "expected": [a | ((b & ((1 << eb) - 1)) << dut.sig_bits) for a, b in zip(sig, exp)]}
        return data, len(codes)
    return vectors


def _decoder_design(dpname: str, which: str):
    def design(fault, mode):
        from rtl.decoder import WeightDecoder
        return WeightDecoder(_decoder_fmt(dpname, which), fault=fault)
    return design


def _register_decoder() -> None:
    for dpname in DATAPATHS:
        for which in ("w", "h"):
            fmt = _decoder_fmt(dpname, which)
            for fault in (None, "flip_sig0") if (dpname, which) == ("int-e4m1", "w") else (None,):
                register(Entry(unit=f"decoder-{which}", datapath=dpname, lanes=1,
                               toplevel=f"weight_decoder_{_ident(fmt)}" if not fault
                               else "weight_decoder_fault",
                               testbench="sim.tb_decoder", design=_decoder_design(dpname, which),
                               vectors=_decoder_vectors(dpname, which), fault=fault,
                               note=f"WeightDecoder({fmt!r}) vs decode_parts (full: every code)"))


# ------------------------------------------------------------------------------ ApproxMultiplier

#: a small multiplier that exercises prod_bits rounding (rne ties, carries): every code pair
SMALL_MUL = ("e3m2d", "e2m3", 3, "rne")


def _mul_dut(dpname: str, fault=None):
    from rtl.multiplier import ApproxMultiplier
    if dpname == "small":
        return ApproxMultiplier(*SMALL_MUL, fault=fault)
    return ApproxMultiplier.from_datapath(_dp(dpname), _w_format(dpname), fault=fault)


def _mul_vectors(dpname: str):
    def vectors(mode: str, seed: int):
        import itertools

        import numpy as np

        from rtl.multiplier import reference
        dut = _mul_dut(dpname)
        dut._MustUse__silence = True
        H, W = dut.h_fmt, dut.w_fmt
        if dpname == "small":
            pairs = list(itertools.product(range(H.n_codes), range(W.n_codes)))
        else:  # corner codes crossed, then random pairs
            n = {"quick": 2000, "full": 40000}[mode]
            ch = sorted({0, 1, 2, H.n_codes - 1, H.n_codes // 2, H.n_codes // 2 - 1})
            cw = sorted({0, 1, 2, W.n_codes - 1, W.n_codes // 2, W.n_codes // 2 - 1})
            pairs = list(itertools.product(ch, cw))
            rng = np.random.default_rng(seed)
            pairs += list(zip(rng.integers(0, H.n_codes, n - len(pairs)).tolist(),
                              rng.integers(0, W.n_codes, n - len(pairs)).tolist()))
        random.Random(seed).shuffle(pairs)
        h = [a for a, _ in pairs]
        w = [b for _, b in pairs]
        sh, eh = H.decode_parts(h)
        sw, ew = W.decode_parts(w)
        ehb, ewb = len(dut.exp_h), len(dut.exp_w)
        vecs = [[int(a), int(b) & ((1 << ehb) - 1), int(c), int(d) & ((1 << ewb) - 1)]
                for a, b, c, d in zip(sh, eh, sw, ew)]
        P, E = reference(H, W, h, w, dut.prod_bits, dut.prod_rounding)
        eb = dut.exp_shape.width
        data = {"vectors": vecs, "p_bits": dut.prod_width, "e_bits": eb,
                "expected": [p | ((e & ((1 << eb) - 1)) << dut.prod_width) for p, e in zip(P, E)]}
        return data, len(vecs)
    return vectors


def _mul_design(dpname: str):
    def design(fault, mode):
        return _mul_dut(dpname, fault)
    return design


def _register_multiplier() -> None:
    for dpname in DATAPATHS + ("small",):
        label = dpname if dpname != "small" else "{}x{}-p{}{}".format(*SMALL_MUL)
        for fault in (None, "flip_p0") if dpname == "int-e4m1" else (None,):
            register(Entry(unit="multiplier", datapath=label, lanes=1,
                           toplevel=("multiplier_rne3" if dpname == "small" else f"multiplier_{_ident(dpname)}")
                           if not fault else "multiplier_fault",
                           testbench="sim.tb_multiplier", design=_mul_design(dpname),
                           vectors=_mul_vectors(dpname), fault=fault,
                           note="ApproxMultiplier vs fixedpoint.product" +
                                (" (every code pair, prod_bits rounding)" if dpname == "small" else "")))


# ------------------------------------------------------------------------------ DotProduct

DOT_N = 27  # not a multiple of 4: the last beat of a row has masked lanes


def _dot_dut(dpname: str, lanes: int, fault=None):
    from rtl.dot import DotProduct
    return DotProduct(_dp(dpname), DOT_N, lanes, w_format=_w_format(dpname), fault=fault)


def _dot_vectors(dpname: str, lanes: int):
    def vectors(mode: str, seed: int):
        import numpy as np

        from rtl.dot import beats_of, pack_codes, reference
        dut = _dot_dut(dpname, lanes)
        dut._MustUse__silence = True
        dp, H, W, N = dut.dp, dut.h_fmt, dut.w_fmt, DOT_N
        rows = {"quick": 60, "full": 2000}[mode]
        rng = np.random.default_rng(seed)
        prng = random.Random(seed)
        hr = [[0] * N, [H.n_codes - 1] * N, [0] * (N - 1) + [H.n_codes - 1], list(dp.initial_h(N))]
        wr = [[W.n_codes - 1] * N] * 3 + [rng.integers(0, W.n_codes, N).tolist()]
        while len(hr) < rows:
            if len(hr) % 2:   # any codes: overflow, wrap/saturate, extreme exponents
                h = rng.integers(0, H.n_codes, N)
            else:             # h-like: a random distribution over N, as the update produces
                p = rng.dirichlet(np.full(N, 0.3))
                h = H.encode(p, dp.h_rounding, "saturate")
            hr.append([int(c) for c in h])
            wr.append(rng.integers(0, W.n_codes, N).tolist())

        def beats(rs, fmt):
            return [pack_codes(b, fmt.width) for r in rs
                    for b in beats_of(r, lanes, lambda: prng.randrange(fmt.n_codes))]
        data = {"h_beats": beats(hr, H), "w_beats": beats(wr, W),
                "expected": reference(dp, hr, wr, W),
                "acc_width": dut.acc_width, "beats": dut.beats, "latency": dut.latency,
                **_stalls(mode)}
        return data, rows * N
    return vectors


def _dot_design(dpname: str, lanes: int):
    def design(fault, mode):
        return _dot_dut(dpname, lanes, fault)
    return design


def _register_dot() -> None:
    for dpname in DATAPATHS:
        for lanes in LANES:
            faults = (None, "flip_acc0") if (dpname, lanes) == ("int-e4m1", 4) else (None,)
            for fault in faults:
                register(Entry(unit="dot", datapath=dpname, lanes=lanes,
                               toplevel=f"dot_{_ident(dpname)}_l{lanes}" if not fault else "dot_fault",
                               testbench="sim.tb_dot", design=_dot_design(dpname, lanes),
                               vectors=_dot_vectors(dpname, lanes), fault=fault,
                               testcase="random_rows_vs_model" if fault else None,
                               note=f"DotProduct(N={DOT_N}, w {_w_format(dpname)}) decode, multiply, "
                                    "align, accumulate vs Datapath.dot; vectors = products"))


# ------------------------------------------------------------------------------ Normaliser

#: a small accumulator for the exhaustive normaliser entry (every one of its 2**12 inputs)
SMALL_NORM = ("uq2.10", 8)


def _norm_dp(dpname: str):
    if dpname == "small":
        from fixedpoint.datapath import Datapath
        return Datapath(acc_format=SMALL_NORM[0], norm_bits=SMALL_NORM[1])
    return _dp(dpname)


def _norm_vectors(dpname: str):
    def vectors(mode: str, seed: int):
        from rtl.normaliser import Normaliser, reference
        dut = Normaliser(_norm_dp(dpname))
        dut._MustUse__silence = True
        w = dut.acc_width
        rng = random.Random(seed)
        if dpname == "small":
            values = list(range(1 << w))
            rng.shuffle(values)
        else:  # 0, 1, all ones, each single bit, then random values of random bit length
            n = {"quick": 2000, "full": 50000}[mode]
            values = [0, 1, (1 << w) - 1] + [1 << k for k in range(w)]
            while len(values) < n:
                b = rng.randint(1, w)
                values.append(rng.getrandbits(b) | (1 << (b - 1)))
        data = {"values": values, "expected": reference(dut.dp, values),
                "out_width": dut.norm_bits + dut.exp_shape.width + 1, "latency": dut.latency,
                **_stalls(mode)}
        return data, len(values)
    return vectors


def _norm_design(dpname: str):
    def design(fault, mode):
        from rtl.normaliser import Normaliser
        return Normaliser(_norm_dp(dpname), fault=fault)
    return design


def _register_normaliser() -> None:
    for dpname in DATAPATHS + ("small",):
        for fault in (None, "flip_sig0") if dpname == "int-e4m1" else (None,):
            register(Entry(unit="normaliser",
                           datapath=dpname if dpname != "small" else f"{SMALL_NORM[0]}-R{SMALL_NORM[1]}",
                           lanes=1,
                           toplevel=f"normaliser_{_ident(dpname)}" if not fault else "normaliser_fault",
                           testbench="sim.tb_normaliser", design=_norm_design(dpname),
                           vectors=_norm_vectors(dpname), fault=fault,
                           testcase="random_values_vs_model" if fault else None,
                           note="Normaliser vs fixedpoint.normalise" +
                                (" (every input)" if dpname == "small" else "")))


# ------------------------------------------------------------------------------ Reciprocal

#: int-only (the paper's float32 update is model-only): the preset's ``div``, its ``nr`` variant
#: and a small ``div`` datapath checked on every input in both modes
RECIP_DATAPATHS = {"int-e4m1": {}, "int-e4m1-nr": {"recip_method": "nr"},
                   "R10-Qb10": {"norm_bits": 10, "recip_bits": 10}}


#: toplevel names (the same Verilog as tests/test_sim_reciprocal.py's designs: shared builds)
RECIP_TOPS = {"int-e4m1": "reciprocal_div", "int-e4m1-nr": "reciprocal_nr", "R10-Qb10": "reciprocal_r10"}


def _recip_dp(label: str):
    import dataclasses
    return dataclasses.replace(_dp("int-e4m1"), **RECIP_DATAPATHS[label])


def _recip_vectors(label: str):
    def vectors(mode: str, seed: int):
        from rtl.reciprocal import reference
        dp = _recip_dp(label)
        R = int(dp.norm_bits)
        rng = random.Random(seed)
        if label == "R10-Qb10" or mode == "full":  # every input: 0 and every normalised sig_r
            xs = [0] + list(range(1 << (R - 1), 1 << R))
            rng.shuffle(xs)
        else:
            xs = [0, 1 << (R - 1), (1 << R) - 1] + [rng.randrange(1 << (R - 1), 1 << R)
                                                     for _ in range(400)]
        data = {"inputs": xs, "expected": reference(dp, xs), "y_width": int(dp.recip_bits) + 1,
                **_stalls(mode)}
        return data, len(xs)
    return vectors


def _recip_design(label: str):
    def design(fault, mode):
        from rtl.reciprocal import Reciprocal
        return Reciprocal(_recip_dp(label), fault=fault)
    return design


def _register_reciprocal() -> None:
    for label in RECIP_DATAPATHS:
        for fault in (None, "flip_bit0") if label == "int-e4m1" else (None,):
            register(Entry(unit="reciprocal", datapath=label, lanes=1,
                           toplevel=RECIP_TOPS[label] if not fault else "reciprocal_fault",
                           testbench="sim.tb_reciprocal", design=_recip_design(label),
                           vectors=_recip_vectors(label), fault=fault,
                           note="Reciprocal vs fixedpoint.reciprocal" +
                                (" (every input)" if label == "R10-Qb10" else " (full: every input)")))


# ------------------------------------------------------------------------------ UpdateUnit

UPDATE_N = 10  # h elements per spike (not a multiple of 4: padded lanes in the last beat)
UPDATE_DP = "int-e4m1"


def _update_dut(lanes: int, fault=None):
    from rtl.update import UpdateUnit
    return UpdateUnit(_dp(UPDATE_DP), _w_format(UPDATE_DP), lanes, fault=fault)


def _update_vectors(lanes: int):
    def vectors(mode: str, seed: int):
        from fixedpoint.formats import parse_format
        from fixedpoint.reciprocal import reciprocal
        from rtl.update import exp_r_range
        from rtl.update import reference as update_reference
        dp = _dp(UPDATE_DP)
        w_fmt = _w_format(UPDATE_DP)
        dut = _update_dut(lanes)
        dut._MustUse__silence = True
        H, W = parse_format(dp.h_format), parse_format(w_fmt)
        T = 1600
        tab = dp.tables(T)
        R, L, N = int(dp.norm_bits), lanes, UPDATE_N
        lo, hi = exp_r_range(dp)
        rng = random.Random(seed)
        n_spikes = {"quick": 60, "full": 3000}[mode]
        spikes = []
        for k in range(n_spikes):
            h = [rng.choice([0, H.n_codes - 1, rng.randrange(H.n_codes), rng.randrange(1 << 12)])
                 for _ in range(N)]
            w = [rng.randrange(W.n_codes) for _ in range(N)]
            t = rng.choice([0, 1, T - 1, rng.randrange(T)])
            sig = rng.randrange(1 << (R - 1), 1 << R)
            er = rng.choice([lo, hi, rng.randrange(lo, hi + 1)])
            Y = int(reciprocal(sig, R, dp.recip_bits, dp.recip_method, dp.recip_rounding, dp.lut_bits,
                               dp.nr_iters))
            C, G = int(tab.C[t]), int(tab.G[t])
            pad = (-N) % L
            # lanes past N compute on padding (code 0); their model is the update of h = 0
            _, _, codes = update_reference(dp, w_fmt, h + [0] * pad, w + [0] * pad, C, G, Y, er)
            spikes.append({"coef": dut.pack_coef(C, G, Y, er),
                           "beats": [dut.pack_beat(h[i:i + L], w[i:i + L]) for i in range(0, N, L)],
                           "expected": [dut.pack_beat(codes[i:i + L], []) for i in range(0, N + pad, L)]})
        data = {"spikes": spikes, "width": L * H.width, **_stalls(mode)}
        return data, n_spikes * N   # vectors = h elements updated
    return vectors


def _update_design(lanes: int):
    def design(fault, mode):
        return _update_dut(lanes, fault)
    return design


def _register_update() -> None:
    for lanes in LANES:
        for fault in (None, "flip_bit0") if lanes == 4 else (None,):
            register(Entry(unit="update", datapath=UPDATE_DP, lanes=lanes,
                           toplevel=f"update_l{lanes}" if not fault else "update_l4_fault",
                           testbench="sim.tb_update", design=_update_design(lanes),
                           vectors=_update_vectors(lanes), fault=fault,
                           note=f"UpdateUnit (w {_w_format(UPDATE_DP)}) vs rtl.update.reference "
                                "(fixedpoint.update); vectors = h elements"))


# ------------------------------------------------------------------------------ IPEngine

#: (S, N, T, IPs) per mode: quick = a small layer (the engine's own test layer), full = whole IPs
#: of the reference network's layer-5 shape (S = 96, N = 10) at T = 1600
ENGINE_SHAPES = {"quick": (12, 10, 40, 4), "full": (96, 10, 1600, 3)}
ENGINE_DP = "int-e4m1"  # the engine needs the int update (the paper's float32 update is model-only)


def _engine_weights(S: int, N: int):
    """Fixed (seed-independent, so the weight ROM and the build are cached) layer weights: random
    ``u**3`` normalised per neuron, encoded in the layer's scaled format."""
    import numpy as np
    rng = np.random.default_rng(3)
    W = rng.uniform(0.0, 1.0, size=(S, N)) ** 3
    return _dp(ENGINE_DP).encode_weights(W / W.sum(axis=0))


def _engine_dut(lanes: int, mode: str, fault=None):
    from rtl.engine import IPEngine
    S, N, T, _ = ENGINE_SHAPES[mode]
    w_codes, w_fmt = _engine_weights(S, N)
    return IPEngine(_dp(ENGINE_DP), w_codes, T, lanes=lanes, w_format=w_fmt, fault=fault)


def _engine_vectors(lanes: int, timing: bool):
    def vectors(mode: str, seed: int):
        from rtl.engine import engine_cycles, pack_job, reference_ip
        dp = _dp(ENGINE_DP)
        S, N, T, n_ips = ENGINE_SHAPES[mode]
        w_codes, w_fmt = _engine_weights(S, N)
        vmax = (1 << _window_bits()) - 1
        rng = random.Random(seed)
        windows = [[0] * S, [rng.randrange(vmax + 1) if i in (2, 7) else 0 for i in range(S)]]
        while len(windows) < n_ips:
            windows.append([rng.randrange(vmax + 1) for _ in range(S)])
        rng.shuffle(windows)
        jobs = []
        for window in windows[:n_ips]:
            key = (rng.getrandbits(32), rng.randrange(1 << 16), rng.randrange(8), rng.randrange(1 << 24))
            h, ign = reference_ip(dp, w_codes, window, *key, T, w_format=w_fmt, record=True)
            jobs.append({"job": pack_job(*key), "window": window, "expected": h,
                         "cycles": engine_cycles(dp, N, S, lanes, ign)})
        stalls = {"idle": 0.0, "backpressure": 0.0} if timing else _stalls(mode)
        data = {"jobs": jobs, "h_width": _dp_h_width(), "check_cycles": timing, **stalls}
        return data, n_ips * T   # vectors = spikes
    return vectors


def _window_bits() -> int:
    """Bits of a sampler-window value of a layer after the first (the engine's default)."""
    from rtl.engine import window_value_width
    return window_value_width(_dp(ENGINE_DP), 1)


def _dp_h_width() -> int:
    from fixedpoint.formats import parse_format
    return parse_format(_dp(ENGINE_DP).h_format).width


def _engine_design(lanes: int):
    def design(fault, mode):
        return _engine_dut(lanes, mode, fault)
    return design


def _register_engine() -> None:
    for lanes in LANES:
        variants = [(None, False)] + ([("update", False), (None, True)] if lanes == 4 else [])
        for fault, timing in variants:
            top = f"ip_engine_small_l{lanes}" if not fault else "ip_engine_small_fault"
            register(Entry(unit="engine-timing" if timing else "engine", datapath=ENGINE_DP, lanes=lanes,
                           toplevel=top, testbench="sim.tb_engine", design=_engine_design(lanes),
                           vectors=_engine_vectors(lanes, timing), fault=fault,
                           note="IPEngine whole IPs vs rtl.engine.reference_ip; vectors = spikes" +
                                ("; no stalls, cycles between IPs == engine_cycles" if timing else "")))



# ------------------------------------------------------------------------------ IPEngine, real layers

#: layers of the reference network whose whole IPs the full regression runs on the shipped model's
#: weights (layer 5, S = 96 / N = 10, is the random-weight ``engine`` entry above)
LAYER_ENGINE_LAYERS = (0, 2, 4)
LAYER_ENGINE_LANES = 4
SHIPPED_MODEL = "reference-mnist.npz"


def _shipped():
    """``(net, weights)`` of the shipped model ``sbs_model/models/reference-mnist.npz`` (T = 1600)."""
    from pathlib import Path

    import sbs_model
    from sbs_model.network import NetworkSpec
    from sbs_model.weights import load_weights
    weights, meta = load_weights(Path(sbs_model.__file__).parent / "models" / SHIPPED_MODEL)
    return NetworkSpec.from_dict(meta["network"]), weights


def _layer_engine_parts(layer: int):
    """``(spec, w_codes, w_format, schedule)`` of a layer of the shipped model (int-e4m1)."""
    import numpy as np

    from fixedpoint.schedule import Schedule
    net, weights = _shipped()
    spec = net.layers[layer]
    w_codes, w_fmt = _dp(ENGINE_DP).encode_weights(np.asarray(weights[layer], dtype=np.float64))
    return net, spec, w_codes, w_fmt, Schedule.from_layer(spec)


def _layer_engine_dut(layer: int, mode: str, fault=None):
    if mode == "quick":  # quick: the small engine entry's design (same Verilog, so its build is shared)
        return _engine_dut(LAYER_ENGINE_LANES, mode, fault)
    from rtl.engine import IPEngine
    _, spec, w_codes, w_fmt, sched = _layer_engine_parts(layer)
    return IPEngine(_dp(ENGINE_DP), w_codes, spec.spikes, lanes=LAYER_ENGINE_LANES, w_format=w_fmt,
                    schedule=sched, layer_index=layer, fault=fault)


def _real_window(net, spec, layer: int, seed: int, image: int, pick: int):
    """``(ip, window, model h)``: IP number ``pick`` (mod their count) of those of ``layer`` whose
    integer window is not all zero, from the quantized model's trace (seed ``seed``, pattern
    ``image``) of embedded MNIST test image ``image``; the model's final h codes of that IP."""
    import numpy as np

    from fixedpoint.pooling import window_from_h
    from sbs_model.data import load_embedded
    from sbs_model.quant import QuantizedModel
    from sbs_model.quant_ref import crop_pixels, ip_window
    dp = _dp(ENGINE_DP)
    images, _ = load_embedded()
    img = images[image:image + 1]
    tr = QuantizedModel(net, _shipped()[1], dp, seed=seed).trace(img, first_pattern=image)
    if layer == 0:
        src = crop_pixels(img, net).astype(np.int64)
    else:
        src = window_from_h(tr.outputs[layer - 1], tr.formats[layer - 1], dp.sampler_frac_bits)
    _, H_out, W_out = net.shapes()[layer]
    live = [ip for ip in range(H_out * W_out) if ip_window(src, spec, 0, ip).any()]
    ip = live[pick % len(live)]
    model_h = [int(v) for v in tr.outputs[layer][0, :, ip // W_out, ip % W_out]]
    return ip, [int(v) for v in ip_window(src, spec, 0, ip)], model_h


def _layer_engine_vectors(layer: int):
    def vectors(mode: str, seed: int):
        if mode == "quick":  # quick: the small engine entry's vectors (see _layer_engine_dut)
            return _engine_vectors(LAYER_ENGINE_LANES, False)(mode, seed)
        from rtl.engine import engine_cycles, pack_job, reference_ip, window_value_width
        dp = _dp(ENGINE_DP)
        net, spec, w_codes, w_fmt, sched = _layer_engine_parts(layer)
        S, N, T = spec.window, spec.out_channels, spec.spikes
        _, H_out, W_out = net.shapes()[layer]
        rng = random.Random(seed)
        # IP 1: a real MNIST window (embedded test image, the quantized model's trace)
        model_seed, image = rng.getrandbits(32), rng.randrange(2000)
        ip, window, model_h = _real_window(net, spec, layer, model_seed, image, rng.getrandbits(16))
        keys = [(model_seed, image, layer, ip)]
        # IP 2: a random window of the layer's value width (pixels for layer 0)
        vmax = (1 << window_value_width(dp, layer)) - 1
        windows = [window, [rng.randrange(vmax + 1) for _ in range(S)]]
        keys.append((rng.getrandbits(32), rng.randrange(1 << 16), layer, rng.randrange(H_out * W_out)))
        jobs = []
        for window, key in zip(windows, keys):
            h, ign = reference_ip(dp, w_codes, window, *key, T, w_format=w_fmt, schedule=sched, record=True)
            jobs.append({"job": pack_job(*key), "window": window, "expected": h,
                         "cycles": engine_cycles(dp, N, S, LAYER_ENGINE_LANES, ign)})
        if jobs[0]["expected"] != model_h:
            raise RuntimeError(f"layer {layer}: rtl.engine.reference_ip disagrees with the quantized "
                               f"model's trace at image {image} ip {ip}")
        data = {"jobs": jobs, "h_width": _dp_h_width(), "check_cycles": False, **_stalls(mode)}
        return data, len(jobs) * T   # vectors = spikes
    return vectors


def _register_layer_engines() -> None:
    for layer in LAYER_ENGINE_LAYERS:
        register(Entry(unit=f"engine-layer{layer}", datapath=ENGINE_DP, lanes=LAYER_ENGINE_LANES,
                       toplevel=f"ip_engine_small_l{LAYER_ENGINE_LANES}", testbench="sim.tb_engine",
                       design=lambda fault, mode, layer=layer: _layer_engine_dut(layer, mode, fault),
                       vectors=_layer_engine_vectors(layer),
                       note=f"--full: IPEngine on layer {layer} of the shipped model (T = 1600), one real "
                            "MNIST window + one random, vs rtl.engine.reference_ip; --quick: the small "
                            "engine entry's design and vectors; vectors = spikes"))


_register_rng()
_register_sampler()
if _has("sim.tb_decoder"):
    _register_decoder()
if _has("sim.tb_multiplier"):
    _register_multiplier()
if _has("sim.tb_dot"):
    _register_dot()
if _has("sim.tb_normaliser"):
    _register_normaliser()
if _has("sim.tb_reciprocal"):
    _register_reciprocal()
if _has("sim.tb_update"):
    _register_update()
if _has("sim.tb_engine"):
    _register_engine()
    _register_layer_engines()
