"""Learning-rate schedulers, stepped once per epoch with that epoch's mean training loss.

* ``plateau`` (default): ReduceLROnPlateau, multiply lr by ``factor`` (0.1) when the loss has
  not improved by more than ``threshold`` (relative, 1e-4) for more than ``patience`` (10) epochs;
* ``step``: multiply by ``gamma`` (0.1) every ``step_size`` (30) epochs;
* ``cosine``: ``lr = eta_min + (lr0 - eta_min) * (1 + cos(pi * epoch / t_max)) / 2``;
* ``constant``.
"""
from __future__ import annotations

import math


class Constant:
    name = "constant"

    def __init__(self, lr0: float, **_):
        self.lr0 = float(lr0)
        self.lr = float(lr0)
        self.epoch = 0

    def step(self, metric: float) -> float:
        self.epoch += 1
        self.lr = self._next(metric)
        return self.lr

    def _next(self, metric):
        return self.lr

    def state(self) -> dict:
        return {k: v for k, v in vars(self).items()}

    def load_state(self, st: dict):
        for k, v in st.items():
            setattr(self, k, v)


class Plateau(Constant):
    name = "plateau"

    def __init__(self, lr0, factor=0.1, patience=10, threshold=1e-4, **_):
        super().__init__(lr0)
        self.factor, self.patience, self.threshold = float(factor), int(patience), float(threshold)
        self.best = math.inf
        self.bad = 0

    def _next(self, metric):
        if metric < self.best * (1.0 - self.threshold):
            self.best = float(metric)
            self.bad = 0
        else:
            self.bad += 1
        if self.bad > self.patience:
            self.bad = 0
            return self.lr * self.factor
        return self.lr


class Step(Constant):
    name = "step"

    def __init__(self, lr0, step_size=30, gamma=0.1, **_):
        super().__init__(lr0)
        self.step_size, self.gamma = int(step_size), float(gamma)

    def _next(self, metric):
        return self.lr0 * self.gamma ** (self.epoch // self.step_size)


class Cosine(Constant):
    name = "cosine"

    def __init__(self, lr0, t_max=200, eta_min=0.0, **_):
        super().__init__(lr0)
        self.t_max, self.eta_min = int(t_max), float(eta_min)

    def _next(self, metric):
        e = min(self.epoch, self.t_max)
        return self.eta_min + (self.lr0 - self.eta_min) * (1.0 + math.cos(math.pi * e / self.t_max)) / 2.0


SCHEDULERS = {"plateau": Plateau, "step": Step, "cosine": Cosine, "constant": Constant}


def make_scheduler(name: str, lr0: float, **kw):
    if name not in SCHEDULERS:
        raise ValueError(f"scheduler: unknown name {name!r}; allowed: {', '.join(SCHEDULERS)}")
    return SCHEDULERS[name](lr0, **kw)
