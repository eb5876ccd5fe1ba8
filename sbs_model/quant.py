"""``QuantizedModel``: bit-exact quantized SbS inference (the golden model the RTL must match).

Definition: :mod:`sbs_model.quant_ref` (plain numpy, slow); default backend
:mod:`sbs_model.quant_nb` (numba, equal bit for bit).  Inputs are uint8 images ``(n, 28, 28)``
(the quantized first layer samples the raw 8-bit pixels of the centre crop; float layers get
:func:`sbs_model.data.preprocess` of the same pixels).  Spike draws are keyed by
``(seed, pattern, layer, ip, spike)`` with ``pattern = first_pattern + row``, so splitting a
dataset into batches changes nothing.

``datapath``: one :class:`fixedpoint.datapath.Datapath` (or preset name, or JSON file) for every
SbS layer, or ``{layer_index: datapath or None}``; ``None`` (or a missing SbS layer) runs that
layer in float (golden kernels, ``float_dtype``) -- for per-layer sensitivity.

Input noise (``noise`` option, also for the float ``Model`` through :func:`add_noise`):
``x' = (1 - n) * x + n * U[0, 1)`` on pixel values ``x = pixel / 255``, one uniform per pixel of
the full 28x28 image from ``numpy.random.default_rng(SeedSequence([seed, pattern, NOISE_TAG]))``
(``pattern`` the image's global index; float64 arithmetic), mapped back to 8 bits by
``floor(255 * x' + 0.5)`` (nearest, ties up), clipped to 0..255.  The same noisy uint8 image
feeds both the integer pixel window and (for float layers) ``preprocess``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sbs_model import quant_ref
from sbs_model.evaluation import accuracy_loop, check_inputs, check_uint
from sbs_model.float_ref import layer_weights, resolve_dtype
from sbs_model.loader import load_net_and_weights
from sbs_model.network import NetworkSpec
from sbs_model.quant_nb import GenericNumbaKernels, NumbaKernels, trace_ip
from sbs_model.quant_ref import COUNTERS

NOISE_TAG = 0x6E6F6973  # "nois": keeps noise draws apart from other uses of (seed, pattern)
BACKENDS = ("numba", "numba-generic", "numpy")


def add_noise(images_uint8, level: float, seed: int = 0, first_pattern: int = 0) -> np.ndarray:
    """Input noise on uint8 images ``(n, H, W)`` -> new uint8 images (see the module docstring).

    ``level`` n in [0, 1] (0 returns a copy); image ``k`` uses pattern ``first_pattern + k``,
    so batches and backends see the same noise.  Usable for the float ``Model`` too."""
    images = np.asarray(images_uint8)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"images: expected uint8 (n, H, W), got {images.dtype} {images.shape}")
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0.0 <= level <= 1.0:
        raise ValueError(f"noise level must be a number in [0, 1], got {level!r}")
    seed = check_uint(seed, "seed")
    first_pattern = check_uint(first_pattern, "first_pattern", 2 ** 32 - images.shape[0] + 1)
    if level == 0:
        return images.copy()
    out = np.empty_like(images)
    lv = float(level)
    for k in range(images.shape[0]):
        rng = np.random.default_rng(np.random.SeedSequence([seed, first_pattern + k, NOISE_TAG]))
        u = rng.random(images.shape[1:])
        x = (1.0 - lv) * (images[k].astype(np.float64) / 255.0) + lv * u
        out[k] = np.clip(np.floor(255.0 * x + 0.5), 0, 255).astype(np.uint8)
    return out


@dataclass
class Trace:
    """Every layer's output of one run.  ``outputs[L]``: int64 codes ``(n, N, X, Y)`` (``kinds[L]
    == 'codes'``, format ``formats[L]``) or floats (``'float'``, format None); ``counters[L]``:
    dict of :data:`sbs_model.quant_ref.COUNTERS` for quantized SbS layers, else None."""

    outputs: list
    kinds: list
    formats: list
    counters: list
    meta: dict = field(default_factory=dict)

    def values(self, layer: int) -> np.ndarray:
        """Layer ``layer``'s h values as float64 (codes decoded exactly)."""
        return quant_ref.values(self.outputs[layer], self.kinds[layer], self.formats[layer])


def decode_trace(trace: Trace) -> list[np.ndarray]:
    """Every layer's values as float64 arrays (codes decoded exactly)."""
    return [trace.values(i) for i in range(len(trace.outputs))]


class QuantizedModel:
    """SbS network + weights + datapath(s), ready for bit-exact quantized inference.

    ``weights``: ``{layer_index: (S, N) float array}`` for every ``sbs`` layer; ``seed`` the spike
    key in [0, 2**32); ``float_dtype`` for layers run in float; ``backend`` ``numba`` (fast: the
    vectorised kernels where they apply), ``numba-generic`` (``step_nb`` per spike everywhere; the
    yardstick of the vectorised kernels) or ``numpy`` (the reference; slow, small networks)."""

    def __init__(self, net: NetworkSpec, weights: dict, datapath, seed: int = 0, float_dtype="float32",
                 backend: str = "numba"):
        if not isinstance(net, NetworkSpec):
            raise ValueError(f"net must be a NetworkSpec, got {type(net).__name__}")
        if not isinstance(weights, dict):
            raise ValueError("weights must be a dict {layer_index: (S, N) array}")
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r}; allowed: {', '.join(BACKENDS)}")
        self.net = net
        self.seed = check_uint(seed, "seed")
        self.float_dtype = resolve_dtype(float_dtype)
        self.backend = backend
        self.datapaths = quant_ref.resolve_datapaths(net, datapath)
        self.qlayers = {}
        self.float_w = {}
        for li, dp in self.datapaths.items():
            w = layer_weights(net, weights, li, np.float64)
            if not np.all(np.isfinite(w)) or np.any(w < 0):
                raise ValueError(f"weights: layer {li} must be finite and non-negative")
            if dp is None:
                self.float_w[li] = layer_weights(net, weights, li, self.float_dtype)
            else:
                self.qlayers[li] = quant_ref.prepare_layer(net, weights, li, dp)

    @classmethod
    def load(cls, config="reference-mnist", weights_spec=None, datapath="int-e4m1", spikes=None, seed: int = 0,
             **kw):
        """Network from a preset / JSON / pytorch-sbs directory, weights via
        :func:`sbs_model.weights.load_any`."""
        net, weights, meta = load_net_and_weights(config, weights_spec, spikes)
        model = cls(net, weights, datapath, seed=seed, **kw)
        model.meta = meta
        return model

    def _kernels(self, backend=None):
        backend = backend or self.backend
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r}; allowed: {', '.join(BACKENDS)}")
        if backend == "numpy":
            return quant_ref.NumpyKernels
        return GenericNumbaKernels if backend == "numba-generic" else NumbaKernels

    def describe(self) -> dict:
        """JSON-ready: per SbS layer the datapath text (or 'float') and the scaled weight format."""
        out = {}
        for li, dp in self.datapaths.items():
            ql = self.qlayers.get(li)
            out[str(li)] = ({"datapath": dp.to_dict(), "weight_format": ql.W.text, "h_format": ql.H.text}
                            if ql else "float")
        return out

    # ------------------------------------------------------------------ inference
    def trace(self, images, first_pattern: int = 0, noise: float = 0.0, backend=None) -> Trace:
        """Every layer's output on uint8 images ``(n, 28, 28)`` plus per-layer counters."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[0] < 1:
            raise ValueError(f"images: expected uint8 (n >= 1, H, W), got {images.dtype} {images.shape}")
        first_pattern = check_uint(first_pattern, "first_pattern", 2 ** 32 - images.shape[0] + 1)
        if noise:
            images = add_noise(images, noise, self.seed, first_pattern)
        outs, kinds, fmts, cnts = quant_ref.forward_trace(self.net, self.qlayers, self.float_w, images, self.seed,
                                                          first_pattern, self.float_dtype, self._kernels(backend))
        counters = [None if c is None else {k: int(v) for k, v in zip(COUNTERS, c)} for c in cnts]
        meta = {"kind": "quantized" if self.qlayers else "float", "seed": self.seed, "first_pattern": first_pattern,
                "n": int(images.shape[0]), "noise": float(noise), "backend": backend or self.backend,
                "datapaths": {str(k): (v.text if v is not None else None) for k, v in self.datapaths.items()},
                "float_dtype": np.dtype(self.float_dtype).name, "network": self.net.name,
                "config_hash": self.net.config_hash()}
        return Trace(outs, kinds, fmts, counters, meta)

    def trace_ip(self, images, layer: int, pattern: int, ip: int, first_pattern: int = 0, backend=None):
        """Per-spike record of one IP of quantized layer ``layer`` (``pattern`` = row of ``images``):
        ``dict(hist (T+1, N) codes, records (T, REC_LEN), spikes (T,), counters)``.  ``backend``
        selects the kernel of this IP; the layers before it run on the model's default backend."""
        if layer not in self.qlayers:
            raise ValueError(f"layer {layer}: not a quantized SbS layer; allowed: {sorted(self.qlayers)}")
        images = np.asarray(images)
        if not 0 <= pattern < images.shape[0]:
            raise ValueError(f"pattern {pattern} out of range 0..{images.shape[0] - 1}")
        ql = self.qlayers[layer]
        if layer == 0:
            act = quant_ref.Act("pixels", quant_ref.crop_pixels(images, self.net), None,
                                quant_ref.float_input(images, self.net))
        else:
            tr = self.trace(images, first_pattern)
            prev = layer - 1
            act = quant_ref.Act("codes" if tr.kinds[prev] == "codes" else "float", tr.outputs[prev], tr.formats[prev])
        xw = quant_ref.window_values(act, ql, self._kernels(backend))
        n_ip = int(np.prod(ql.layer.output_hw(xw.shape[2], xw.shape[3])))
        if not 0 <= ip < n_ip:
            raise ValueError(f"ip {ip} out of range 0..{n_ip - 1}")
        if (backend or self.backend) == "numpy":
            win = quant_ref.ip_window(xw, ql.layer, pattern, ip)
            _, cnt, hist, recs, spk = quant_ref.run_ip(ql, win, self.seed, first_pattern + pattern, ip, record=True)
        else:
            _, cnt, hist, recs, spk = trace_ip(ql, xw, pattern, ip, self.seed, first_pattern)
        return {"hist": hist, "records": recs, "spikes": spk, "counters": dict(zip(COUNTERS, map(int, cnt)))}

    def forward(self, images, first_pattern: int = 0, noise: float = 0.0) -> np.ndarray:
        """Output layer h values ``(n, N_out)`` float64 (codes decoded exactly)."""
        tr = self.trace(images, first_pattern, noise)
        v = tr.values(len(tr.outputs) - 1)
        return v.reshape(v.shape[0], -1)

    def predict(self, images_uint8, first_pattern: int = 0, noise: float = 0.0) -> np.ndarray:
        """Classes: argmax of the output layer's h values (first index on ties), int64 ``(n,)``."""
        return np.argmax(self.forward(images_uint8, first_pattern, noise), axis=1).astype(np.int64)

    def evaluate(self, images, labels, batch: int = 200, progress: bool = True, first_pattern: int = 0,
                 noise: float = 0.0) -> dict:
        """Accuracy on uint8 images ``(n, 28, 28)`` with integer labels ``(n,)``: ``accuracy``,
        ``ci95`` (Wilson, fractions), ``n``, ``correct``, ``seconds``, ``ms_per_pattern``,
        ``counters`` ``{layer: {counter: total}}`` for quantized layers, ``datapaths``."""
        images, labels = check_inputs(images, labels, batch)
        totals: dict[str, dict[str, int]] = {}

        def predict(start, stop):
            tr = self.trace(images[start:stop], first_pattern + start, noise)
            for li, c in enumerate(tr.counters):
                if c is not None:
                    d = totals.setdefault(str(li), dict.fromkeys(COUNTERS, 0))
                    for k, v in c.items():
                        d[k] += v
            last = len(tr.outputs) - 1
            return quant_ref.classes(tr.outputs[last], tr.kinds[last], tr.formats[last])

        res = accuracy_loop(images.shape[0], batch, predict, labels, progress, "eval-quant")
        return dict(res, counters=totals, seed=self.seed, noise=float(noise),
                    datapaths={str(k): (v.text if v is not None else None) for k, v in self.datapaths.items()},
                    spikes=[l.spikes for l in self.net.layers if l.is_sbs])


def overflow_warnings(counters: dict) -> list[str]:
    """Human-readable lines for every layer whose accumulator or h overflowed (never silent)."""
    lines = []
    for li, c in sorted(counters.items(), key=lambda kv: int(kv[0])):
        parts = []
        if c.get("acc_overflow_spikes"):
            parts.append(f"accumulator overflowed in {c['acc_overflow_spikes']} of {c['spikes']} spikes")
        if c.get("h_overflow"):
            parts.append(f"{c['h_overflow']} h overflows")
        if c.get("h_underflow"):
            parts.append(f"{c['h_underflow']} h underflows")
        if parts:
            lines.append(f"layer {li}: " + ", ".join(parts))
    return lines
