"""Bit-exact quantized SbS inference: the plain numpy reference (slow, obviously correct).

This module *defines* the quantized model; :mod:`sbs_model.quant_nb` reproduces it bit for bit
(``==`` on every integer code).  Layer-by-layer schedule (docs/algorithm.md).

Per quantized SbS layer ``L`` (position in ``net.layers``) with datapath ``dp``, per pattern
``b`` (global index ``pattern = first_pattern + b``) and IP ``ip = oy*W_out + ox``:

1. Integer window ``u[s]`` (PyTorch unfold order, zero padding -> 0), int64:

   * input image: the raw 8-bit pixels 0..255 of the centre crop (rows/columns
     ``(28 - size)//2 ...``, the crop of :func:`sbs_model.data.preprocess`);
   * h codes of format ``F`` from the layer before (after pooling):
     ``floor(h * 2**dp.sampler_frac_bits)`` (:func:`fixedpoint.pooling.window_from_h`, trunc);
   * float h from a float layer before: first encoded into this layer's ``H``
     (``H.encode(x, dp.h_rounding, 'saturate')``), then as above.

2. ``cum = cumsum(u)`` (exact int64, total must be < 2**31), ``h = dp.initial_h(N)``.
3. For ``t = 0..T-1``: ``r = spike_random(seed, pattern, L, ip, t)``,
   ``s = sample_index_int(cum, r)``, ``h = dp.step(h, Wcodes[s], t, tables, W_L)``
   with ``(Wcodes, W_L) = dp.encode_weights(W)`` (per-layer scaled weight format ``W_L``) and
   ``tables = dp.tables(T, Schedule.from_layer(layer))``.  Ignored spikes (``A == 0``) leave h.
4. The IP's final h codes are ``out[b, :, oy, ox]`` (int64 codes of ``H``).

Pooling of codes (:mod:`fixedpoint.pooling`): average (exact sum, one rounding into the
producing layer's ``H`` with its ``h_rounding``) or max (the largest code); average pooling with
padding is refused (there is no zero code in every format).  Pooling of floats:
:func:`sbs_model.unfold.pool`.

Float layers (datapath ``None``) run the float golden model (:func:`sbs_model.float_ref.sbs_ips`
here, :func:`sbs_model.kernels_cpu.run_sbs_layer` in the numba backend) in ``float_dtype``.
Their input: the preprocessed image (``pixel/255`` + 1e-20, same crop) for the first layer,
decoded codes (``F.decode``, exact, then cast to ``float_dtype``) after a quantized layer.

The class is argmax of the output layer's h values (first index on ties).

Counters per quantized SbS layer (summed over patterns and IPs), see ``COUNTERS``:
``spikes`` (T per IP), ``ignored`` (A == 0), ``acc_overflow_spikes`` (spikes whose
accumulator overflowed), ``acc_overflows`` (sum of the step records' overflow counts: wraps or
saturation events), ``h_overflow`` / ``h_underflow`` (h elements that overflowed / underflowed
when encoded into H, summed over spikes).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fixedpoint.datapath import PRESETS, Datapath, StepRecord
from fixedpoint.pooling import pool_avg, pool_max, window_from_h
from fixedpoint.rng import sample_index_int, spike_random
from fixedpoint.schedule import Schedule, ScheduleTables
from sbs_model.data import center_crop_offset, preprocess
from sbs_model.float_ref import layer_weights, sbs_ips
from sbs_model.network import LayerSpec, NetworkSpec
from sbs_model.unfold import pool, unfold, unfold_index

COUNTERS = ("spikes", "ignored", "acc_overflow_spikes", "acc_overflows", "h_overflow", "h_underflow")
C_SPIKES, C_IGNORED, C_ACC_OVF_SPIKES, C_ACC_OVF, C_H_OVF, C_H_UNF = range(len(COUNTERS))
WINDOW_TOTAL_LIMIT = 1 << 31


# ------------------------------------------------------------------------------------------ setup
def load_datapath(spec) -> Datapath | None:
    """``Datapath``, ``None`` (float), a preset name (``fixedpoint.datapath.PRESETS``) or a path
    to a JSON file holding ``Datapath.to_dict()`` -> Datapath or None."""
    if spec is None or isinstance(spec, Datapath):
        return spec
    if isinstance(spec, (str, Path)):
        s = str(spec)
        if s in PRESETS:
            return PRESETS[s]
        p = Path(s)
        if p.suffix == ".json" or p.is_file():
            if not p.is_file():
                raise ValueError(f"datapath: file {s!r} does not exist")
            try:
                d = json.loads(p.read_text())
            except json.JSONDecodeError as e:
                raise ValueError(f"datapath: {s}: not JSON ({e})") from None
            if isinstance(d, dict) and "datapath" in d and isinstance(d["datapath"], dict):
                d = d["datapath"]
            if not isinstance(d, dict):
                raise ValueError(f"datapath: {s}: expected a JSON object of Datapath fields")
            return datapath_from_fields(d, f"datapath file {s}")
        raise ValueError(f"datapath {s!r}: not a preset ({', '.join(PRESETS)}) nor a .json file")
    raise ValueError(f"datapath: expected a Datapath, preset name, .json path or None, got {type(spec).__name__}")


def datapath_from_fields(d: dict, where: str = "datapath") -> Datapath:
    """A datapath file's object -> Datapath: ``"preset"`` (a preset name, as in exploration grids)
    plus Datapath fields that change it; without a preset every field must be given.  ``{}`` is
    an error (it would silently mean the default datapath); a value of the wrong JSON type is
    reported as a type error naming the field."""
    from dataclasses import fields

    d = dict(d)
    preset = d.pop("preset", None)
    if not d and preset is None:
        raise ValueError(f"{where}: empty object; give \"preset\": one of {', '.join(PRESETS)}, and/or Datapath "
                         f"fields")
    types = {f.name: str(f.type) for f in fields(Datapath)}
    unknown = sorted(set(d) - set(types))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: preset, {', '.join(types)}")
    for k, v in d.items():
        want_int = "int" in types[k]
        ok = (v is None and "None" in types[k]) or (
            isinstance(v, int) and not isinstance(v, bool) if want_int else isinstance(v, str))
        if not ok:
            kind = "an integer" + (" or null" if "None" in types[k] else "") if want_int else "a string"
            raise ValueError(f"{where}: field '{k}' must be {kind}, got {json.dumps(v)} ({type(v).__name__})")
    if preset is None:
        missing = [k for k in types if k not in d]
        if missing:
            raise ValueError(f"{where}: without \"preset\" every field must be given; missing "
                             f"{', '.join(missing)} (or add \"preset\": one of {', '.join(PRESETS)})")
        return Datapath.from_dict(d)
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ValueError(f"{where}: field 'preset' is {json.dumps(preset)}; allowed: {', '.join(PRESETS)}")
    return Datapath.from_dict({**PRESETS[preset].to_dict(), **d})


def weight_range_warnings(datapaths: dict, weights: dict) -> list[str]:
    """One line per quantized layer whose float weights do not all fit its weight format
    (``{layer: Datapath or None}``, ``{layer: (S, N) weights}``): under ``wrap`` each such weight
    becomes a wrong value, under ``saturate`` it is clamped -- never silent."""
    out = []
    for li, dp in sorted(datapaths.items()):
        if dp is None:
            continue
        c = dp.weight_range_counts(np.asarray(weights[li], dtype=np.float64))
        bad = c["overflow"] + c["underflow"]
        if bad:
            how = ("each wraps to a wrong value: the encoding has no range check" if dp.weight_overflow == "wrap"
                   else "each is clamped to the format's range")
            every = "; every weight of the layer is out of range" if bad == c["n"] else ""
            out.append(f"layer {li}: {bad:,} of {c['n']:,} weights outside {c['format']} ({c['overflow']:,} above "
                       f"its largest, {c['underflow']:,} below its smallest value; {how}){every}")
    return out


def resolve_datapaths(net: NetworkSpec, datapath) -> dict[int, Datapath | None]:
    """One datapath (any form of :func:`load_datapath`) for every SbS layer, or a dict
    ``{layer_index: datapath or None}``; SbS layers missing from the dict run in float."""
    sbs = [i for i, l in enumerate(net.layers) if l.is_sbs]
    if isinstance(datapath, dict):
        bad = [k for k in datapath if k not in sbs]
        if bad:
            raise ValueError(f"datapath: key(s) {bad} are not SbS layer indices; allowed: {sbs}")
        return {i: load_datapath(datapath.get(i)) for i in sbs}
    dp = load_datapath(datapath)
    return {i: dp for i in sbs}


@dataclass(frozen=True, eq=False)
class QLayer:
    """A quantized SbS layer ready to run: datapath, h format ``H``, the layer's scaled weight
    format ``W`` and weight codes ``wcodes`` ``(S, N)`` int64, schedule tables, initial h ``h0``
    ``(N,)`` int64 codes and the Newton-Raphson table ``lut``."""

    index: int
    layer: LayerSpec
    dp: Datapath
    H: object
    W: object
    wcodes: np.ndarray
    tables: ScheduleTables
    h0: np.ndarray
    lut: np.ndarray


def prepare_layer(net: NetworkSpec, weights: dict, index: int, dp: Datapath) -> QLayer:
    """Encode layer ``index``'s float weights with ``dp`` (per-layer scaled format)."""
    layer = net.layers[index]
    w = layer_weights(net, weights, index, np.float64)
    wcodes, wfmt = dp.encode_weights(w)
    _, H = dp.formats()
    tables = dp.tables(layer.spikes, Schedule.from_layer(layer))
    return QLayer(index, layer, dp, H, wfmt, np.ascontiguousarray(wcodes, dtype=np.int64), tables,
                  np.asarray(dp.initial_h(layer.out_channels), dtype=np.int64), dp.lut())


def crop_pixels(images, net: NetworkSpec) -> np.ndarray:
    """uint8 ``(n, 28, 28)`` -> uint8 ``(n, 1, size, size)``: the centre crop of
    :func:`sbs_model.data.preprocess` (offset ``(28 - size)//2``), no scaling."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[0] < 1:
        raise ValueError(f"images: expected uint8 (n >= 1, H, W), got {images.dtype} {images.shape}")
    c, size, size_w = net.input_shape
    if c != 1 or size != size_w:
        raise ValueError(f"net.input_shape {net.input_shape}: the quantized model takes one square channel "
                         f"(on/off inputs are not supported)")
    h, w = images.shape[1:]
    if size > min(h, w):
        raise ValueError(f"images: {h}x{w} is smaller than the network input {size}x{size}")
    oy, ox = center_crop_offset(size, size, h, w)
    return np.ascontiguousarray(images[:, None, oy:oy + size, ox:ox + size])


def float_input(images, net: NetworkSpec) -> np.ndarray:
    """The float model's input for the same uint8 images (:func:`sbs_model.data.preprocess`)."""
    return preprocess(np.asarray(images), crop="center", size=net.input_shape[1])


# ------------------------------------------------------------------------------------------ state
@dataclass
class Act:
    """What flows between layers: ``kind`` ``pixels`` (uint8 crop, with ``floats`` = its
    preprocessed float input), ``codes`` (int64 codes of format ``fmt``) or ``float``."""

    kind: str
    data: np.ndarray
    fmt: object = None
    floats: np.ndarray | None = None


def window_values(act: Act, ql: QLayer, kernels=None) -> np.ndarray:
    """Integer sampler window source ``(n, C, H, W)`` int64 for quantized layer ``ql``
    (``kernels``: the backend whose ``window_from_h`` converts codes; default numpy)."""
    convert = (kernels or NumpyKernels).window_from_h
    if act.kind == "pixels":
        return act.data.astype(np.int64)
    if act.kind == "codes":
        return convert(act.data, act.fmt, ql.dp.sampler_frac_bits)
    codes = ql.H.encode(np.asarray(act.data, dtype=np.float64), ql.dp.h_rounding, "saturate")
    return convert(codes, ql.H, ql.dp.sampler_frac_bits)


def float_values(act: Act, dtype) -> np.ndarray:
    """Float input ``(n, C, H, W)`` in ``dtype`` for a float layer."""
    if act.kind == "pixels":
        return np.ascontiguousarray(act.floats.astype(dtype))
    if act.kind == "codes":
        return np.ascontiguousarray(act.fmt.decode(act.data).astype(dtype))
    return np.ascontiguousarray(np.asarray(act.data).astype(dtype))


def pool_index(layer: LayerSpec, hh: int, ww: int) -> np.ndarray:
    """``(n_out, kh*kw)`` flat index into an ``hh x ww`` plane per pooling window (-1 = padding)."""
    one = LayerSpec("sbs", 1, 1, layer.kernel, layer.stride, layer.dilation, layer.padding)
    return unfold_index((1, hh, ww), one)


def check_pool(layer: LayerSpec, index: int) -> None:
    if layer.kind == "avgpool" and max(layer.padding) > 0:
        raise ValueError(f"layer {index}: average pooling of h codes with padding is not supported "
                         f"(field 'padding' must be [0, 0] for the quantized model)")
    if layer.kind == "sbspool":
        raise ValueError(f"layer {index}: not a pooling layer")


def pool_codes(codes: np.ndarray, fmt, rounding: str, layer: LayerSpec) -> np.ndarray:
    """Pool h codes ``(n, C, H, W)`` with :func:`fixedpoint.pooling.pool_avg` / ``pool_max``."""
    n, c, hh, ww = codes.shape
    ho, wo = layer.output_hw(hh, ww)
    idx = pool_index(layer, hh, ww)
    flat = codes.reshape(n * c, hh * ww)
    out = np.empty((n * c, idx.shape[0]), dtype=np.int64)
    for o in range(idx.shape[0]):
        cols = idx[o][idx[o] >= 0]
        win = flat[:, cols]
        out[:, o] = pool_avg(win, fmt, rounding) if layer.kind == "avgpool" else pool_max(win)
    return out.reshape(n, c, ho, wo)


# ------------------------------------------------------------------------------------------ one IP
def ip_spikes(window: np.ndarray, seed: int, pattern: int, layer_index: int, ip: int, T: int) -> np.ndarray:
    """Spike indices ``(T,)`` of one IP from its integer window ``(S,)``."""
    cum = np.cumsum(np.asarray(window, dtype=np.int64))
    if int(cum[-1]) >= WINDOW_TOTAL_LIMIT:
        raise ValueError(f"layer {layer_index}: integer window total {int(cum[-1])} of IP {ip} (pattern "
                         f"{pattern}) exceeds 2**31 - 1; lower sampler_frac_bits")
    r = spike_random(seed, pattern, layer_index, ip, np.arange(T, dtype=np.int64))
    return np.asarray(sample_index_int(cum, r), dtype=np.int64)


def run_ip(ql: QLayer, window: np.ndarray, seed: int, pattern: int, ip: int, record: bool = False):
    """All T spikes of one IP.  Returns ``(h codes (N,), counters (len(COUNTERS),))`` and, with
    ``record``, also ``hist`` ``(T+1, N)`` (h before the first and after every spike),
    ``records`` ``(T, REC_LEN)`` (:class:`StepRecord` arrays) and ``spikes`` ``(T,)``."""
    T = ql.layer.spikes
    spk = ip_spikes(window, seed, pattern, ql.index, ip, T)
    h = ql.h0.copy()
    cnt = np.zeros(len(COUNTERS), dtype=np.int64)
    hist = [h] if record else None
    recs = [] if record else None
    for t in range(T):
        h, rec = ql.dp.step(h, ql.wcodes[spk[t]], t, ql.tables, w_format=ql.W)
        _count(cnt, rec)
        if record:
            hist.append(h)
            recs.append(rec.to_array())
    if record:
        return h, cnt, np.array(hist, dtype=np.int64), np.array(recs, dtype=np.int64).reshape(T, -1), spk
    return h, cnt


def _count(cnt: np.ndarray, rec: StepRecord) -> None:
    cnt[C_SPIKES] += 1
    cnt[C_IGNORED] += rec.ignored
    cnt[C_ACC_OVF_SPIKES] += rec.acc_overflow > 0
    cnt[C_ACC_OVF] += rec.acc_overflow
    cnt[C_H_OVF] += rec.h_overflow
    cnt[C_H_UNF] += rec.h_underflow


def ip_window(xw: np.ndarray, layer: LayerSpec, b: int, ip: int) -> np.ndarray:
    """Integer window ``(S,)`` of IP ``ip`` of pattern ``b`` from the source ``(n, C, H, W)``."""
    idx = unfold_index(xw.shape[1:], layer)[ip]
    flat = xw[b].reshape(-1)
    return np.where(idx >= 0, flat[np.maximum(idx, 0)], 0).astype(np.int64)


# ------------------------------------------------------------------------------------------ layers
class NumpyKernels:
    """The reference backend: plain numpy loops over patterns and IPs."""

    name = "numpy"

    @staticmethod
    def window_from_h(codes, fmt, sampler_frac_bits: int) -> np.ndarray:
        """h codes -> integer sampler window values (:func:`fixedpoint.pooling.window_from_h`)."""
        return window_from_h(codes, fmt, sampler_frac_bits)

    @staticmethod
    def quant_layer(ql: QLayer, xw: np.ndarray, seed: int, first_pattern: int):
        """``xw`` ``(n, C, H, W)`` int64 window source -> ``(codes (n, N, Ho, Wo), counters)``."""
        n = xw.shape[0]
        wins = unfold(xw, ql.layer)  # (n, n_ip, S) int64, zeros in the padding
        ho, wo = ql.layer.output_hw(xw.shape[2], xw.shape[3])
        N = ql.layer.out_channels
        out = np.empty((n, N, ho * wo), dtype=np.int64)
        cnt = np.zeros(len(COUNTERS), dtype=np.int64)
        for b in range(n):
            for ip in range(wins.shape[1]):
                h, c = run_ip(ql, wins[b, ip], seed, first_pattern + b, ip)
                out[b, :, ip] = h
                cnt += c
        return out.reshape(n, N, ho, wo), cnt

    @staticmethod
    def float_layer(x: np.ndarray, layer: LayerSpec, w: np.ndarray, index: int, seed: int, first_pattern: int):
        n = x.shape[0]
        win = unfold(x, layer)
        n_ip = win.shape[1]
        pats = np.repeat(np.arange(n, dtype=np.int64) + first_pattern, n_ip)
        ips = np.tile(np.arange(n_ip, dtype=np.int64), n)
        h = sbs_ips(win.reshape(n * n_ip, -1), w, layer, index, seed, pats, ips)
        ho, wo = layer.output_hw(x.shape[2], x.shape[3])
        return np.ascontiguousarray(h.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2))

    @staticmethod
    def pool_codes(codes, fmt, rounding, layer):
        return pool_codes(codes, fmt, rounding, layer)


def forward_trace(net: NetworkSpec, qlayers: dict, float_w: dict, images, seed: int = 0, first_pattern: int = 0,
                  float_dtype=np.float32, kernels=NumpyKernels):
    """Run every layer on uint8 images ``(n, 28, 28)``.

    ``qlayers``: ``{index: QLayer}`` for quantized SbS layers; ``float_w``: ``{index: (S, N)
    float_dtype weights}`` for float SbS layers.  Returns ``(outs, kinds, fmts, counters)``:
    per layer the output array (int64 codes ``(n, N, X, Y)`` or floats), ``'codes'``/``'float'``,
    the codes' format (or None) and the counters array (or None for float/pooling layers)."""
    act = Act("pixels", crop_pixels(images, net), None, float_input(images, net))
    outs, kinds, fmts, counters = [], [], [], []
    for li, layer in enumerate(net.layers):
        cnt = None
        if layer.is_sbs and li in qlayers:
            ql = qlayers[li]
            codes, cnt = kernels.quant_layer(ql, window_values(act, ql, kernels), seed, first_pattern)
            act = Act("codes", codes, ql.H)
        elif layer.is_sbs:
            x = float_values(act, float_dtype)
            act = Act("float", kernels.float_layer(x, layer, float_w[li], li, seed, first_pattern))
        elif act.kind == "codes":
            check_pool(layer, li)
            dp = _producer_dp(qlayers, li)
            act = Act("codes", kernels.pool_codes(act.data, act.fmt, dp.h_rounding, layer), act.fmt)
        elif act.kind == "float":
            act = Act("float", pool(act.data, layer))
        else:
            raise ValueError(f"layer {li}: pooling directly on the input image is not supported by the "
                             f"quantized model")
        outs.append(act.data)
        kinds.append("codes" if act.kind == "codes" else "float")
        fmts.append(act.fmt)
        counters.append(cnt)
    return outs, kinds, fmts, counters


def _producer_dp(qlayers: dict, index: int) -> Datapath:
    """Datapath of the last quantized SbS layer before ``index`` (whose codes are pooled)."""
    prev = [i for i in qlayers if i < index]
    return qlayers[max(prev)].dp


def values(out: np.ndarray, kind: str, fmt) -> np.ndarray:
    """Layer output -> float64 values (codes decoded exactly)."""
    return fmt.decode(out) if kind == "codes" else np.asarray(out, dtype=np.float64)


def classes(out: np.ndarray, kind: str, fmt) -> np.ndarray:
    """argmax of the output layer's h values (first index on ties), int64 ``(n,)``."""
    v = values(out, kind, fmt)
    return np.argmax(v.reshape(v.shape[0], -1), axis=1).astype(np.int64)
