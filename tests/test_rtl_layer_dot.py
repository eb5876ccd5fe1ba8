"""rtl.layer.dot_lanes.DotLanes in Amaranth's simulator against Datapath.dot (==), rows back to back."""
from dataclasses import replace

import numpy as np
import pytest
from amaranth.sim import Simulator

from fixedpoint.datapath import PRESETS
from fixedpoint.formats import parse_format
from rtl.layer.dot_lanes import DotLanes, reference


@pytest.mark.parametrize("name,N,L", [("int-e4m1", 10, 16), ("int-e4m1", 13, 4), ("int-uq0.8", 7, 7),
                                      ("int-e4m0", 9, 2),
                                      # float h: the shift from both codes' exponent fields, as a table
                                      # (e2m4 h + e4m1 w: 6 bits) and with adds (e5m11z h + e4m1 w: 9 bits)
                                      ("int-e4m1/h=e2m4", 11, 4), ("paper-e4m1", 9, 4)])
def test_dot_lanes_equals_model(name, N, L):
    preset, _, h_format = name.partition("/h=")
    dp = replace(PRESETS[preset], h_format=h_format) if h_format else PRESETS[preset]
    rng = np.random.default_rng(N * L)
    W = rng.uniform(0, 1, size=(30, N)) ** 3
    wc, wf = dp.encode_weights(W / W.sum(axis=0))
    H = parse_format(dp.h_format)
    rows_h = [rng.integers(0, H.n_codes, N) for _ in range(12)] + [np.full(N, H.n_codes - 1)] + [np.zeros(N, int)]
    rows_w = [wc[k % 30] for k in range(len(rows_h))]
    dut = DotLanes(dp, wf, N, L)
    B = dut.B
    got = []

    async def tb(ctx):
        beats = []
        for h, w in zip(rows_h, rows_w):
            h = list(h) + [0] * (B * L - N)
            w = list(w) + [0] * (B * L - N)
            for b in range(B):
                beats.append((sum(int(c) << (j * H.width) for j, c in enumerate(h[b * L:(b + 1) * L])),
                              sum(int(c) << (j * wf.width) for j, c in enumerate(w[b * L:(b + 1) * L]))))
        for k in range(len(beats) + dut.latency + 2):
            ctx.set(dut.i_valid, k < len(beats))
            if k < len(beats):
                ctx.set(dut.i_h.as_value(), beats[k][0])
                ctx.set(dut.i_w.as_value(), beats[k][1])
            _, _, ov, oa, oo = await ctx.tick().sample(dut.o_valid, dut.o_acc, dut.o_ovf)
            if ov:
                got.append((int(oa), int(oo)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got == reference(dp, rows_h, rows_w, wf)
