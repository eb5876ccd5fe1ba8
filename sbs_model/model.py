"""``Model``: SbS float inference on the numba golden kernels (:mod:`sbs_model.kernels_cpu`).

Inputs ``x`` are preprocessed images, float ``(n, C, H, W)`` equal to ``net.input_shape`` per
image (:func:`sbs_model.data.preprocess` gives them), finite and non-negative.  ``dtype``
``float32`` (fast mode) or ``float64`` (equal bit for bit to :mod:`sbs_model.float_ref`).
Spike draws are keyed by ``(seed, pattern, layer, ip, spike)`` with ``pattern`` the global index
of the image (``first_pattern + row``), so splitting a dataset into batches changes nothing.
"""
from __future__ import annotations


import numpy as np

from sbs_model import kernels_cpu
from sbs_model.data import preprocess
from sbs_model.evaluation import Z95, accuracy_loop, check_inputs, check_uint, wilson_interval  # noqa: F401
from sbs_model.float_ref import layer_weights, resolve_dtype
from sbs_model.loader import load_net_and_weights
from sbs_model.network import NetworkSpec
from sbs_model.unfold import pool

class Model:
    """SbS network + weights ready for inference.

    ``weights``: ``dict[layer_index, (S, N) array]`` for every ``sbs`` layer (``sbspool`` layers
    use their fixed weights).  ``seed``: spike random key, integer in [0, 2**32)."""

    def __init__(self, net: NetworkSpec, weights: dict, dtype="float32", seed: int = 0):
        if not isinstance(net, NetworkSpec):
            raise ValueError(f"net must be a NetworkSpec, got {type(net).__name__}")
        if not isinstance(weights, dict):
            raise ValueError("weights must be a dict {layer_index: (S, N) array}")
        self.net = net
        self.dtype = resolve_dtype(dtype)
        self.seed = check_uint(seed, "seed")
        self.weights = {}
        for li, layer in enumerate(net.layers):
            if layer.kind == "sbs":
                w = layer_weights(net, weights, li, np.float64)
                if not np.all(np.isfinite(w)) or np.any(w < 0):
                    raise ValueError(f"weights: layer {li} must be finite and non-negative")
                self.weights[li] = np.asarray(weights[li])
        self._wcache = {li: layer_weights(net, self.weights, li, self.dtype)
                        for li, l in enumerate(net.layers) if l.is_sbs}

    @classmethod
    def load(cls, config="reference-mnist", weights_spec=None, spikes=None, dtype="float32", seed: int = 0):
        """Network from a preset / JSON / pytorch-sbs directory, weights from an ``.npz`` file or a
        pytorch-sbs directory (:func:`sbs_model.weights.load_any`)."""
        net, weights, meta = load_net_and_weights(config, weights_spec, spikes)
        model = cls(net, weights, dtype=dtype, seed=seed)
        model.meta = meta
        return model

    # ------------------------------------------------------------------ inference
    def check_input(self, x, name: str = "x") -> np.ndarray:
        """Validate preprocessed images and return them as a C-contiguous working-dtype array."""
        x = np.asarray(x)
        if x.dtype.kind not in "fiu":
            raise ValueError(f"{name}: expected a real array, got dtype {x.dtype}")
        exp = tuple(self.net.input_shape)
        if x.ndim != 4 or tuple(x.shape[1:]) != exp or x.shape[0] < 1:
            raise ValueError(f"{name}: expected shape (n >= 1, {', '.join(map(str, exp))}), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name}: contains NaN or infinite values")
        if np.any(x < 0):
            raise ValueError(f"{name}: contains negative values (SbS inputs must be >= 0)")
        return np.ascontiguousarray(x.astype(self.dtype))

    def trace(self, x, first_pattern: int = 0) -> list[np.ndarray]:
        """Every layer's output ``(n, N, H_out, W_out)`` (SbS layers: final h; pooling: pooled h)."""
        x = self.check_input(x)
        first_pattern = check_uint(first_pattern, "first_pattern", 2 ** 32 - x.shape[0] + 1)
        outs = []
        for li, layer in enumerate(self.net.layers):
            if layer.is_sbs:
                x = kernels_cpu.run_sbs_layer(x, layer, self._wcache[li], li, self.seed, first_pattern)
            else:
                x = pool(x, layer)
            outs.append(x)
        return outs

    def forward(self, x, first_pattern: int = 0) -> np.ndarray:
        """Final h of the output layer, ``(n, N_out)`` in the working dtype."""
        out = self.trace(x, first_pattern)[-1]
        return out.reshape(out.shape[0], -1)

    def predict(self, x, first_pattern: int = 0) -> np.ndarray:
        """Classes: argmax of the final h (first maximum on ties), int64 ``(n,)``."""
        return np.argmax(self.forward(x, first_pattern), axis=1)

    def evaluate(self, images, labels, batch: int = 200, progress: bool = True, first_pattern: int = 0,
                 crop: str = "center") -> dict:
        """Accuracy on uint8 images ``(n, 28, 28)`` with integer labels ``(n,)``.

        Returns ``accuracy`` (fraction), ``ci95`` (Wilson 95 % interval, fractions), ``n``,
        ``correct``, ``seconds`` (wall clock, preprocessing included) and ``ms_per_pattern``."""
        images, labels = check_inputs(images, labels, batch)
        c, size, _ = self.net.input_shape

        def predict(start, stop):
            x = preprocess(images[start:stop], crop=crop, size=size, onoff=(c == 2))
            return self.predict(x, first_pattern + start)

        res = accuracy_loop(images.shape[0], batch, predict, labels, progress, "eval")
        return dict(res, dtype=np.dtype(self.dtype).name, seed=self.seed,
                    spikes=[l.spikes for l in self.net.layers if l.is_sbs])
