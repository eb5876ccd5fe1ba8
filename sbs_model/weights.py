"""SbS weights: initialisation, the project's ``.npz`` weight files, pytorch-sbs import.

Weights are a ``dict[layer_index, ndarray]`` with one float32 array of shape ``(S, N)`` per
``sbs`` layer (``NetworkSpec.sbs_layers()``), ``W[s, i] = p(s | i)``: every column is
non-negative and sums to 1.  ``sbspool`` layers have fixed weights and are not stored.

``.npz`` layout (read with ``allow_pickle=False``): arrays ``W{layer}`` (float32 (S, N)) and
``meta``, a 0-d unicode array holding JSON: ``format`` ("sbs-weights"), ``version`` (1),
``config_hash``, ``network`` (``NetworkSpec.to_dict()``), ``layers``, ``date`` (UTC, ISO 8601)
and every key of the ``meta`` given to :func:`save_weights` (e.g. ``formats``, ``trainer``,
``epochs``, ``seed``, ``accuracy``).
"""
from __future__ import annotations

import datetime
import gzip
import json
import re
import zipfile
from pathlib import Path

import numpy as np

from sbs_model.atomic import atomic_path
from sbs_model.network import NetworkSpec

FORMAT = "sbs-weights"
VERSION = 1
INIT_LOW, INIT_HIGH = 1.0, 1.1
COLUMN_SUM_TOLERANCE = 1e-3
_STRUCTURE_FIELDS = ("kind", "in_channels", "out_channels", "kernel", "stride", "dilation", "padding")


def normalise_columns(w) -> np.ndarray:
    """Divide every column by its sum in float64, return float32 (S, N)."""
    w64 = np.asarray(w, dtype=np.float64)
    return (w64 / w64.sum(axis=0, keepdims=True)).astype(np.float32)


def init_weights(net: NetworkSpec, seed: int) -> dict[int, np.ndarray]:
    """Fresh weights: ``U[1, 1.1]`` (float64, numpy PCG64 seeded with ``[seed, layer]``, so every
    layer's draw is independent of the others), then column-normalised -> float32 (S, N)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    out = {}
    for layer, shape in net.weight_shapes().items():
        rng = np.random.default_rng([int(seed), layer])
        out[layer] = normalise_columns(rng.uniform(INIT_LOW, INIT_HIGH, size=shape))
    return out


def check_weights(weights: dict, net: NetworkSpec, what: str = "weights") -> None:
    """ValueError naming the layer unless ``weights`` has exactly the SbS layers of ``net`` with
    the right shapes, finite non-negative values, and columns that sum to 1 within
    :data:`COLUMN_SUM_TOLERANCE` (every column is a distribution ``p(s | i)``: a layer of zeros or
    a corrupted column is refused, not evaluated)."""
    if not isinstance(weights, dict):
        raise ValueError(f"{what}: expected a dict {{layer index: (S, N) array}}")
    expected = net.weight_shapes()
    if sorted(weights) != sorted(expected):
        raise ValueError(f"{what}: layers {sorted(weights)} given, the network's SbS layers are {sorted(expected)}")
    for layer, shape in expected.items():
        check_layer_weights(weights[layer], shape, layer, what)


def check_layer_weights(w, shape, layer: int, what: str = "weights", source: str | None = None) -> np.ndarray:
    """The one validity check of one layer's weights: shape ``shape``, finite non-negative values,
    columns summing to 1 within :data:`COLUMN_SUM_TOLERANCE`; ValueError naming ``what``, the layer
    and ``source`` (a file name) otherwise.  Returns the column sums (float64)."""
    w = np.asarray(w)
    at = f"{what}: layer {layer}" + (f": {source}" if source else "")
    if w.shape != tuple(shape):
        raise ValueError(f"{at} has shape {w.shape}, the network needs (S, N) = {tuple(shape)}")
    w64 = w.astype(np.float64)
    if not np.all(np.isfinite(w64)) or np.any(w64 < 0):
        raise ValueError(f"{at} holds negative or non-finite values")
    sums = w64.sum(axis=0)
    worst = int(np.argmax(np.abs(sums - 1.0)))
    if abs(sums[worst] - 1.0) > COLUMN_SUM_TOLERANCE:
        zero = " (a layer of zeros)" if not np.any(w64) else ""
        of = f" of {source}" if source else ""
        raise ValueError(f"{what}: layer {layer}: column {worst}{of} sums to {sums[worst]:.6g}{zero}; columns must "
                         f"sum to 1 within {COLUMN_SUM_TOLERANCE:g}")
    return sums


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def save_weights(path, weights: dict, net: NetworkSpec, meta: dict | None = None) -> None:
    """Write ``weights`` of ``net`` to an ``.npz`` file atomically (float32 ``W{layer}`` arrays
    plus JSON metadata; see the module docstring)."""
    check_weights(weights, net)
    meta = dict(meta or {})
    record = {"format": FORMAT, "version": VERSION, "config_hash": net.config_hash(), "network": net.to_dict(),
              "layers": sorted(int(k) for k in weights),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    for key, value in meta.items():
        if key in ("format", "version", "config_hash", "network", "layers"):
            raise ValueError(f"meta: key {key!r} is reserved")
        record[key] = value
    try:
        text = json.dumps(record, default=_json_default)
    except TypeError as exc:
        raise ValueError(f"meta: not JSON-serialisable ({exc})")
    arrays = {f"W{layer}": np.ascontiguousarray(weights[layer], dtype=np.float32) for layer in sorted(weights)}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(text), **arrays)


def structure_mismatch(a: NetworkSpec, b: NetworkSpec) -> str | None:
    """First structural difference (input shape, layer count, kind, channels, kernel, stride,
    dilation, padding) between two networks as text, or None.  Spikes, eps and trainability do
    not change which weights fit."""
    if tuple(a.input_shape) != tuple(b.input_shape):
        return f"input_shape {tuple(a.input_shape)} vs {tuple(b.input_shape)}"
    if len(a.layers) != len(b.layers):
        return f"{len(a.layers)} vs {len(b.layers)} layers"
    for i, (la, lb) in enumerate(zip(a.layers, b.layers)):
        for f in _STRUCTURE_FIELDS:
            if getattr(la, f) != getattr(lb, f):
                return f"layer {i} field '{f}' {getattr(la, f)!r} vs {getattr(lb, f)!r}"
    return None


def load_weights(path, net: NetworkSpec | None = None, strict: bool = False):
    """Read an ``.npz`` weight file -> ``(weights, meta)``.

    With ``net``: the file's network must have the same structure (layers, channels, kernels,
    strides, input shape) -- a differing number of spikes or eps is fine -- and, with
    ``strict=True``, the same ``config_hash``.  ``meta['config_hash_matches']`` tells which."""
    path = Path(path)
    if path.is_file() and not zipfile.is_zipfile(path):
        raise ValueError(f"weights: {path} is not a readable .npz file: not a zip archive of arrays (expected "
                         f"the W<layer> arrays and meta record that sbs train writes)")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = dict(z)
    except FileNotFoundError:
        raise ValueError(f"weights: {path} does not exist")
    except Exception as exc:
        raise ValueError(f"weights: {path} is not a readable .npz file ({exc})")
    if "meta" not in files:
        raise ValueError(f"weights: {path} has no 'meta' record (not an sbs-weights file)")
    try:
        meta = json.loads(str(files.pop("meta")))
    except json.JSONDecodeError as exc:
        raise ValueError(f"weights: {path}: corrupt metadata ({exc})")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"weights: {path} is format {meta.get('format')!r} version {meta.get('version')!r}; "
                         f"expected {FORMAT!r} version {VERSION}")
    weights = {}
    for key, arr in files.items():
        m = re.fullmatch(r"W(\d+)", key)
        if not m:
            raise ValueError(f"weights: {path}: unexpected array {key!r}")
        weights[int(m.group(1))] = np.asarray(arr, dtype=np.float32)
    saved_net = NetworkSpec.from_dict(meta["network"])
    check_weights(weights, saved_net, what=f"weights {path}")
    if net is not None:
        diff = structure_mismatch(saved_net, net)
        if diff:
            raise ValueError(f"weights: {path} was saved for a different network ({diff})")
        matches = meta["config_hash"] == net.config_hash()
        if strict and not matches:
            raise ValueError(f"weights: {path} has config hash {meta['config_hash']}, the network has "
                             f"{net.config_hash()} (strict check)")
        meta["config_hash_matches"] = matches
    return weights, meta


def _pytorch_sbs_files(directory: Path) -> dict[tuple[int, int], Path]:
    """(layer, epoch) -> file for every ``Weight_L{layer}_S{epoch}.npy[.gz]`` in ``directory``."""
    found = {}
    for p in directory.iterdir():
        m = re.fullmatch(r"Weight_L(\d+)_S(\d+)\.npy(\.gz)?", p.name)
        if m:
            key = (int(m.group(1)), int(m.group(2)))
            if key not in found or not m.group(3):
                found[key] = p
    return found


def _load_npy(p: Path) -> np.ndarray:
    try:
        if p.suffix == ".gz":
            with gzip.open(p, "rb") as f:
                return np.load(f, allow_pickle=False)
        return np.load(p, allow_pickle=False)
    except Exception as exc:
        raise ValueError(f"weights: {p} is not a readable .npy file ({exc})")


def import_pytorch_sbs(directory, net: NetworkSpec, epoch: int | None = None) -> dict[int, np.ndarray]:
    """pytorch-sbs ``Weight_L{layer}_S{epoch}.npy`` (or ``.npy.gz``) files -> weights.

    ``epoch=None`` takes the latest epoch for which every SbS layer has a file.  Every array
    must have the (S, N) shape of its layer, no negative or non-finite value, and columns
    summing to 1 within 1e-3; it is then renormalised (float64 division, stored float32)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"weights: {directory} is not a directory")
    files = _pytorch_sbs_files(directory)
    layers = net.sbs_layers()
    if epoch is None:
        complete = [e for e in sorted({e for _, e in files}) if all((l, e) in files for l in layers)]
        if not complete:
            raise ValueError(f"weights: {directory} has no epoch with Weight_L{{layer}}_S{{epoch}}.npy files for "
                             f"all SbS layers {layers}")
        epoch = complete[-1]
    out = {}
    for layer in layers:
        if (layer, epoch) not in files:
            raise ValueError(f"weights: layer {layer}: {directory / f'Weight_L{layer}_S{epoch}.npy'} is missing")
        p = files[(layer, epoch)]
        w = _load_npy(p)
        sums = check_layer_weights(w, net.weight_shapes()[layer], layer, source=p.name)
        out[layer] = (w.astype(np.float64) / sums).astype(np.float32)
    return out


def latest_pytorch_sbs_epoch(directory, net: NetworkSpec) -> int | None:
    """The epoch :func:`import_pytorch_sbs` picks by default, or None."""
    files = _pytorch_sbs_files(Path(directory))
    complete = [e for e in sorted({e for _, e in files}) if all((l, e) in files for l in net.sbs_layers())]
    return complete[-1] if complete else None


def load_any(spec, net: NetworkSpec):
    """``spec``: an ``.npz`` weight file or a pytorch-sbs directory -> ``(weights, meta)``."""
    path = Path(spec)
    if path.is_dir():
        epoch = latest_pytorch_sbs_epoch(path, net)
        weights = import_pytorch_sbs(path, net, epoch)
        return weights, {"source": str(path), "trainer": "pytorch-sbs", "epoch": epoch,
                         "config_hash": net.config_hash(), "config_hash_matches": True}
    if path.is_file():
        return load_weights(path, net)
    raise ValueError(f"weights: {spec!r} is neither an .npz weight file nor a pytorch-sbs directory")
