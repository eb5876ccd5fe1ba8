"""Losses on the output layer's h (B, N) with integer labels (B,): ``loss(h, labels) ->
(loss summed over the batch, dL/dh (B, N))``, float64.  Registry :data:`LOSSES` by name.

* ``mixed``: ``[0.5*sum (h - t)^2 + KL(t || h)] / 1.5`` with one-hot t and 1e-20 guards in the
  logs (docs/training.md);
* ``ce``: softmax cross-entropy with h as the logits (what ``torch.nn.CrossEntropyLoss`` applied
  to h computes, as pytorch-sbs does);
* ``nll``: ``-log(h_label + 1e-20)`` (cross-entropy of the distribution h itself).

:class:`ChaoticLoss` is the optional CSBP regulariser (off by default).
"""
from __future__ import annotations

import numpy as np

GUARD = 1e-20


def _onehot(labels, n):
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 1 or labels.size and (labels.min() < 0 or labels.max() >= n):
        raise ValueError(f"labels: must be a 1-D array of class indices in 0..{n - 1}")
    t = np.zeros((labels.size, n))
    t[np.arange(labels.size), labels] = 1.0
    return t


def mixed_loss(h, labels):
    h = np.asarray(h, dtype=np.float64)
    t = _onehot(labels, h.shape[1])
    mse = 0.5 * np.sum((h - t) ** 2)
    kl = np.sum(t * (np.log(t + GUARD) - np.log(h + GUARD)))
    grad = ((h - t) - t / (h + GUARD)) / 1.5
    return float((mse + kl) / 1.5), grad


def ce_loss(h, labels):
    h = np.asarray(h, dtype=np.float64)
    t = _onehot(labels, h.shape[1])
    z = h - h.max(axis=1, keepdims=True)
    logsm = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-np.sum(t * logsm)), np.exp(logsm) - t


def nll_loss(h, labels):
    h = np.asarray(h, dtype=np.float64)
    t = _onehot(labels, h.shape[1])
    return float(-np.sum(t * np.log(h + GUARD))), -t / (h + GUARD)


LOSSES = {"mixed": mixed_loss, "ce": ce_loss, "nll": nll_loss}


def get_loss(name: str):
    if name not in LOSSES:
        raise ValueError(f"loss: unknown name {name!r}; allowed: {', '.join(LOSSES)}")
    return LOSSES[name]


class ChaoticLoss:
    """CSBP chaotic regulariser on a sigmoid of one layer's pre-normalised response.

    The response of SbS layer ``layer`` is taken before the normalisation ``sum_i h_i = 1``
    divides it by N: ``x = N * h`` (1 for the uniform h), ``s = sigmoid(x)``, and the term is
    ``-z * sum (I0*log(s) + (1 - I0)*log(1 - s))`` (1e-20 guards), whose gradient w.r.t. h is
    ``-z * N * (I0 - s)``.  ``z`` starts at ``z0`` and is multiplied by ``beta`` after every
    optimiser step, so the term decays away.  State: ``z`` (saved in checkpoints).
    """

    def __init__(self, layer: int, z0: float = 0.1, beta: float = 0.99, i0: float = 0.65):
        if not (0.0 < beta < 1.0):
            raise ValueError(f"chaotic loss: beta must be in (0, 1), got {beta}")
        if not (0.0 <= i0 <= 1.0):
            raise ValueError(f"chaotic loss: I0 must be in [0, 1], got {i0}")
        if z0 < 0:
            raise ValueError(f"chaotic loss: z0 must be >= 0, got {z0}")
        self.layer = int(layer)
        self.z = float(z0)
        self.beta = float(beta)
        self.i0 = float(i0)

    def __call__(self, h):
        """``h`` (B, N, X, Y) of the chosen layer -> (loss, dL/dh same shape)."""
        n = h.shape[1]
        x = n * np.asarray(h, dtype=np.float64)
        s = 1.0 / (1.0 + np.exp(-x))
        loss = -self.z * np.sum(self.i0 * np.log(s + GUARD) + (1.0 - self.i0) * np.log(1.0 - s + GUARD))
        return float(loss), -self.z * n * (self.i0 - s)

    def step(self):
        self.z *= self.beta

    def state(self) -> dict:
        return {"layer": self.layer, "z": self.z, "beta": self.beta, "i0": self.i0}
