"""Compare two runs layer by layer: first divergence and per-layer error statistics.

A *trace file* (``.npz``, written by :func:`save_trace`) holds one run: every layer's output
(int64 codes ``(n, N, X, Y)`` of a named format, or floats), per-layer counters, metadata
(``kind`` float/quantized, datapaths, seed, first pattern, backend ...), optionally the uint8
input images and per-spike records ``hist`` ``(T+1, N)`` of selected IPs (key
``(layer, pattern, ip)``; row 0 is the initial h, row ``t+1`` h after spike ``t``).  Any
producer (float model, numpy or numba quantized model, later RTL dumps) can write one.

:func:`compare` ``(A, B)`` walks layers in order and reports the first divergence: layer,
pattern (row), IP ``ip = oy*W_out + ox``, element (channel); for codes vs codes both bit patterns
(``fmt.bits``) and, if both runs hold a per-spike record of that IP, the first spike after which
h differs.  Codes are compared as integers (``==``, same format required); anything involving
floats compares the exactly decoded values.  Statistics per layer, with A as the reference:
number of differing elements; mean and max over (pattern, IP) of the relative error of the h
vector, ``sum_i |b_i - a_i| / sum_i |a_i|`` (L1; h is a distribution, so this is at most 2 and is
not dominated by near-zero channels); max absolute error of one element; argmax agreement
(fraction of (pattern, IP) whose argmax over channels is equal; output layer: class agreement).
"""
from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fixedpoint.datapath import PRESETS
from fixedpoint.formats import parse_format
from sbs_model.atomic import write_bytes

TRACE_VERSION = 1
REL_TINY = 1e-300  # denominator guard of the relative error (an all-zero reference vector)


@dataclass
class TraceFile:
    """One run as stored in a trace file (see the module docstring)."""

    outputs: list
    kinds: list
    formats: list  # format objects (codes) or None (float)
    counters: list
    meta: dict
    spikes: dict = field(default_factory=dict)  # (layer, pattern, ip) -> hist (T+1, N)
    images: np.ndarray | None = None

    def values(self, layer: int) -> np.ndarray:
        out = self.outputs[layer]
        return self.formats[layer].decode(out) if self.kinds[layer] == "codes" else np.asarray(out, np.float64)


def from_trace(trace, images=None, spikes=None) -> TraceFile:
    """A :class:`sbs_model.quant.Trace` (+ optional images and per-spike records) -> TraceFile."""
    return TraceFile(list(trace.outputs), list(trace.kinds), [None if f is None else parse_format(f) for f in
                                                               trace.formats], list(trace.counters),
                     dict(trace.meta), dict(spikes or {}), None if images is None else np.asarray(images))


def save_trace(path, trace, images=None, spikes=None) -> None:
    """Write a run (a ``Trace`` or ``TraceFile``) to ``path`` (``.npz``, atomically)."""
    tf = trace if isinstance(trace, TraceFile) else from_trace(trace, images, spikes)
    if images is not None:
        tf.images = np.asarray(images)
    if spikes:
        tf.spikes.update(spikes)
    meta = dict(tf.meta)
    meta.update(version=TRACE_VERSION, kinds=tf.kinds, formats=[None if f is None else f.text for f in tf.formats],
                counters=tf.counters, spike_keys=[list(map(int, k)) for k in tf.spikes])
    arrays = {f"out_{i}": np.asarray(o) for i, o in enumerate(tf.outputs)}
    for j, k in enumerate(tf.spikes):
        arrays[f"spike_{j}"] = np.asarray(tf.spikes[k], dtype=np.int64)
    if tf.images is not None:
        arrays["images"] = np.asarray(tf.images, dtype=np.uint8)
    arrays["meta"] = np.array(json.dumps(meta))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes(path, buf.getvalue())


def load_trace(path) -> TraceFile:
    """Read a trace file written by :func:`save_trace` (ValueError naming the problem)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"trace file {str(path)!r} does not exist")
    try:
        z = np.load(p, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
    except Exception as e:  # not a zip / no meta / bad JSON
        raise ValueError(f"trace file {p}: not a trace file written by save_trace ({e})") from None
    if meta.get("version") != TRACE_VERSION:
        raise ValueError(f"trace file {p}: version {meta.get('version')!r}; allowed: {TRACE_VERSION}")
    kinds = meta["kinds"]
    outputs = [z[f"out_{i}"] for i in range(len(kinds))]
    formats = [None if f is None else parse_format(f) for f in meta["formats"]]
    spikes = {tuple(k): z[f"spike_{j}"] for j, k in enumerate(meta.get("spike_keys", []))}
    images = z["images"] if "images" in z.files else None
    return TraceFile(outputs, kinds, formats, meta.get("counters", [None] * len(kinds)), meta, spikes, images)


def describe_run(tf: TraceFile) -> str:
    """One line: float / quantized (preset names where a datapath equals a preset), backend, seed, n."""
    names = {dp.text: name for name, dp in reversed(list(PRESETS.items()))}
    dps = tf.meta.get("datapaths") or {}
    quant = {k: v for k, v in dps.items() if v}
    if not quant:
        desc = "float"
    else:
        used = sorted({names.get(v, "custom") for v in quant.values()})
        floats = sorted(int(k) for k, v in dps.items() if not v)
        desc = f"quantized ({', '.join(used)})" + (f", float layers {floats}" if floats else "")
    n = np.shape(tf.outputs[0])[0] if tf.outputs else 0
    return (f"{desc}, backend {tf.meta.get('backend', '?')}, seed {tf.meta.get('seed', '?')}, first pattern "
            f"{tf.meta.get('first_pattern', 0)}, {n} patterns")


# ---------------------------------------------------------------------------------------- compare
@dataclass
class Divergence:
    layer: int
    pattern: int
    ip: int
    oy: int
    ox: int
    element: int
    a_value: float
    b_value: float
    a_code: int | None = None
    b_code: int | None = None
    a_bits: str | None = None
    b_bits: str | None = None
    spike: int | None = None  # first spike t after which h differs (per-spike records of both runs)

    def text(self) -> str:
        s = (f"first divergence: layer {self.layer}, pattern {self.pattern}, IP {self.ip} (oy {self.oy}, ox "
             f"{self.ox}), element {self.element}")
        if self.spike is not None:
            s += f", after spike {self.spike}"
        a = f"A = {self.a_value!r}" + (f" (code {self.a_code}, bits {self.a_bits})" if self.a_code is not None else "")
        b = f"B = {self.b_value!r}" + (f" (code {self.b_code}, bits {self.b_bits})" if self.b_code is not None else "")
        return s + f"\n  {a}\n  {b}"


@dataclass
class LayerStats:
    layer: int
    kinds: str
    equal: bool
    n_diff: int
    n: int
    mean_rel: float
    max_rel: float
    max_abs: float
    argmax_agree: float


@dataclass
class DiffResult:
    equal: bool
    bit_exact: bool  # every layer compared codes with codes
    layers: list
    first: Divergence | None
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        lines = [f"{'layer':>5}  {'A/B':<12} {'equal':<5} {'differ':>15} {'mean rel':>9} {'max rel':>9} "
                 f"{'max abs':>9} {'argmax':>7}"]
        for s in self.layers:
            lines.append(f"{s.layer:>5}  {s.kinds:<12} {'yes' if s.equal else 'no':<5} {f'{s.n_diff}/{s.n}':>15} "
                         f"{s.mean_rel:>9.3g} {s.max_rel:>9.3g} {s.max_abs:>9.3g} {100 * s.argmax_agree:>6.1f}%")
        lines += self.notes
        lines.append(self.first.text() if self.first else "no divergence: A == B in every layer")
        return "\n".join(lines)


def _channels_last(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(np.asarray(x), 1, -1)  # (n, X, Y, N)


def compare(a: TraceFile, b: TraceFile) -> DiffResult:
    """Compare runs A (reference) and B; see the module docstring."""
    if len(a.outputs) != len(b.outputs):
        raise ValueError(f"traces have {len(a.outputs)} and {len(b.outputs)} layers; need the same network")
    layers, notes, first = [], [], None
    bit_exact = True
    for li in range(len(a.outputs)):
        xa, xb = a.outputs[li], b.outputs[li]
        if np.shape(xa) != np.shape(xb):
            raise ValueError(f"layer {li}: shapes {np.shape(xa)} and {np.shape(xb)} differ; need the same network "
                             f"and images")
        codes = a.kinds[li] == "codes" and b.kinds[li] == "codes"
        if codes and a.formats[li].text != b.formats[li].text:
            notes.append(f"layer {li}: formats differ ({a.formats[li].text} vs {b.formats[li].text}): values compared")
            codes = False
        bit_exact &= codes
        va, vb = a.values(li), b.values(li)
        diff = (xa != xb) if codes else (va != vb)
        ab = np.abs(vb - va)
        ca, cb = _channels_last(va), _channels_last(vb)
        rel = np.sum(np.abs(cb - ca), axis=-1) / np.maximum(np.sum(np.abs(ca), axis=-1), REL_TINY)
        agree = float(np.mean(np.argmax(ca, axis=-1) == np.argmax(cb, axis=-1)))
        n_diff = int(np.count_nonzero(diff))
        layers.append(LayerStats(li, f"{a.kinds[li]}/{b.kinds[li]}", n_diff == 0, n_diff, int(diff.size),
                                 float(rel.mean()), float(rel.max()), float(ab.max()), agree))
        if n_diff and first is None:
            first = _divergence(a, b, li, _channels_last(diff), codes)
    return DiffResult(first is None, bit_exact, layers, first, notes)


def _divergence(a: TraceFile, b: TraceFile, li: int, diff_cl: np.ndarray, codes: bool) -> Divergence:
    pat, oy, ox, el = (int(v) for v in np.unravel_index(int(np.argmax(diff_cl.ravel())), diff_cl.shape))
    ip = oy * diff_cl.shape[2] + ox
    va, vb = float(a.values(li)[pat, el, oy, ox]), float(b.values(li)[pat, el, oy, ox])
    d = Divergence(li, pat, ip, oy, ox, el, va, vb)
    for run, side in ((a, "a"), (b, "b")):
        if run.kinds[li] == "codes":
            c = int(run.outputs[li][pat, el, oy, ox])
            setattr(d, f"{side}_code", c)
            setattr(d, f"{side}_bits", run.formats[li].bits(c))
    key = (li, pat, ip)
    if codes and key in a.spikes and key in b.spikes:
        ha, hb = a.spikes[key], b.spikes[key]
        rows = np.nonzero(np.any(ha != hb, axis=1))[0] if ha.shape == hb.shape else np.array([0])
        if rows.size:
            d.spike = int(rows[0]) - 1  # row t+1 is h after spike t (-1: the initial h differs)
    return d
