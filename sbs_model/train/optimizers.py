"""Optimisers for SbS weights (dict ``layer -> float64 (S, N)``, columns summing to 1).

Every optimiser ends its step with the projection of the spec: normalise columns, clamp to at
least ``threshold / C_in`` (``threshold`` = def.json ``learning_rate_threshold_w``, default
0.001), normalise again, so weights stay valid probabilities ``p(s | i)``.

* ``madam`` (default; docs/training.md): Adam moments (beta 0.9/0.999, eps 1e-8) and
  the multiplicative step ``W <- W * (1 + 0.5*tanh(-lr * m_hat / (sqrt(v_hat) + eps)))``;
* ``adam``: the same moments, additive step ``W <- W - lr * m_hat / (sqrt(v_hat) + eps)``;
* ``sgd``: ``W <- W - lr * grad``.

``state()`` / ``load_state()`` give plain dicts of numpy arrays and numbers (checkpoints).
"""
from __future__ import annotations

import numpy as np


def project(W: np.ndarray, floor: float) -> np.ndarray:
    """Normalise columns, clamp to >= floor, normalise again (float64)."""
    W = W / W.sum(axis=0, keepdims=True)
    W = np.maximum(W, floor)
    return W / W.sum(axis=0, keepdims=True)


class _Base:
    name = "base"

    def __init__(self, floors: dict, lr: float = 0.01, threshold: float = 0.001, **_):
        if not (lr > 0 and np.isfinite(lr)):
            raise ValueError(f"optimizer: lr must be a positive finite number, got {lr}")
        self.lr = float(lr)
        self.floors = {int(k): float(v) * threshold for k, v in floors.items()}
        self.t = 0

    def step(self, weights: dict, grads: dict) -> dict:
        self.t += 1
        out = dict(weights)
        for k, g in grads.items():
            out[k] = project(self._update(k, np.asarray(weights[k], dtype=np.float64), g), self.floors[k])
        return out

    def state(self) -> dict:
        return {"name": self.name, "lr": self.lr, "t": self.t}

    def load_state(self, st: dict):
        self.lr = float(st["lr"])
        self.t = int(st["t"])


class SGD(_Base):
    name = "sgd"

    def _update(self, k, W, g):
        return W - self.lr * g


class Adam(_Base):
    name = "adam"

    def __init__(self, floors, lr=0.01, threshold=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(floors, lr, threshold)
        self.b1, self.b2, self.eps = beta1, beta2, eps
        self.m: dict = {}
        self.v: dict = {}

    def _direction(self, k, g):
        if k not in self.m:
            self.m[k] = np.zeros_like(g)
            self.v[k] = np.zeros_like(g)
        self.m[k] = self.b1 * self.m[k] + (1.0 - self.b1) * g
        self.v[k] = self.b2 * self.v[k] + (1.0 - self.b2) * (g * g)
        m_hat = self.m[k] / (1.0 - self.b1 ** self.t)
        v_hat = self.v[k] / (1.0 - self.b2 ** self.t)
        return m_hat / (np.sqrt(v_hat) + self.eps)

    def _update(self, k, W, g):
        return W - self.lr * self._direction(k, g)

    def state(self):
        st = super().state()
        for k in self.m:
            st[f"m{k}"] = self.m[k]
            st[f"v{k}"] = self.v[k]
        return st

    def load_state(self, st):
        super().load_state(st)
        self.m = {int(k[1:]): np.array(v, dtype=np.float64) for k, v in st.items() if k.startswith("m") and k[1:].isdigit()}
        self.v = {int(k[1:]): np.array(v, dtype=np.float64) for k, v in st.items() if k.startswith("v") and k[1:].isdigit()}


class MultiplicativeAdam(Adam):
    name = "madam"

    def _update(self, k, W, g):
        return W * (1.0 + 0.5 * np.tanh(-self.lr * self._direction(k, g)))


OPTIMIZERS = {"madam": MultiplicativeAdam, "adam": Adam, "sgd": SGD}


def make_optimizer(name: str, floors: dict, lr: float = 0.01, threshold: float = 0.001, eps: float = 1e-8):
    """``floors``: layer -> 1/C_in; the clamp is ``threshold * floors[layer]``; ``eps`` is Adam's
    epsilon (the spec's 1e-8; see docs/training.md: SbS gradients of the lower layers start near 1e-12,
    far below it, so a smaller eps lets those layers learn from the first step)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer: unknown name {name!r}; allowed: {', '.join(OPTIMIZERS)}")
    if not (eps > 0 and eps < 1):
        raise ValueError(f"optimizer: eps must be in (0, 1), got {eps}")
    return OPTIMIZERS[name](floors, lr=lr, threshold=threshold, eps=eps)
