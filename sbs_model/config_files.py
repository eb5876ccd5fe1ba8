"""Network config files -> :class:`~sbs_model.network.NetworkSpec`.

Two forms (see docs/formats.md, "Configs"):

* **pytorch-sbs directories**: ``network.json`` (required), ``def.json`` and ``dataset.json``
  (optional), JSON with ``//`` and ``/* */`` comments.  pytorch-sbs merges the three files into
  one configuration, so a key may sit in any of them (the same key in two files with different
  values is an error).
* **native single files** (``.json``): the ``NetworkSpec.to_dict()`` form plus optional
  ``"spikes"`` (one int, or one per SbS layer) and ``"meta"`` (free-form object).

Layer types (case-insensitive; pytorch-sbs matches them by prefix, so do we):
``SbS`` -> ``sbs``; ``SbS`` whose name also contains ``POOLING`` (e.g. ``"SbS POOLING"``) ->
``sbspool`` (pytorch-sbs builds an SbS layer with ``is_pooling_layer=True``, i.e. the fixed
pooling weights); ``Average POOLING`` -> ``avgpool``; ``Max POOLING`` -> ``maxpool``.
Every other pytorch-sbs layer type (``CONV2D``, ``RELU``, ``ONOFF``, ...) is rejected.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from sbs_model.atomic import write_json
from sbs_model.network import LayerSpec, NetworkSpec

PYTORCH_SBS_FILES = ("network.json", "def.json", "dataset.json")
PYTORCH_SBS_LAYER_TYPES = ("SbS", "SbS POOLING", "Average POOLING", "Max POOLING")

# data_mode -> (channels, uncropped height, uncropped width).  pytorch-sbs crops
# augmentation.crop_width_in_pixel (default 2) pixels from every border: MNIST 28 -> 24.
DATA_MODES = {
    "MNIST": (1, 28, 28),
    "FASHION_MNIST": (1, 28, 28),
    "MNIST_FASHION": (1, 28, 28),  # the spelling of older pytorch-sbs versions
    "CIFAR10": (3, 32, 32),
}
DEFAULT_CROP_WIDTH = 2
REDUCTION_COOLDOWN = 25.0  # the only cooldown factor LayerSpec supports (docs/algorithm.md)
NATIVE_KEYS = ("name", "input_shape", "layers", "spikes", "meta")


# --------------------------------------------------------------------------- JSON with comments
def strip_json_comments(text: str) -> str:
    """Remove ``//`` line comments and ``/* */`` block comments outside JSON strings.

    Newlines are kept (also inside block comments) so JSON error line numbers still point at
    the original file; ``//`` inside strings (URLs) is left alone."""
    out = []
    i, n = 0, len(text)
    in_str = False
    while i < n:
        ch = text[i]
        if in_str:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                in_str = False
            i += 1
        elif ch == '"':
            in_str = True
            out.append(ch)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                line = text.count("\n", 0, i) + 1
                raise ValueError(f"unterminated /* comment starting at line {line}")
            out.append("\n" * text.count("\n", i, j))
            i = j + 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def read_json(path) -> dict:
    """Parse a JSON file that may hold comments; errors name the file and the line."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror})")
    try:
        data = json.loads(strip_json_comments(text))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level")
    return data


# --------------------------------------------------------------------------- entry points
def load(path, input_shape=None) -> NetworkSpec:
    """Load a network from a pytorch-sbs directory (or its ``network.json``) or a native file.

    ``input_shape`` (C, H, W) overrides the shape derived from ``dataset.json`` (pytorch-sbs)
    or given in the native file."""
    path = Path(path)
    if path.is_dir():
        if not (path / "network.json").is_file():
            raise ValueError(f"config: directory {path} holds no network.json")
        return load_pytorch_sbs(path, input_shape=input_shape)
    if not path.is_file():
        raise ValueError(f"config: {path} does not exist")
    data = read_json(path)
    if "network_structure" in data:
        return load_pytorch_sbs(path.parent, input_shape=input_shape, network_file=path)
    return from_native(data, input_shape=input_shape, source=str(path))


def save_native(net: NetworkSpec, path) -> None:
    """Write ``net`` as a native single-file config (atomic).  ``net.meta`` is kept if it is
    JSON-serialisable."""
    d = net.to_dict()
    if net.meta:
        try:
            json.dumps(net.meta)
        except TypeError as exc:
            raise ValueError(f"network meta is not JSON-serialisable: {exc}")
        d["meta"] = net.meta
    write_json(path, d)


def from_native(data: dict, input_shape=None, source: str = "config") -> NetworkSpec:
    """A native config dict (``NetworkSpec.to_dict()`` form + optional ``spikes``, ``meta``)."""
    unknown = sorted(set(data) - set(NATIVE_KEYS))
    if unknown:
        raise ValueError(f"{source}: unknown top-level field(s) {unknown}; allowed: {', '.join(NATIVE_KEYS)}")
    d = dict(data)
    if input_shape is not None:
        d["input_shape"] = list(input_shape)
    _check_native_types(d, source)
    net = NetworkSpec.from_dict(d)
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise ValueError(f"{source}: field 'meta' must be an object")
    if "spikes" in data:
        net = _apply_spikes(net, data["spikes"], "spikes")
    return NetworkSpec(net.input_shape, net.layers, net.name, dict(meta, source=source))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_PAIR = ("an integer or a pair of integers", lambda v: _is_int(v) or (
    isinstance(v, list) and len(v) == 2 and all(_is_int(x) for x in v)))
NATIVE_LAYER_TYPES = {  # field -> (what it must be, check); values are range-checked afterwards
    "kind": ("a string", lambda v: isinstance(v, str)),
    "in_channels": ("an integer", _is_int), "out_channels": ("an integer", _is_int),
    "kernel": _PAIR, "stride": _PAIR, "dilation": _PAIR, "padding": _PAIR,
    "spikes": ("an integer", _is_int), "eps0": ("a number", _is_number),
    "eps_schedule": ("a string", lambda v: isinstance(v, str)),
    "cooldown_after": ("an integer or null", lambda v: v is None or _is_int(v)),
    "trainable": ("true or false", lambda v: isinstance(v, bool)),
    "forgetting_offset": ("a number", _is_number),
}


def _check_native_types(d: dict, source: str) -> None:
    """Wrong JSON types in a native config are type errors naming the layer and field (not range
    errors or tracebacks further down)."""
    shape = d.get("input_shape")
    if shape is not None and not (isinstance(shape, list) and len(shape) == 3 and all(_is_int(x) for x in shape)):
        raise ValueError(f"{source}: field 'input_shape' must be three integers [C, H, W], got {json.dumps(shape)}")
    layers = d.get("layers")
    if layers is not None and not isinstance(layers, list):
        raise ValueError(f"{source}: field 'layers' must be a list of layer objects")
    for i, layer in enumerate(layers or []):
        if not isinstance(layer, dict):
            continue  # NetworkSpec.from_dict names it
        for key, value in layer.items():
            if key in NATIVE_LAYER_TYPES:
                what, ok = NATIVE_LAYER_TYPES[key]
                if not ok(value):
                    raise ValueError(f"{source}: layer {i}: field '{key}' must be {what}, got {json.dumps(value)}")


# --------------------------------------------------------------------------- pytorch-sbs
def _merged_config(directory: Path, network_file: Path | None) -> tuple[dict, dict]:
    """Merge network.json, def.json, dataset.json (pytorch-sbs loads them into one config)."""
    files = [network_file or directory / "network.json", directory / "def.json", directory / "dataset.json"]
    merged, origin = {}, {}
    for f in files:
        if not f.is_file():
            continue
        for key, value in read_json(f).items():
            if key in merged and merged[key] != value:
                raise ValueError(f"config: field '{key}' is given differently in {origin[key]} and {f.name}")
            merged[key] = value
            origin[key] = f.name
    return merged, origin


def _layer_kind(type_name, i: int) -> str:
    if not isinstance(type_name, str):
        raise ValueError(f"layer {i}: field 'layer_type' must be a string, got {type_name!r}")
    t = type_name.strip().upper()
    if t.startswith("SBS"):
        return "sbspool" if "POOLING" in t else "sbs"
    if t.startswith("AVERAGE POOLING"):
        return "avgpool"
    if t.startswith("MAX POOLING"):
        return "maxpool"
    raise ValueError(f"layer {i}: field 'layer_type' is {type_name!r}; allowed: {', '.join(PYTORCH_SBS_LAYER_TYPES)}")


def _per_layer_list(struct: dict, key: str, n_layers: int, required: bool, default):
    """A list with one entry per layer; absent or empty -> ``default`` for every layer."""
    v = struct.get(key)
    if v is None or v == []:
        if required:
            raise ValueError(f"network.json: network_structure needs field '{key}' (one entry per layer)")
        return [default] * n_layers
    if not isinstance(v, list):
        raise ValueError(f"network.json: field '{key}' must be a list (one entry per layer)")
    if len(v) != n_layers:
        raise ValueError(f"network.json: field '{key}' has {len(v)} entries but 'layer_type' has {n_layers} layers")
    return v


def _pair_entry(v, key: str, i: int) -> tuple[int, int]:
    if isinstance(v, bool) or not (
            isinstance(v, int) or (isinstance(v, list) and len(v) == 2 and all(
                isinstance(x, int) and not isinstance(x, bool) for x in v))):
        raise ValueError(f"layer {i}: field '{key}' must be two integers [a, b], got {v!r}")
    return (v, v) if isinstance(v, int) else (v[0], v[1])


def _spikes_for_layers(value, kinds: list[str], field: str) -> dict[int, int]:
    """``number_of_spikes``: one value for all SbS layers; one per layer (indexed by layer
    position, as pytorch-sbs does; entries of pooling layers are ignored); or one per SbS layer."""
    sbs = [i for i, k in enumerate(kinds) if k in ("sbs", "sbspool")]
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValueError(f"{field} must be an integer or a non-empty list of integers, got {value!r}")
    if len(value) == 1:
        chosen = {i: value[0] for i in sbs}
    elif len(value) == len(kinds):
        chosen = {i: value[i] for i in sbs}
    elif len(value) == len(sbs):
        chosen = dict(zip(sbs, value))
    else:
        raise ValueError(f"{field} has {len(value)} entries; expected 1, {len(kinds)} (one per layer) "
                         f"or {len(sbs)} (one per SbS layer)")
    for i, t in chosen.items():
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise ValueError(f"layer {i}: {field} must be an integer >= 1, got {t!r}")
    return chosen


def _apply_spikes(net: NetworkSpec, value, field: str) -> NetworkSpec:
    chosen = _spikes_for_layers(value, [l.kind for l in net.layers], field)
    layers = tuple(dataclasses.replace(l, spikes=chosen[i]) if i in chosen else l for i, l in enumerate(net.layers))
    return NetworkSpec(net.input_shape, layers, net.name, net.meta)


def _number(cfg: dict, key: str, default, lo=None):
    v = cfg.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"config: field '{key}' must be a number, got {v!r}")
    if lo is not None and not v > lo:
        raise ValueError(f"config: field '{key}' must be > {lo}, got {v!r}")
    return v


def _input_shape(cfg: dict) -> tuple[int, int, int]:
    mode = cfg.get("data_mode", "MNIST")
    if mode not in DATA_MODES:
        raise ValueError(f"dataset.json: field 'data_mode' is {mode!r}; allowed: {', '.join(DATA_MODES)}")
    c, h, w = DATA_MODES[mode]
    aug = cfg.get("augmentation") or {}
    if not isinstance(aug, dict):
        raise ValueError("def.json: field 'augmentation' must be an object")
    crop = aug.get("crop_width_in_pixel", DEFAULT_CROP_WIDTH)
    if isinstance(crop, bool) or not isinstance(crop, int) or not 0 <= 2 * crop < min(h, w):
        raise ValueError(f"def.json: field 'augmentation.crop_width_in_pixel' must be an integer in "
                         f"[0, {(min(h, w) - 1) // 2}], got {crop!r}")
    return (c, h - 2 * crop, w - 2 * crop)


def load_pytorch_sbs(directory, input_shape=None, network_file=None) -> NetworkSpec:
    """Parse a pytorch-sbs configuration directory into a NetworkSpec.

    Mapping: ``forward_neuron_numbers[i] = [C_in, N]``, ``forward_kernel_size``, ``strides``,
    ``dilation``, ``padding`` (absent lists: pytorch-sbs defaults [1,1], [1,1], [0,0]);
    ``number_of_spikes`` (see :func:`_spikes_for_layers`); eps0 = ``epsilon_0`` (default 1), as in
    pytorch-sbs's eps schedule (``eps_xy_intitial`` only initialises its per-position factor, which is
    off; ``epsilon_xy_use: true`` is refused); ``forgetting_offset`` > 0 goes to every SbS layer's
    ``forgetting_offset`` (<= 0 or absent: none, as pytorch-sbs); ``cooldown_after_number_of_spikes``
    (< 0 or absent: none) with ``reduction_cooldown`` which must be 25; ``w_trainable`` (one value
    or one per layer; absent: trainable); input shape from ``data_mode`` (MNIST/FASHION_MNIST:
    (1, 24, 24), CIFAR10: (3, 28, 28) with the default 2-pixel crop) unless ``input_shape`` is
    given.  ``forgetting_offset``, ``data_mode``, ``batch_size``, ``epoch_id_max`` and
    ``learning_parameters`` are kept in ``NetworkSpec.meta``."""
    directory = Path(directory)
    cfg, _ = _merged_config(directory, Path(network_file) if network_file else None)
    struct = cfg.get("network_structure")
    if not isinstance(struct, dict):
        raise ValueError("network.json: missing object 'network_structure'")
    types = struct.get("layer_type")
    if not isinstance(types, list) or not types:
        raise ValueError("network.json: network_structure needs a non-empty list 'layer_type'")
    n = len(types)
    kinds = [_layer_kind(t, i) for i, t in enumerate(types)]
    neurons = _per_layer_list(struct, "forward_neuron_numbers", n, True, None)
    kernels = _per_layer_list(struct, "forward_kernel_size", n, True, None)
    strides = _per_layer_list(struct, "strides", n, False, [1, 1])
    dilations = _per_layer_list(struct, "dilation", n, False, [1, 1])
    paddings = _per_layer_list(struct, "padding", n, False, [0, 0])

    lp = cfg.get("learning_parameters") or {}
    if not isinstance(lp, dict):
        raise ValueError("def.json: field 'learning_parameters' must be an object")
    trainable = lp.get("w_trainable", cfg.get("w_trainable", [True]))
    if not isinstance(trainable, list) or len(trainable) not in (1, n) or not all(
            isinstance(x, bool) for x in trainable):
        raise ValueError(f"def.json: field 'w_trainable' must be a list of 1 or {n} booleans, got {trainable!r}")
    if len(trainable) == 1:
        trainable = trainable * n

    spikes = _spikes_for_layers(cfg.get("number_of_spikes", 1600), kinds, "def.json: field 'number_of_spikes'")
    # pytorch-sbs's eps schedule is epsilon_0 / sqrt(t+1); eps_xy_intitial only initialises its
    # per-position factor epsilon_xy, which is off unless epsilon_xy_use is set (not supported here).
    eps0 = float(_number(cfg, "epsilon_0", 1.0, lo=0))
    _number(lp, "eps_xy_intitial", 1.0, lo=0)  # type-checked, unused
    for where, d in (("def.json", cfg), ("def.json: learning_parameters", lp)):
        if d.get("epsilon_xy_use", False) is not False:
            raise ValueError(f"{where}: field 'epsilon_xy_use' is {d['epsilon_xy_use']!r}; the per-position "
                             f"eps factor epsilon_xy is not supported (allowed: false or absent)")
    forgetting = _number(cfg, "forgetting_offset", 0.0)
    if not forgetting < float("inf"):
        raise ValueError(f"def.json: field 'forgetting_offset' must be finite, got {forgetting!r}")
    forgetting = max(0.0, float(forgetting))  # pytorch-sbs applies it only when > 0
    cooldown = cfg.get("cooldown_after_number_of_spikes", -1)
    if isinstance(cooldown, bool) or not isinstance(cooldown, int):
        raise ValueError(f"def.json: field 'cooldown_after_number_of_spikes' must be an integer, got {cooldown!r}")
    cooldown = None if cooldown < 0 else cooldown
    reduction = _number(cfg, "reduction_cooldown", REDUCTION_COOLDOWN)
    if cooldown is not None and reduction != REDUCTION_COOLDOWN:
        raise ValueError(f"def.json: field 'reduction_cooldown' is {reduction}; only {REDUCTION_COOLDOWN:g} is supported")

    layers = []
    for i, kind in enumerate(kinds):
        nn = neurons[i]
        if not (isinstance(nn, list) and len(nn) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in nn)):
            raise ValueError(f"layer {i}: field 'forward_neuron_numbers' must be [C_in, N] integers, got {nn!r}")
        kw = dict(kind=kind, in_channels=nn[0], out_channels=nn[1],
                  kernel=_pair_entry(kernels[i], "forward_kernel_size", i),
                  stride=_pair_entry(strides[i], "strides", i),
                  dilation=_pair_entry(dilations[i], "dilation", i),
                  padding=_pair_entry(paddings[i], "padding", i),
                  trainable=bool(trainable[i]) and kind != "sbspool")
        if kind in ("sbs", "sbspool"):
            kw.update(spikes=spikes[i], eps0=eps0, cooldown_after=cooldown, forgetting_offset=forgetting)
        layers.append(LayerSpec(**kw))

    shape = tuple(int(x) for x in input_shape) if input_shape is not None else _input_shape(cfg)
    meta = {"source": str(directory), "format": "pytorch-sbs"}
    for key in ("forgetting_offset", "data_mode", "data_path", "batch_size", "epoch_id_max", "learning_parameters"):
        if key in cfg:
            meta[key] = cfg[key]
    n_out = struct.get("number_of_output_neurons")
    if n_out is not None and n_out != layers[-1].out_channels:
        raise ValueError(f"network.json: field 'number_of_output_neurons' is {n_out} but the last layer has "
                         f"{layers[-1].out_channels} neurons")
    name = directory.resolve().name or "pytorch-sbs"
    return NetworkSpec(shape, tuple(layers), name, meta)
