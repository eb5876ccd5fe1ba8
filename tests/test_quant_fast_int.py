"""The vectorised integer kernel (sbs_model.quant_fast_int): its 32-bit lanes, its 64-bit lanes and
the generic ``step_nb`` loop give the same integers (``==``), for the ``int`` and ``scaled`` updates."""
import dataclasses

import numpy as np
import pytest

from fixedpoint.datapath import PRESETS, R_H_OVF, R_SIG_R, REC_LEN, Datapath, step_nb
from sbs_model import quant_fast_int as qfi
from sbs_model import quant_nb as qn
from sbs_model import quant_ref as qr
from sbs_model.network import LayerSpec as L
from sbs_model.network import NetworkSpec
from sbs_model.quant import QuantizedModel
from sbs_model.quant_jobs import run_layer_kernel
from sbs_model.weights import load_any


def _run(ql, p, xw, seed=5, chunk=None):
    """The kernel on ``xw``; ``chunk``: jobs per prange item (default: the wrapper's choice)."""
    return run_layer_kernel(ql, xw, 0, lambda x, idx, out, cnt, bad, ch: qfi.qsbs_layer_int(
        x, idx, p.md, p.m2, p.h0, np.int64(p.sd), np.int64(p.e_min), p.recip, p.w32, np.int64(p.hm_max), p.tab,
        p.madd, p.mdw, p.m2w, np.int64(ql.layer.out_channels), ql.dp.nb, ql.H.nb, ql.tables.C, ql.tables.G, np.uint64(seed), np.uint64(0),
        np.uint64(ql.index), np.int64(ql.layer.spikes), out, cnt, bad, ch if chunk is None else chunk))


def _wide(p):
    """The same layer on the 64-bit lanes only."""
    return dataclasses.replace(p, md=p.md.astype(np.int64), m2=p.m2.astype(np.int64), w32=False, madd=False,
                               mdw=p.md.astype(np.int64), m2w=p.m2.astype(np.int64))


def _net(T=24, N=20):
    return NetworkSpec((1, 6, 6), (L("sbs", 1, N, (3, 3), spikes=T),))


def _weights(N=20, seed=9, power=3):
    w = np.random.default_rng(seed).random((9, N)) ** power + 1e-3
    return {0: (w / w.sum(axis=0)).astype(np.float32)}


@pytest.mark.parametrize("N", [20, 10, 40])
@pytest.mark.parametrize("name", ["int-e4m1", "int-uq0.8", "scaled-e4m1", "scaled-e3m1", "cheap-e4m1"])
def test_lanes_equal_generic(name, N):
    """32-bit lanes == 64-bit lanes == step_nb loop on a whole layer (codes and counters); N = 10,
    20, 40: one and two blocks of PAD lanes (straight-line code) and three (the loop)."""
    net = _net(N=N)
    w = _weights(N=N)
    w[0][:, 16:] /= 4  # keeps the 32-bit lanes' dot bound (sum of h_max*Md < 2**32) at N = 40
    ql = QuantizedModel(net, w, PRESETS[name]).qlayers[0]
    p = qfi.prepare_int(ql)
    assert p is not None and p.w32
    img = np.random.default_rng(4).integers(0, 256, (3, 28, 28)).astype(np.uint8)
    xw = qr.window_values(qr.Act("pixels", qr.crop_pixels(img, net)), ql)
    ref = qn.run_quant_layer(ql, xw, 5, 0, fast=False)
    for q in (p, _wide(p)):
        got = _run(ql, q, xw)
        assert np.array_equal(ref[0], got[0]) and np.array_equal(ref[1], got[1])


@pytest.mark.parametrize("n_img", [1, 4])
def test_saturating_layer_equal_generic(n_img):
    """H saturates (uq0.6 cannot hold 1.0): the 32-bit lanes' rare saturation path; with 4 images in one
    chunk the 4 IPs of a group run in the written-out loop (m == GROUP), its saturation path included."""
    net = NetworkSpec((1, 2, 2), (L("sbs", 1, 2, (2, 2), spikes=40, eps0=10.0, eps_schedule="constant"),))
    w = np.array([[1.0, 0.0], [0.0, 0.5], [0.0, 0.25], [0.0, 0.25]])
    for upd in ("int", "scaled"):
        dp = Datapath(weight_format="uq0.8", h_format="uq0.6", sampler_frac_bits=16, update=upd, c_bits=12)
        ql = QuantizedModel(net, {0: w}, dp).qlayers[0]
        p = qfi.prepare_int(ql)
        assert p.w32
        img = np.zeros((n_img, 28, 28), np.uint8)
        img[:, 13, 13] = 255
        img[1:, 14, 14] = (60, 120, 250)[:n_img - 1]
        xw = qr.window_values(qr.Act("pixels", qr.crop_pixels(img, net)), ql)
        ref = qn.run_quant_layer(ql, xw, 0, 0, fast=False)
        got = _run(ql, p, xw, seed=0, chunk=n_img)  # the reference's spike seed; one group of n_img IPs
        assert np.array_equal(ref[0], got[0]) and np.array_equal(ref[1], got[1])
        assert got[1][qr.C_H_OVF] > 0


@pytest.mark.parametrize("kw", [
    dict(),
    dict(update="scaled"),
    dict(update="scaled", coef_bits=4, h_rounding="trunc"),
    dict(h_rounding="rna", weight_format="uq0.8", c_bits=12),
    dict(h_rounding="trunc", weight_format="e3m2", upd_frac_bits=16),
    dict(update="scaled", h_format="uq0.12", upd_frac_bits=20, h_rounding="rna"),
])
def test_fast_spike_equals_step_nb_on_random_states(kw):
    """One spike at a time on random h (zeros, a dominant element near H's top, ignored spikes):
    the kernel's spike (the 32-bit fast path where it applies, else the full one) == step_nb,
    including the fused next dot product."""
    dp = Datapath(**kw)
    rng = np.random.default_rng(len(str(kw)))
    S, N, T = 7, 13, 50
    w = (0.05 + rng.random((S, N)) ** 2) / 20  # small weights keep the 32-bit lanes' dot bound (N*h*w < 2**32)
    net = NetworkSpec((1, 1, S), (L("sbs", 1, N, (1, S), spikes=T),))
    ql = QuantizedModel(net, {0: w}, dp).qlayers[0]
    p = qfi.prepare_int(ql)
    assert p is not None and p.w32 and p.madd
    t_ = ql.tables
    seen = [0, 0, 0]
    for trial in range(300):
        h = rng.integers(0, ql.H.n_codes, N) >> rng.integers(0, ql.H.width, N)
        if trial % 2:
            h = h >> (ql.H.width - 1 if trial % 4 == 1 else ql.H.width // 2)
            h[rng.integers(N)] = ql.H.n_codes - 1 - rng.integers(4)
        if trial % 7 == 0:
            h[:] = 0
        s, s_next = int(rng.integers(S)), int(rng.integers(S))
        t = T - 1 if trial % 11 == 0 else int(rng.integers(T))
        a = h.copy()
        ra, rb = np.zeros(REC_LEN, np.int64), np.zeros(REC_LEN, np.int64)
        step_nb(a, ql.wcodes[s], np.int64(t), dp.nb, ql.H.nb, ql.W.nb, t_.C, t_.G, t_.eps32, t_.c32, ql.lut, a, ra)
        hb = np.zeros((qfi.GROUP, p.md.shape[1]), np.uint32)
        hb[2, :N] = h
        sd = np.int64(p.sd)
        tot = qfi.dot_int_any_nb(hb, 2, p.md, s, sd, True, p.w32)
        hc = hb.copy()
        hc_in = hb.copy()
        nxt, n_ovf = qfi.spike_fast_nb(hb, 2, s, t, tot, s_next, p.md, p.m2, sd, np.int64(p.e_min), p.recip,
                                       np.int64(p.hm_max), p.tab, dp.nb, ql.H.nb)
        # the kernel's spike with the constants as values: the same result and h
        assert qfi.spike_hoisted_nb(hc, 2, s, t, tot, s_next, p.md, p.m2, sd, np.int64(p.e_min), p.recip,
                                    np.int64(p.hm_max), p.tab, dp.nb, ql.H.nb) == (nxt, n_ovf)
        assert np.array_equal(hb, hc)
        hc = hc_in.copy()  # and on the vpmaddwd update (it applies to these layers: sd = 0, small multipliers)
        assert qfi.spike_hoisted_madd_nb(hc, 2, s, t, tot, s_next, p.md, p.m2, sd, np.int64(p.e_min), p.recip,
                                         np.int64(p.hm_max), p.tab, dp.nb, ql.H.nb, p.mdw, p.m2w) == (nxt, n_ovf)
        assert np.array_equal(hb, hc)
        if n_ovf < 0:  # not the fast case: h untouched, the full spike runs
            assert np.array_equal(hb[2, :N], h)
            nxt = qfi.spike_int_any_nb(hb, 2, s, t, tot, s_next, p.md, p.m2, sd, np.int64(p.e_min), p.recip, True,
                                       p.w32, np.int64(p.hm_max), dp.nb, ql.H.nb, t_.C, t_.G, rb)
            assert np.array_equal(ra, rb)
        else:
            seen[2] += 1
            assert n_ovf == ra[R_H_OVF]
        assert np.array_equal(a, hb[2, :N].astype(np.int64)) and not hb[2, N:].any(), (trial, h, s, t)
        assert nxt == qfi.dot_int_any_nb(hb, 2, p.md, s_next, sd, True, p.w32)
        seen[0] += ra[R_H_OVF] > 0
        seen[1] += ra[R_SIG_R] == 0
    assert seen[1] > 0 and seen[2] > 100  # ignored spikes, and the fast path really ran


def test_reference_network_runs_on_32_bit_lanes():
    """The shipped model's layers with the int and scaled presets all take the 32-bit lanes."""
    from pathlib import Path

    import sbs_model
    from sbs_model.configs import load_network

    net = load_network("reference-mnist", spikes=4)
    w, _ = load_any(Path(sbs_model.__file__).parent / "models" / "reference-mnist.npz", net)
    for name in ("int-e4m1", "int-e4m0", "int-uq0.8", "scaled-e4m1", "scaled-e3m1", "cheap-e4m1"):
        qm = QuantizedModel(net, w, PRESETS[name])
        assert all(qfi.prepare_int(ql).w32 for ql in qm.qlayers.values()), name


@pytest.mark.parametrize("mode", ["trunc", "rne", "rna"])
def test_update32_lanes_equal_integer_reference(mode):
    """The 32-bit update intrinsics (all eight variants: T1 multiply or shift, dot shift or none,
    T2 shift ``rs2 <= 32`` or ``> 32``; each with the three tie tests: round half to even, none, the
    general one) == Python integers: ``q = round((C*h >> rs1) + (K*h*m2 >> rs2), sr)`` stored in h,
    the saturation flag, and the fused dot ``sum (q*md) >> sd`` (mod 2**32); on 1, 2 and 3 blocks."""
    from fixedpoint.rounding import ROUNDING_MODES, rshift_round

    rm = ROUNDING_MODES[mode]
    rng = np.random.default_rng(rm)
    S = 3
    seen, ties = set(), set()
    for trial in range(400):
        npad = (16, 32, 48)[trial % 3]  # one and two blocks (straight-line code), three (the loop)
        hb = int(rng.integers(8, 17))
        h = rng.integers(0, 1 << hb, npad).astype(np.uint32)
        h[rng.integers(npad)] = (1 << hb) - 1
        m2 = rng.integers(0, 1 << int(rng.integers(1, 32 - hb + 1)), (S, npad)).astype(np.uint32)
        md = rng.integers(0, 1 << int(rng.integers(1, 32 - hb - 4)), (S, npad)).astype(np.uint32)
        s, s2 = int(rng.integers(S)), int(rng.integers(S))
        rs2 = int(rng.integers(0, 64))
        hm_max = ((1 << hb) - 1) * int(m2.max())
        K = int(rng.integers(0, max(1, min(1 << 32, (1 << (29 + rs2)) // max(hm_max, 1)))))
        csh = int(rng.integers(-1, 3))
        if csh >= 0:
            C, rs1 = csh, 0
            t1 = h.astype(object) << csh
        else:
            C, rs1 = int(rng.integers(0, 1 << (32 - hb))), int(rng.integers(0, 20))
            t1 = (C * h.astype(object)) >> rs1
        sr = int(rng.integers(0, 12))
        sd = int(rng.integers(0, 3))
        t2 = (K * h.astype(object) * m2[s].astype(object)) >> rs2
        S_ = t1 + t2
        bias, lm, tv = qfi._round_params(np.int64(sr), np.int64(rm))
        if int(S_.max()) + int(bias) >= 1 << 32:
            continue
        q = rshift_round(np.array(S_, dtype=np.int64), sr, rm)
        if trial % 5 == 4:  # the general tie test (lm and tv both non-zero; no preset has it)
            lm = np.int64(int(rng.integers(1, 1 << 8)))
            tv = np.int64(int(rng.integers(1, int(lm) + 1)) & int(lm) or int(lm))
            u = S_ + int(bias)
            q = np.array([(int(v) >> sr) & ~1 if int(v) & int(lm) == int(tv) else int(v) >> sr for v in u], np.int64)
        kpos = (1 << hb) - 1
        hh = np.zeros((qfi.GROUP, npad), np.uint32)
        hh[1] = h
        over, dot = qfi._update32(hh, 1, m2, s, npad, np.int64(C), np.int64(K), np.int64(rs1), np.int64(rs2),
                                  np.int64(sr), bias, lm, tv, np.int64(csh), md, s2, np.int64(sd), np.int64(kpos))
        assert np.array_equal(hh[1], q.astype(np.uint32)), trial
        assert over == int(q.max() > kpos)
        if not over:  # (the kernel saturates and recomputes the dot otherwise)
            assert dot == int(sum((int(a) * int(b)) >> sd for a, b in zip(q, md[s2])) % (1 << 32))
        seen.add((csh >= 0, sd > 0, rs2 <= 32))
        ties.add("rne" if tv == 0 else "none" if lm == 0 else "any")
    assert len(seen) == 8 and len(ties) == (3 if mode == "rne" else 2)


def test_window_total_over_limit_is_a_value_error():
    """An IP whose window total reaches 2**31 fails the layer call with the bad-window error; the
    other IPs of its group still run (its spike row is zeroed, so nothing reads out of bounds)."""
    net = _net(T=16)
    ql = QuantizedModel(net, _weights(), PRESETS["int-e4m1"]).qlayers[0]
    img = np.random.default_rng(4).integers(0, 256, (2, 28, 28)).astype(np.uint8)
    xw = qr.window_values(qr.Act("pixels", qr.crop_pixels(img, net)), ql)
    xw[1, 0, 2, 2] = 1 << 31
    with pytest.raises(ValueError, match="exceeds 2\\*\\*31 - 1"):
        qfi.run_quant_layer_int(ql, xw, 0, 0)


@pytest.mark.parametrize("mode", ["trunc", "rne", "rna"])
def test_update32_madd_equals_update32(mode):
    """The vpmaddwd update (multipliers as madd_pairs, sd = 0, codes below 2**16) == the vpmulld
    one: the same new codes, saturation flag and fused dot, on 1, 2 and 3 blocks, T1 multiply or
    shift, rs2 <= 32 or > 32, codes up to 2**16 - 1 and multipliers up to 2**14 - 1."""
    from fixedpoint.rounding import ROUNDING_MODES

    rm = ROUNDING_MODES[mode]
    rng = np.random.default_rng(10 + rm)
    S = 3
    seen = set()
    for trial in range(300):
        npad = (16, 32, 48)[trial % 3]
        hb = int(rng.integers(8, 17))
        h = rng.integers(0, 1 << hb, npad).astype(np.uint32)
        h[rng.integers(npad)] = (1 << hb) - 1
        mb = min(14, 32 - hb)
        m2 = rng.integers(0, 1 << int(rng.integers(1, mb + 1)), (S, npad)).astype(np.uint32)
        md = rng.integers(0, 1 << int(rng.integers(1, mb + 1)), (S, npad)).astype(np.uint32)
        m2[0, 0] = md[0, 0] = qfi.MADD_MAX - 1
        s, s2 = int(rng.integers(S)), int(rng.integers(S))
        rs2 = int(rng.integers(0, 64))
        hm_max = ((1 << hb) - 1) * int(m2.max())
        K = int(rng.integers(0, max(1, min(1 << 32, (1 << (29 + rs2)) // max(hm_max, 1)))))
        csh = int(rng.integers(-1, 3))
        C, rs1 = (csh, 0) if csh >= 0 else (int(rng.integers(0, 1 << (32 - hb))), int(rng.integers(0, 20)))
        sr = int(rng.integers(0, 12))
        bias, lm, tv = qfi._round_params(np.int64(sr), np.int64(rm))
        kpos = (1 << hb) - 1
        t1 = (h.astype(object) << csh) if csh >= 0 else (C * h.astype(object)) >> rs1
        S_ = t1 + ((K * h.astype(object) * m2[s].astype(object)) >> rs2)
        if int(S_.max()) + int(bias) >= 1 << 32:
            continue
        a = np.zeros((qfi.GROUP, npad), np.uint32)
        a[1] = h
        b = a.copy()
        args = (np.int64(C), np.int64(K), np.int64(rs1), np.int64(rs2), np.int64(sr), bias, lm, tv, np.int64(csh))
        ref = qfi._update32(a, 1, m2, s, npad, *args, md, s2, np.int64(0), np.int64(kpos))
        got = qfi.update32_madd_nb(b, 1, qfi.madd_pairs(m2), s, npad, *args, qfi.madd_pairs(md), s2, np.int64(kpos))
        assert np.array_equal(a, b), trial
        assert got[0] == ref[0]
        if not ref[0]:  # the dot of codes above kpos is not used (the kernel saturates and recomputes it)
            assert got[1] == ref[1], trial
        seen.add((csh >= 0, rs2 <= 32, npad))
    assert len(seen) == 12


def test_madd_pairs_range():
    """madd_pairs refuses multipliers it cannot represent (the signed words need m, 2m < 2**15)."""
    assert np.array_equal(qfi.madd_pairs(np.array([0, 1, qfi.MADD_MAX - 1])),
                          np.array([0, 1 | 2 << 16, (qfi.MADD_MAX - 1) * (1 + (2 << 16))], np.uint32))
    with pytest.raises(ValueError, match="2\\*\\*14"):
        qfi.madd_pairs(np.array([qfi.MADD_MAX]))


def test_reference_layer0_madd_equals_generic():
    """Reference layer 0 with the shipped weights (int-e4m1: the vpmaddwd update applies there):
    the kernel == the generic step_nb loop on codes and counters."""
    from pathlib import Path

    import sbs_model
    from sbs_model.configs import load_network

    net = load_network("reference-mnist", spikes=24)
    w, _ = load_any(Path(sbs_model.__file__).parent / "models" / "reference-mnist.npz", net)
    qm = QuantizedModel(net, w, PRESETS["int-e4m1"])
    ql = qm.qlayers[0]
    assert qfi.prepare_int(ql).madd
    img = np.random.default_rng(2).integers(0, 256, (1, 28, 28)).astype(np.uint8)
    xw = qr.window_values(qr.Act("pixels", qr.crop_pixels(img, net)), ql)
    ref = qn.run_quant_layer(ql, xw, 3, 0, fast=False)
    got = qfi.run_quant_layer_int(ql, xw, 3, 0)
    assert np.array_equal(ref[0], got[0]) and np.array_equal(ref[1], got[1])


def test_madd_native_and_generic_ir_equal_word_pair_sums():
    """The word-pair multiply-add: plain IR (the kernel's code on a CPU without AVX-512 BW) ==
    numpy's signed word products summed in pairs (mod 2**32), and the vpmaddwd intrinsic == it
    where the host has it (extreme words included)."""
    rng = np.random.default_rng(6)
    a = rng.integers(0, 1 << 32, 256, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 1 << 32, 256, dtype=np.uint64).astype(np.uint32)
    a[:4] = b[:4] = [0x80008000, 0x7FFF7FFF, 0x80007FFF, 0xFFFFFFFF]
    words = [x.view(np.int16).reshape(-1, 2).astype(np.int64) for x in (a, b)]
    ref = (words[0] * words[1]).sum(axis=1) & 0xFFFFFFFF
    out = np.zeros(256, np.uint32)
    qfi.madd_generic_nb(a, b, out)
    assert np.array_equal(out.astype(np.int64), ref)
    if qfi.HOST_PMADDWD:
        out[:] = 0
        qfi.madd_native_nb(a, b, out)
        assert np.array_equal(out.astype(np.int64), ref)
