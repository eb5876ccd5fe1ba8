"""Loading networks: built-in presets now; native JSON and pytorch-sbs directories are parsed by
:mod:`sbs_model.config_files` (see docs/formats.md, "Configs")."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from sbs_model import config_files
from sbs_model.network import NetworkSpec, reference_mnist

PRESETS = {"reference-mnist": reference_mnist}


def with_spikes(net: NetworkSpec, spikes) -> NetworkSpec:
    """Copy of ``net`` with ``spikes`` (an int, or one per SbS layer) spikes per IP."""
    if spikes is None:
        return net
    sbs = [i for i, l in enumerate(net.layers) if l.is_sbs]
    if isinstance(spikes, int):
        spikes = [spikes] * len(sbs)
    if len(spikes) != len(sbs):
        raise ValueError(f"spikes: expected one value or {len(sbs)} (one per SbS layer), got {len(spikes)}")
    layers = list(net.layers)
    for i, t in zip(sbs, spikes):
        layers[i] = dataclasses.replace(layers[i], spikes=int(t))
    return NetworkSpec(net.input_shape, tuple(layers), net.name, net.meta)


def load_network(config, spikes=None) -> NetworkSpec:
    """``config``: preset name, native JSON file, or pytorch-sbs directory -> NetworkSpec."""
    if isinstance(config, NetworkSpec):
        return with_spikes(config, spikes)
    if config in PRESETS:
        return with_spikes(PRESETS[config](), spikes)
    path = Path(config)
    if not path.exists():
        raise ValueError(f"config: {config!r} is neither a preset ({', '.join(PRESETS)}) nor an existing path")
    return with_spikes(config_files.load(path), spikes)
