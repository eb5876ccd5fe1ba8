"""Network description: the in-memory form every part of the project uses.

A :class:`NetworkSpec` is an input shape ``(C, H, W)`` and a tuple of :class:`LayerSpec`.
Layer indices are positions in that tuple (pooling layers count), exactly as pytorch-sbs numbers
its ``Weight_L{i}`` files, and they are the ``layer`` key of the spike random generator.

IP numbering inside a layer (the ``ip`` key of the generator): ``ip = oy * W_out + ox``.
Receptive-field order: ``s = c*kh*kw + ky*kw + kx`` (PyTorch ``unfold``), weights ``W[s, i]``
of shape ``(S, N)`` with ``S = C_in*kh*kw``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

LAYER_KINDS = ("sbs", "avgpool", "maxpool", "sbspool")
EPS_SCHEDULES = ("inv_sqrt", "constant")


def _pair(v, name, layer):
    if isinstance(v, int):
        v = (v, v)
    try:
        a, b = (int(x) for x in v)
    except Exception:
        raise ValueError(f"layer {layer}: field '{name}' must be an int or a pair of ints, got {v!r}")
    return (a, b)


@dataclass(frozen=True)
class LayerSpec:
    """One layer.  ``kind``: ``sbs`` (an SbS layer with weights), ``avgpool``/``maxpool``
    (pooling of h), ``sbspool`` (SbS layer with fixed pooling weights, not trainable).
    ``spikes``, ``eps0``, ``eps_schedule``, ``cooldown_after`` only matter for SbS kinds.
    ``forgetting_offset`` (pytorch-sbs's ``forgetting_offset``, 0 = none): every accepted spike also
    adds ``eps_t * fo / N`` to each h and normalises by ``1 + eps_t * (1 + fo)``; only the float model
    implements it (:func:`require_no_forgetting_offset` guards the other backends)."""

    kind: str
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    spikes: int = 1600
    eps0: float = 1.0
    eps_schedule: str = "inv_sqrt"
    cooldown_after: int | None = None
    trainable: bool = True
    forgetting_offset: float = 0.0

    @property
    def is_sbs(self) -> bool:
        return self.kind in ("sbs", "sbspool")

    @property
    def window(self) -> int:
        """S = C_in * kh * kw, the length of one IP's receptive field."""
        return self.in_channels * self.kernel[0] * self.kernel[1]

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        """Output size by the PyTorch convolution formula."""
        out = []
        for size, k, s, d, p in zip((h, w), self.kernel, self.stride, self.dilation, self.padding):
            out.append((size + 2 * p - d * (k - 1) - 1) // s + 1)
        return out[0], out[1]


@dataclass(frozen=True)
class NetworkSpec:
    """A whole network: ``input_shape = (C, H, W)`` of the (cropped) input image."""

    input_shape: tuple[int, int, int]
    layers: tuple[LayerSpec, ...]
    name: str = "network"
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        validate(self)

    def shapes(self) -> list[tuple[int, int, int]]:
        """Output shape ``(N, X, Y)`` of every layer."""
        c, h, w = self.input_shape
        out = []
        for layer in self.layers:
            h, w = layer.output_hw(h, w)
            c = layer.out_channels
            out.append((c, h, w))
        return out

    def input_shapes(self) -> list[tuple[int, int, int]]:
        return [tuple(self.input_shape)] + self.shapes()[:-1]

    def sbs_layers(self) -> list[int]:
        return [i for i, l in enumerate(self.layers) if l.kind == "sbs"]

    def weight_shapes(self) -> dict[int, tuple[int, int]]:
        return {i: (self.layers[i].window, self.layers[i].out_channels) for i in self.sbs_layers()}

    def to_dict(self) -> dict:
        # forgetting_offset is written only when set, so networks without it keep their config_hash
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "layers": [
                {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(l).items()
                 if not (k == "forgetting_offset" and v == 0)}
                for l in self.layers
            ],
        }

    @staticmethod
    def from_dict(d: dict) -> "NetworkSpec":
        if not isinstance(d, dict):
            raise ValueError("network: expected an object with 'input_shape' and 'layers'")
        for key in ("input_shape", "layers"):
            if key not in d:
                raise ValueError(f"network: missing field '{key}'")
        allowed = {f.name for f in dataclasses.fields(LayerSpec)}
        layers = []
        for i, ld in enumerate(d["layers"]):
            if not isinstance(ld, dict):
                raise ValueError(f"layer {i}: expected an object")
            unknown = set(ld) - allowed
            if unknown:
                raise ValueError(f"layer {i}: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
            for req in ("kind", "in_channels", "out_channels", "kernel"):
                if req not in ld:
                    raise ValueError(f"layer {i}: missing field '{req}'")
            kw = dict(ld)
            for k in ("kernel", "stride", "dilation", "padding"):
                if k in kw:
                    kw[k] = _pair(kw[k], k, i)
            layers.append(LayerSpec(**kw))
        shape = d["input_shape"]
        if not (isinstance(shape, (list, tuple)) and len(shape) == 3):
            raise ValueError("network: field 'input_shape' must be [C, H, W]")
        return NetworkSpec(tuple(int(x) for x in shape), tuple(layers), d.get("name", "network"))

    def config_hash(self) -> str:
        """SHA-256 (hex, 16 chars) of the canonical JSON form: identifies weights' network."""
        blob = json.dumps(self.to_dict()["layers"] + [list(self.input_shape)], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def validate(net: NetworkSpec) -> None:
    """Raise ValueError naming the layer and field of the first inconsistency."""
    c, h, w = net.input_shape
    if min(c, h, w) < 1:
        raise ValueError(f"network: input_shape must be positive, got {net.input_shape}")
    if not net.layers:
        raise ValueError("network: 'layers' is empty")
    for i, l in enumerate(net.layers):
        if l.kind not in LAYER_KINDS:
            raise ValueError(f"layer {i}: field 'kind' is {l.kind!r}; allowed: {', '.join(LAYER_KINDS)}")
        if l.in_channels != c:
            raise ValueError(
                f"layer {i}: field 'in_channels' is {l.in_channels} but the previous layer gives {c} channels")
        if l.out_channels < 1:
            raise ValueError(f"layer {i}: field 'out_channels' must be >= 1, got {l.out_channels}")
        if l.kind in ("avgpool", "maxpool", "sbspool") and l.out_channels != l.in_channels:
            raise ValueError(f"layer {i}: pooling needs out_channels == in_channels ({l.in_channels})")
        for name in ("kernel", "stride", "dilation"):
            v = getattr(l, name)
            if len(v) != 2 or min(v) < 1:
                raise ValueError(f"layer {i}: field '{name}' must be two integers >= 1, got {v}")
        if len(l.padding) != 2 or min(l.padding) < 0:
            raise ValueError(f"layer {i}: field 'padding' must be two integers >= 0, got {l.padding}")
        eff = [l.dilation[j] * (l.kernel[j] - 1) + 1 for j in range(2)]
        if eff[0] > h + 2 * l.padding[0] or eff[1] > w + 2 * l.padding[1]:
            raise ValueError(f"layer {i}: field 'kernel' {l.kernel} is larger than its input {h}x{w}")
        if l.is_sbs:
            if not isinstance(l.spikes, int) or l.spikes < 1:
                raise ValueError(f"layer {i}: field 'spikes' must be an integer >= 1, got {l.spikes!r}")
            if not (l.eps0 > 0 and l.eps0 < float("inf")):
                raise ValueError(f"layer {i}: field 'eps0' must be a positive finite number, got {l.eps0!r}")
            if l.eps_schedule not in EPS_SCHEDULES:
                raise ValueError(f"layer {i}: field 'eps_schedule' is {l.eps_schedule!r}; allowed: {', '.join(EPS_SCHEDULES)}")
            if l.cooldown_after is not None and l.cooldown_after < 0:
                raise ValueError(f"layer {i}: field 'cooldown_after' must be >= 0 or null")
            fo = l.forgetting_offset
            if isinstance(fo, bool) or not isinstance(fo, (int, float)) or not 0 <= fo < float("inf"):
                raise ValueError(f"layer {i}: field 'forgetting_offset' must be a finite number >= 0, got {fo!r}")
        h, w = l.output_hw(h, w)
        c = l.out_channels
    if net.layers[-1].kind != "sbs":
        raise ValueError(f"layer {len(net.layers) - 1}: the output layer must be of kind 'sbs'")


def require_no_forgetting_offset(layer: LayerSpec, index, backend: str) -> None:
    """ValueError for a layer with a forgetting offset in a backend that does not implement it."""
    if layer.is_sbs and layer.forgetting_offset:
        raise ValueError(f"layer {index}: forgetting_offset {layer.forgetting_offset:g} is implemented only by "
                         f"the float model; {backend} does not have it (use a config with forgetting_offset 0)")


def reference_mnist(spikes: int = 1600) -> NetworkSpec:
    """The reference MNIST network of docs/algorithm.md (24x24 input)."""
    L = LayerSpec
    return NetworkSpec(
        (1, 24, 24),
        (
            L("sbs", 1, 32, (5, 5), spikes=spikes),
            L("avgpool", 32, 32, (2, 2), (2, 2)),
            L("sbs", 32, 64, (5, 5), spikes=spikes),
            L("avgpool", 64, 64, (2, 2), (2, 2)),
            L("sbs", 64, 96, (3, 3), spikes=spikes),
            L("sbs", 96, 10, (1, 1), spikes=spikes),
        ),
        name="reference-mnist",
    )
