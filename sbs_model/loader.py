"""Loading a trained model: the one place that turns a network spec and a weight source into
``(net, weights, meta)``.

* :func:`load_net_and_weights` -- network from a preset / native JSON / pytorch-sbs directory plus
  weights from an ``.npz`` file or a pytorch-sbs directory; :meth:`sbs_model.model.Model.load` and
  :meth:`sbs_model.quant.QuantizedModel.load` both call it.
* :func:`shipped_model` / :func:`load_model` -- the project's trained MNIST model shipped as
  package data (``sbs_model/models/reference-mnist.npz``), or another weight file / directory with
  the network stored alongside it (``sbs eval`` and ``sbs demo`` use these).
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from sbs_model.configs import load_network
from sbs_model.network import NetworkSpec
from sbs_model.weights import load_any, load_weights

SHIPPED_MODEL = "models/reference-mnist.npz"  # inside the sbs_model package


def load_net_and_weights(config="reference-mnist", weights_spec=None, spikes=None):
    """``(net, weights, meta)``: ``net`` from ``config`` (with ``spikes`` per IP when given),
    weights via :func:`sbs_model.weights.load_any`.  ValueError without ``weights_spec``."""
    net = load_network(config, spikes=spikes)
    if weights_spec is None:
        raise ValueError("weights_spec: required (an .npz weight file or a pytorch-sbs directory)")
    weights, meta = load_any(weights_spec, net)
    return net, weights, meta


def shipped_model_path() -> Path:
    """Path of the project's trained model inside the installed package (may not exist)."""
    return Path(str(files("sbs_model") / SHIPPED_MODEL))


def weights_or_shipped(weights_spec, name: str = "--weights"):
    """``weights_spec`` as given, or (``None``) the path of the shipped model; ValueError naming
    ``name`` when that is not installed."""
    if weights_spec is not None:
        return weights_spec
    path = shipped_model_path()
    if not path.is_file():
        raise ValueError(f"{name}: the shipped model {path} is not installed; pass an .npz weight file or a "
                         "pytorch-sbs directory")
    return path


def load_npz_model(path):
    """``(net, weights, meta)`` of an ``.npz`` weight file; the network is the one stored in it."""
    weights, meta = load_weights(path)
    return NetworkSpec.from_dict(meta["network"]), weights, meta


def shipped_model():
    """The project's trained MNIST model shipped as package data -> ``(net, weights, meta)``.

    ``net`` is the network stored in the file (:meth:`NetworkSpec.from_dict` of ``meta['network']``),
    ``weights`` ``{layer: float32 (S, N)}``, ``meta`` the file's JSON record (accuracy etc.).
    ValueError when the file is not installed."""
    path = shipped_model_path()
    if not path.is_file():
        raise ValueError(f"weights: the shipped model sbs_model/{SHIPPED_MODEL} is not installed in this "
                         f"checkout ({path}); pass --weights (an .npz file or a pytorch-sbs directory)")
    return load_npz_model(path)


def load_model(weights_spec=None):
    """``(net, weights, meta)`` from the shipped model (``None``), an ``.npz`` weight file, or a
    pytorch-sbs directory (network: its ``network.json``, else ``reference-mnist``)."""
    if weights_spec is None:
        net, weights, meta = shipped_model()
        meta = dict(meta, source=f"shipped: sbs_model/{SHIPPED_MODEL}")
        return net, weights, meta
    path = Path(weights_spec).expanduser()
    if path.is_file():
        net, weights, meta = load_npz_model(path)
        return net, weights, dict(meta, source=str(path))
    if path.is_dir():
        net = load_network(path if (path / "network.json").is_file() else "reference-mnist")
        weights, meta = load_any(path, net)
        return net, weights, dict(meta, source=str(path))
    raise ValueError(f"--weights: {weights_spec!r} is neither an .npz weight file nor a pytorch-sbs directory")


def default_spikes(net, meta: dict) -> int:
    """Spikes per IP when ``--spikes`` is not given: the evaluation T the model was trained for
    (``meta['eval_spikes']`` or ``meta['settings']['eval_spikes']``), else the network's first SbS
    layer's."""
    for cand in (meta.get("eval_spikes"), (meta.get("settings") or {}).get("eval_spikes")):
        if isinstance(cand, int) and cand >= 1:
            return cand
    return int(net.layers[net.sbs_layers()[0]].spikes)


def add_model_arguments(p) -> None:
    """``--config`` and ``--weights`` of a verb that builds from a trained model (default: the shipped one)."""
    p.add_argument("--config", default="reference-mnist",
                   help="network: preset name, native .json config or pytorch-sbs directory (default: reference-mnist)")
    p.add_argument("--weights", default=None,
                   help="trained weights: an .npz file or a pytorch-sbs directory (default: the project's trained "
                        "model shipped in the package, sbs_model/models/reference-mnist.npz)")
