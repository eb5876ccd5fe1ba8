"""``NetworkAccelerator``: a whole SbS network in RTL -- image in, class out.

Built from (see :mod:`rtl.network.design`, which makes one from a quantized model and a plan):
one :class:`rtl.layer.engine.LayerEngine` per SbS layer (its lanes and engine cores from the
plan; its weights in on-chip ROMs), one :class:`rtl.network.pool.PoolUnit` per pooling layer, one
:class:`rtl.network.fmap.FeatureMap` per layer (the layer's output codes in the model's ``(c, y, x)``
order, in registered block-RAM banks) and one
:class:`rtl.network.feeder.FmapFeeder` per SbS layer after the first.

Ports (``lib.stream`` unless noted):

* ``job``: :data:`rtl.layer.engine.JOB_LAYOUT` (``seed`` u32, ``pattern`` u32: the spike key of the
  image), one per image;
* ``image``: the ``28 x 28`` uint8 pixels, row-major; only the network's centre crop (offset
  ``((28 - H)//2, (28 - W)//2)``, :func:`sbs_model.data.center_crop_offset`) reaches the first
  layer, the other pixels are taken and dropped;
* ``cls``: the class of the image (argmax of the output layer's codes in ``(c, y, x)`` order, the
  first on ties: :func:`sbs_model.quant_ref.classes`; codes of a fixed-point format are ordered as
  their values);
* debug read path (plain signals; use while ``idle`` is high): ``dbg_layer`` and ``dbg_addr`` in,
  ``dbg_data`` out ``FMAP_READ_LATENCY`` = 2 cycles later (pipelined: one address per cycle): code ``dbg_addr`` (``c*X*Y + y*Y + x``) of layer
  ``dbg_layer``'s output (pooling layers included; the output layer's h codes are layer ``n-1``);
* ``idle`` out: no image in flight (the debug port and ``job`` are served);
* ``starved`` out: sticky debug flag, must stay 0: an engine's spike FIFO ran empty, or a crop pixel
  found the first engine not loading.

Scheduler: one image at a time, one stage per layer, each stage starting in the cycle after the
previous one ends; the exact cycle count is :func:`sbs_model.network_cycles.network_cycles`.
"""
from __future__ import annotations

from amaranth import Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.checked import CheckedComponent
from rtl.layer.engine import JOB_LAYOUT
from rtl.network.feeder import FmapFeeder
from rtl.network.fmap import FeatureMap
from sbs_model.data import center_crop_offset
from sbs_model.network_cycles import FMAP_READ_LATENCY, IMAGE_H, IMAGE_W


class NetworkAccelerator(CheckedComponent):
    """``units``: per layer of ``net`` a ``LayerEngine`` (SbS) or a ``PoolUnit`` (pooling); ``h_width``:
    bits of an h code; ``shapes``: every layer's output shape ``(C, X, Y)``; ``crop``: ``(H, W)`` of
    the first layer's input."""

    @staticmethod
    def plan(units: list, shapes: list, h_width: int, crop: tuple[int, int]) -> dict:
        if not units or not hasattr(units[0], "x_in") or units[0].input_kind != "pixels":
            raise ValueError("NetworkAccelerator: the first layer must be an SbS layer engine reading pixels")
        if not hasattr(units[-1], "h_out"):
            raise ValueError("NetworkAccelerator: the last layer must be an SbS layer engine")
        sizes = [int(c * x * y) for c, x, y in shapes]
        return dict(units=list(units), shapes=[tuple(s) for s in shapes], hw=int(h_width),
                    crop=tuple(int(v) for v in crop), sizes=sizes, n_layers=len(units), n_out=sizes[-1])

    def __init__(self, units: list, shapes: list, h_width: int, crop: tuple[int, int]):
        self.feeders = {i: FmapFeeder(self.sizes[i - 1], self.hw) for i, u in enumerate(self.units)
                        if i > 0 and hasattr(u, "x_in")}
        super().__init__({
            "job": In(stream.Signature(JOB_LAYOUT)),
            "image": In(stream.Signature(8)),
            "cls": Out(stream.Signature(range(max(self.n_out, 2)))),
            "dbg_layer": In(range(max(self.n_layers, 2))),
            "dbg_addr": In(range(max(max(self.sizes), 2))),
            "dbg_data": Out(self.hw),
            "idle": Out(1),
            "starved": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n, hw = self.n_layers, self.hw
        idle_q = Signal(init=1)  # no image in flight
        # the image's key: the job's payload registered in every cycle (`job_seed_q`, `job_pattern_q`), taken
        # into `key_seed`, `key_pattern` in the cycle after the job's transfer by `key_take`, a flip-flop whose
        # only loads are those 64 clock enables (see below)
        seed, pattern = Signal(32, name="key_seed"), Signal(32, name="key_pattern")
        job_seed_q, job_pattern_q = Signal(32, name="job_seed_q"), Signal(32, name="job_pattern_q")
        key_take = Signal(name="key_take")
        for i, u in enumerate(self.units):
            m.submodules[f"layer{i}"] = u
        for i, f in self.feeders.items():
            m.submodules[f"feed{i}"] = f
        engines = [i for i, u in enumerate(self.units) if hasattr(u, "x_in")]
        lost = Signal(name="pixel_lost")  # see the pixels below
        starved = lost
        for i in engines:
            starved = starved | self.units[i].starved
        m.d.comb += [self.starved.eq(starved), self.idle.eq(idle_q)]

        # ---- feature maps: one write port (the layer), one read port (next layer / debug)
        fmaps = []
        for i, size in enumerate(self.sizes):
            fm = FeatureMap(size, hw)
            m.submodules[f"fmap{i}"] = fm
            fmaps.append(fm)

        # the debug read: the layer select travels with the maps' read pipeline
        dbg_sel = self.dbg_layer
        for _ in range(FMAP_READ_LATENCY):
            q = Signal.like(self.dbg_layer)
            m.d.sync += q.eq(dbg_sel)
            dbg_sel = q
        out = fmaps[0].rd_data
        for i in range(1, n):
            out = Mux(dbg_sel == i, fmaps[i].rd_data, out)
        m.d.comb += self.dbg_data.eq(out)

        # ---- stages: one flip-flop per stage, high while it runs (set by go[i], cleared by its last
        # cycle's done[i]), instead of a binary stage register whose decode drove long routes (at
        # f66f52d `stage` -> layer 2's job `seed` enable was the critical path, 13.68 ns, 12.68 ns of
        # routing); `fin` from the last stage's end until the class transfers.  go[i] is high in the
        # cycle before stage i's first cycle.
        done = [Signal(name=f"done{i}") for i in range(n)]
        go = [Signal(name=f"go{i}") for i in range(n)]
        at = [Signal(name=f"at{i}") for i in range(n)]
        fin = Signal()
        job_fire = self.job.valid & self.job.ready
        m.d.comb += go[0].eq(job_fire)
        for i in range(1, n):
            m.d.comb += go[i].eq(at[i - 1] & done[i - 1])
        with m.If(job_fire):
            m.d.sync += idle_q.eq(0)
        # the image's key: written in cycle 1 (the job transfers in cycle 0) from the payload registered in
        # cycle 0, enabled by `key_take` = the transfer one cycle later.  Until 1a7712d the key register was
        # written in every idle cycle, enabled by the `idle_q` flip-flop, which also drives `job.ready` and the
        # stage start: at 1a7712d (T = 1600, seed 1) idle_q -> the key register's clock enables, placed apart
        # (the register's readers are the copies beside the engines), was the critical path, 15.03 ns, all
        # routing.  `key_take` has no other load, so it sits with the key register.
        m.d.sync += [job_seed_q.eq(self.job.payload.seed), job_pattern_q.eq(self.job.payload.pattern),
                     key_take.eq(job_fire)]
        with m.If(key_take):
            m.d.sync += [seed.eq(job_seed_q), pattern.eq(job_pattern_q)]
        for i in range(n):
            with m.If(go[i]):
                m.d.sync += at[i].eq(1)
            with m.Elif(done[i]):
                m.d.sync += at[i].eq(0)
        with m.If(at[n - 1] & done[n - 1]):
            m.d.sync += fin.eq(1)

        # ---- pixels: the centre crop goes to the first engine through a register (``crop_v``, ``crop_d``): at
        # c60582b the crop's compare -> the engine's input counter, across the chip, ended seed 1 (11.26 ns).  The
        # image is taken whenever ``pix_on`` is high, without the engine's ready: pixel k transfers in cycle
        # 1 + k at the earliest and reaches the engine one cycle later, in cycle >= 2, when the engine is loading
        # (its job register took the job in cycle 1) until it has all n_in crop pixels, which are this image's
        # last.  ``lost`` (sticky, into ``starved``) would say otherwise.
        e0 = self.units[0]
        ch, cw = self.crop
        oy, ox = center_crop_offset(ch, cw, IMAGE_H, IMAGE_W)
        py, px = Signal(range(IMAGE_H)), Signal(range(IMAGE_W))
        pix_on = Signal()
        # only the bounds that cut (a crop at the image's edge compares nothing there: `px >= 0` would be a
        # constant compare, a lint warning)
        in_crop = Const(1)
        for pos, lo, size, full in ((py, oy, ch, IMAGE_H), (px, ox, cw, IMAGE_W)):
            if lo > 0:
                in_crop = in_crop & (pos >= lo)
            if lo + size < full:
                in_crop = in_crop & (pos < lo + size)
        # the pixels are all taken when ``idle_q`` returns (the class waits for them), so no ``~pix_on``
        # term is needed here.  The first engine is idle whenever the network is (its image ended stages
        # before the class), so ``job.ready`` is the `idle_q` flip-flop alone: at 5900ce7 idle_q -> the
        # engine's `job.ready` -> the stage enables was the critical path (13.92 ns, 12.22 ns routing).
        # The first engine takes its job from a flip-flop of its own, `job_pend0`, one cycle after the
        # image's job (at f91a94d idle_q -> the job handshake -> layer 0's state enable, across the chip,
        # was: 13.67 ns, 11.96 ns routing); it is loading from cycle 2, before the crop register's first pixel
        #
        # Every engine reads the key from a copy of its own, `seed<i>`, `pattern<i>`, written in every cycle
        # (the engines keep no key register: `key_held`): at 838dd54 (T = 700, seed 2) the top's key register,
        # placed beside layer 0 (then its direct reader), had the critical path, 12.69 ns, all routing.  The
        # copies hold the key from cycle 3 on; engine 0 takes its job in cycle 1 but first reads the key when
        # its first wave starts, after its n_in input values, the first of which arrives in cycle 2: cycle 3 at
        # the earliest.  The later engines start stages after that.
        def hand_job(i: int) -> None:
            """Engine ``i``'s job: a flip-flop of its own, ``job_pend<i>``, high from ``go[i]`` until the
            engine takes the job, with the image's key from copies of its own."""
            u = self.units[i]
            pend = Signal(name=f"job_pend{i}")
            seed_i, pattern_i = Signal(32, name=f"seed{i}"), Signal(32, name=f"pattern{i}")
            m.d.sync += [seed_i.eq(seed), pattern_i.eq(pattern)]
            with m.If(go[i]):
                m.d.sync += pend.eq(1)
            with m.Elif(u.job.ready):
                m.d.sync += pend.eq(0)
            m.d.comb += [u.job.valid.eq(pend), u.job.payload.seed.eq(seed_i),
                         u.job.payload.pattern.eq(pattern_i)]

        hand_job(0)
        crop_v, crop_d = Signal(), Signal.like(self.image.payload)
        m.d.sync += [crop_v.eq(self.image.valid & pix_on & in_crop), crop_d.eq(self.image.payload)]
        with m.If(crop_v & ~e0.x_in.ready):
            m.d.sync += lost.eq(1)
        m.d.comb += [self.job.ready.eq(idle_q), e0.x_in.valid.eq(crop_v), e0.x_in.payload.eq(crop_d),
                     self.image.ready.eq(pix_on)]
        with m.If(job_fire):
            m.d.sync += [pix_on.eq(1), py.eq(0), px.eq(0)]
        with m.Elif(self.image.valid & self.image.ready):
            m.d.sync += px.eq(Mux(px == IMAGE_W - 1, 0, px + 1))
            with m.If(px == IMAGE_W - 1):
                m.d.sync += py.eq(py + 1)
                with m.If(py == IMAGE_H - 1):
                    m.d.sync += pix_on.eq(0)

        # ---- class: argmax over the output layer's codes (flat index c*X*Y + ip, first on ties)
        best, best_i, have = Signal(hw), Signal(range(max(self.n_out, 2))), Signal()

        # ---- layers
        for i, u in enumerate(self.units):
            rd_by_next = at[i + 1] if i + 1 < n else None
            if hasattr(u, "x_in"):  # SbS layer engine
                if i > 0:
                    f = self.feeders[i]
                    hand_job(i)  # as engine 0's (the key is written in stage 0, long before this stage)
                    m.d.comb += f.start.eq(go[i])
                    wiring.connect(m, f.o, u.x_in)
                # output codes -> RAM i at c*X*Y + ip (they arrive IP by IP, N channels each)
                C, X, Y = self.shapes[i]
                plane = X * Y
                ch_i, ip_i = Signal(range(max(C, 2)), name=f"wc{i}"), Signal(range(max(plane, 2)), name=f"wip{i}")
                wa = Signal(range(max(self.sizes[i], 2)), name=f"wa{i}")
                fire = u.h_out.valid & u.h_out.ready
                m.d.comb += u.h_out.ready.eq(1)
                m.d.comb += [fmaps[i].wr_en.eq(fire), fmaps[i].wr_addr.eq(wa), fmaps[i].wr_data.eq(u.h_out.payload)]
                last_code = (ch_i == C - 1) & (ip_i == plane - 1)
                m.d.comb += done[i].eq(fire & last_code)
                # the write counters start at 0 and wrap to 0 with the image's last code, so the stage's
                # start (go, a decode of the scheduler) does not reach them: at 7606728 job transfer ->
                # layer 0's counter reset across the chip was the critical path (17.28 ns, 15.39 ns routing)
                with m.If(fire):
                    with m.If(last_code):
                        m.d.sync += [ch_i.eq(0), ip_i.eq(0), wa.eq(0)]
                    with m.Elif(ch_i == C - 1):
                        m.d.sync += [ch_i.eq(0), ip_i.eq(ip_i + 1), wa.eq(ip_i + 1)]
                    with m.Else():
                        m.d.sync += [ch_i.eq(ch_i + 1), wa.eq(wa + plane)]
                if i == n - 1:  # the argmax: `have` is 0 from reset and again after the image's last code
                    with m.If(fire):
                        better = ~have | (u.h_out.payload > best) | ((u.h_out.payload == best) & (wa < best_i))
                        with m.If(better):
                            m.d.sync += [best.eq(u.h_out.payload), best_i.eq(wa)]
                        m.d.sync += have.eq(~last_code)
            else:  # pooling
                with m.If(at[i]):
                    m.d.comb += [fmaps[i - 1].rd_addr.eq(u.rd_addr), fmaps[i - 1].rd_en.eq(u.rd_en)]
                m.d.comb += [u.start.eq(go[i]), u.rd_data.eq(fmaps[i - 1].rd_data), done[i].eq(u.done),
                             fmaps[i].wr_en.eq(u.wr_en), fmaps[i].wr_addr.eq(u.wr_addr), fmaps[i].wr_data.eq(u.wr_data)]
            # read port i: the next layer while it reads, else the debug path.  An SbS layer's reads are its
            # feeder's: the select is the feeder's own `busy` (flip-flops beside the map's read port), not the
            # stage flag (at 838dd54, T = 1600, seed 1: layer 5's stage flag -> feature map 4's read-address
            # select -> its read register was the critical path, 10.50 ns, 9.03 ns routing)
            if i + 1 < n and hasattr(self.units[i + 1], "x_in"):
                f = self.feeders[i + 1]
                with m.If(f.busy):
                    m.d.comb += [fmaps[i].rd_addr.eq(f.rd_addr), fmaps[i].rd_en.eq(f.rd_en)]
                with m.Else():
                    m.d.comb += [fmaps[i].rd_addr.eq(self.dbg_addr), fmaps[i].rd_en.eq(1)]
                m.d.comb += f.rd_data.eq(fmaps[i].rd_data)
            elif i + 1 < n:
                with m.If(~rd_by_next):
                    m.d.comb += [fmaps[i].rd_addr.eq(self.dbg_addr), fmaps[i].rd_en.eq(1)]
            else:
                m.d.comb += [fmaps[i].rd_addr.eq(self.dbg_addr), fmaps[i].rd_en.eq(1)]

        # ---- done: the class, once the whole image has been taken
        m.d.comb += [self.cls.valid.eq(fin & ~pix_on), self.cls.payload.eq(best_i)]
        with m.If(self.cls.valid & self.cls.ready):
            m.d.sync += [fin.eq(0), idle_q.eq(1)]
        return m


__all__ = ["NetworkAccelerator"]
