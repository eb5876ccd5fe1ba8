"""Training checkpoints: one ``.npz`` written atomically (a crash or ``kill -9`` leaves the
previous checkpoint intact).  Arrays are stored under their keys; everything else (numbers,
strings, lists, dicts) in one JSON string ``state``.  The arrays are float64 (master weights
``W{layer}``, Adam moments ``opt_m{layer}``/``opt_v{layer}``), so a resumed run continues with
exactly the same numbers."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sbs_model.atomic import atomic_path

CHECKPOINT_VERSION = 1


def save_checkpoint(path, arrays: dict, state: dict) -> None:
    """``arrays`` {name: ndarray}, ``state`` JSON-serialisable dict."""
    doc = dict(state, checkpoint_version=CHECKPOINT_VERSION)
    text = json.dumps(doc)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, state=np.array(text), **{k: np.ascontiguousarray(v) for k, v in arrays.items()})


def load_checkpoint(path) -> tuple[dict, dict]:
    """-> ``(arrays, state)``; ValueError for a file that is not a checkpoint of this version."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            state = json.loads(str(z["state"]))
            arrays = {k: np.array(z[k]) for k in z.files if k != "state"}
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"checkpoint {path}: not a readable training checkpoint ({exc})")
    if state.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {path}: version {state.get('checkpoint_version')} is not "
                         f"{CHECKPOINT_VERSION}")
    return arrays, state
