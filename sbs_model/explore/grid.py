"""Grid files of ``sbs explore``: TOML parsing, validation, expansion into points.

A grid has a ``[base]`` table (the fixed context of every point), a ``[sweep]`` table (lists of values;
points are their cartesian product) and optional ``[[point]]`` tables (one explicit point each, scalar
values).  See docs/exploration.md for the format and an example.

A :class:`Point` is the canonical description of one evaluation without its seed: ``float`` (the float
reference), ``datapath`` (the full :class:`~fixedpoint.datapath.Datapath` dict, or None for float
points), ``layer`` (None: every SbS layer quantized; k: only layer k quantized, the others float),
``spikes`` (None: the config's), ``noise`` (input noise level, 0 = none).  Its seeds are evaluated one by
one (a *run* is a point and a seed).  Points whose datapath is invalid keep the error message and are
skipped by the runner.
"""
from __future__ import annotations

import itertools
import json
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from fixedpoint.datapath import PRESETS, Datapath
from sbs_model.hwcost import get_target

DATAPATH_FIELDS = tuple(f.name for f in fields(Datapath))
POINT_KEYS = ("datapath", "float", "layer", "spikes", "noise", "seed")
SWEEP_KEYS = DATAPATH_FIELDS + POINT_KEYS
BASE_KEYS = ("config", "weights", "data", "dataset", "n", "seeds", "datapath", "spikes", "noise", "batch",
             "lanes", "engines", "clock_mhz", "target")
TOP_KEYS = ("name", "description", "base", "sweep", "point")
BASE_DEFAULTS = {"config": "reference-mnist", "weights": None, "data": None, "dataset": "mnist", "n": None,
                 "seeds": [0], "datapath": "int-e4m1", "spikes": None, "noise": 0.0, "batch": 200, "lanes": 8,
                 "engines": 1, "clock_mhz": 100.0, "target": "xc7"}


@dataclass(frozen=True)
class Point:
    """One design point (see module docstring).  ``params`` is canonical JSON-able data; ``error`` the
    reason the point cannot run (invalid datapath), else None."""

    params: dict
    seeds: tuple
    error: str | None = None
    origin: str = "sweep"
    label: str | None = None

    @property
    def key(self) -> str:
        """Canonical text of the parameters (identity of a point within a grid)."""
        return json.dumps(self.params, sort_keys=True)

    @property
    def datapath(self) -> Datapath | None:
        d = self.params.get("datapath")
        return None if d is None else Datapath.from_dict(d)


@dataclass(frozen=True)
class Grid:
    """A parsed grid: ``base`` (defaults filled in, paths resolved), the points in file order, the
    sweep's varied keys, and the source text (its hash goes into results)."""

    name: str
    base: dict
    points: tuple
    varied: tuple
    path: str | None = None
    text: str = ""


def _resolve_path(v, root: Path | None):
    if v is None:
        return None
    s = os.path.expanduser(os.path.expandvars(str(v)))
    p = Path(s)
    if not p.is_absolute() and root is not None and (root / p).exists():
        p = root / p
    return str(p)


def _check_int(name, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"{name} {v!r} out of range {lo}..{hi}")
    return v


def _check_noise(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
        raise ValueError(f"{name} {v!r} out of range 0..1")
    return float(v)


def _check_seed(name, v):
    return _check_int(name, v, 0, 2 ** 32 - 1)


def _seed_list(name, v) -> list:
    vals = v if isinstance(v, list) else [v]
    if not vals:
        raise ValueError(f"{name}: empty list; give at least one seed 0..{2 ** 32 - 1}")
    out = [_check_seed(name, s) for s in vals]
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: repeated seeds {out}")
    return out


def _base_datapath(v) -> dict:
    """``datapath`` value: a preset name or a table of Datapath fields with an optional ``preset``."""
    if isinstance(v, str):
        return Datapath.preset(v).to_dict()
    if isinstance(v, dict):
        d = dict(v)
        preset = d.pop("preset", None)
        unknown = set(d) - set(DATAPATH_FIELDS)
        if unknown:
            raise ValueError(f"datapath: unknown field(s) {', '.join(sorted(unknown))}; allowed: preset, "
                             f"{', '.join(DATAPATH_FIELDS)}")
        out = Datapath.preset(preset).to_dict() if preset is not None else Datapath().to_dict()
        out.update(d)
        return out
    raise ValueError(f"datapath {v!r}: expected a preset name ({', '.join(PRESETS)}) or a table of fields")


def parse_base(table: dict, root: Path | None = None) -> dict:
    """``[base]`` with defaults; unknown keys raise naming the allowed ones."""
    if not isinstance(table, dict):
        raise ValueError("base: expected a table")
    unknown = set(table) - set(BASE_KEYS)
    if unknown:
        raise ValueError(f"base: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(BASE_KEYS)}")
    b = dict(BASE_DEFAULTS)
    b.update(table)
    if b["weights"] is None:
        raise ValueError("base.weights: required (an .npz weight file or a pytorch-sbs directory)")
    b["weights"] = _resolve_path(b["weights"], root)
    b["data"] = _resolve_path(b["data"], root)
    cfg = str(b["config"])
    b["config"] = cfg if cfg in ("reference-mnist",) else _resolve_path(cfg, root)
    if b["n"] is not None:
        _check_int("base.n", b["n"], 1, 10 ** 7)
    b["seeds"] = _seed_list("base.seeds", b["seeds"])
    b["datapath_dict"] = _base_datapath(b["datapath"])
    if b["spikes"] is not None:
        _check_int("base.spikes", b["spikes"], 1, 10 ** 6)
    b["noise"] = _check_noise("base.noise", b["noise"])
    _check_int("base.batch", b["batch"], 1, 10 ** 6)
    _check_int("base.lanes", b["lanes"], 1, 4096)
    _check_int("base.engines", b["engines"], 1, 65536)
    if isinstance(b["clock_mhz"], bool) or not isinstance(b["clock_mhz"], (int, float)) or \
            not 0 < b["clock_mhz"] <= 2000:
        raise ValueError(f"base.clock_mhz {b['clock_mhz']!r} out of range (0, 2000]")
    try:
        get_target(b["target"])
    except ValueError as e:
        raise ValueError(f"base.{e}") from None
    return b


def _layer_value(where, v):
    if v is None or v == "all":
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{where}.layer {v!r}: expected \"all\" or an SbS layer index >= 0")
    return v


def make_point(base: dict, values: dict, where: str, origin: str) -> Point:
    """One point from the base and a dict of scalar values (keys of ``SWEEP_KEYS``)."""
    values = dict(values)
    label = values.pop("label", None) if origin == "point" else None
    allowed = SWEEP_KEYS + (("label",) if origin == "point" else ())
    unknown = set(values) - set(SWEEP_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(allowed)}")
    if label is not None and not isinstance(label, str):
        raise ValueError(f"{where}.label {label!r}: expected a string")
    is_float = values.get("float", False)
    if not isinstance(is_float, bool):
        raise ValueError(f"{where}.float {is_float!r}: expected true or false")
    spikes = values.get("spikes", base["spikes"])
    if spikes is not None:
        _check_int(f"{where}.spikes", spikes, 1, 10 ** 6)
    noise = _check_noise(f"{where}.noise", values.get("noise", base["noise"]))
    seeds = tuple(_seed_list(f"{where}.seed", values["seed"]) if "seed" in values else base["seeds"])
    layer = _layer_value(where, values.get("layer"))
    params = {"float": is_float, "datapath": None, "layer": None if is_float else layer, "spikes": spikes,
              "noise": noise}
    error = None
    if not is_float:
        dpd = _base_datapath(values["datapath"]) if "datapath" in values else dict(base["datapath_dict"])
        for k in DATAPATH_FIELDS:
            if k in values:
                dpd[k] = values[k]
        try:
            params["datapath"] = Datapath.from_dict(dpd).to_dict()
        except (ValueError, TypeError) as e:
            error = str(e)
            params["datapath"] = dpd
        if label is None and isinstance(values.get("datapath"), str):
            label = " ".join([values["datapath"]] + [f"{k}={values[k]}" for k in DATAPATH_FIELDS if k in values])
    return Point(params, seeds, error, origin, label)


def expand(base: dict, sweep: dict, explicit: list) -> tuple[list, tuple]:
    """Points of the cartesian product of ``sweep`` (in key order), then the explicit points; duplicates
    (equal parameters) are kept once.  Float points ignore datapath keys and ``layer``."""
    if not isinstance(sweep, dict):
        raise ValueError("sweep: expected a table")
    unknown = set(sweep) - set(SWEEP_KEYS)
    if unknown:
        raise ValueError(f"sweep: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(SWEEP_KEYS)}")
    for k, v in sweep.items():
        if not isinstance(v, list) or not v:
            raise ValueError(f"sweep.{k}: expected a non-empty list of values, got {v!r}")
    keys = [k for k in sweep if k != "seed"]
    seeds = sweep.get("seed")
    points, seen = [], set()

    def add(p: Point):
        if p.key not in seen:
            seen.add(p.key)
            points.append(p)

    if sweep:
        for combo in itertools.product(*(sweep[k] for k in keys)):
            values = dict(zip(keys, combo))
            if seeds is not None:
                values["seed"] = seeds
            if values.get("float"):
                values = {k: v for k, v in values.items() if k not in DATAPATH_FIELDS + ("datapath", "layer")}
            add(make_point(base, values, "sweep", "sweep"))
    if not isinstance(explicit, list):
        raise ValueError("point: expected [[point]] tables")
    for i, pt in enumerate(explicit):
        if not isinstance(pt, dict):
            raise ValueError(f"point[{i}]: expected a table")
        for k, v in pt.items():
            if isinstance(v, list) and k != "seed":
                raise ValueError(f"point[{i}].{k}: expected one value, got a list (lists belong in [sweep])")
        add(make_point(base, pt, f"point[{i}]", "point"))
    if not points:
        add(make_point(base, {}, "base", "base"))
    varied = tuple(k for k in keys if len(sweep[k]) > 1)
    return points, varied


def parse_grid(text: str, path: str | None = None) -> Grid:
    """Parse grid TOML text (``path``: for relative paths and the default name)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"grid {path or ''}: invalid TOML: {e}") from None
    unknown = set(doc) - set(TOP_KEYS)
    if unknown:
        raise ValueError(f"grid: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(TOP_KEYS)}")
    root = Path(path).resolve().parent if path else None
    base = parse_base(doc.get("base", {}), root)
    points, varied = expand(base, doc.get("sweep", {}), doc.get("point", []))
    name = str(doc.get("name") or (Path(path).stem if path else "grid"))
    return Grid(name, base, tuple(points), varied, str(path) if path else None, text)


def load_grid(path) -> Grid:
    """Read and parse a grid file."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--grid: {path} is not a file")
    return parse_grid(p.read_text(), str(p))
