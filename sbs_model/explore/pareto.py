"""Pareto frontier: the points no other point beats on both cost (lower is better) and accuracy
(higher is better)."""
from __future__ import annotations

import math


def pareto_front(costs, accuracies) -> list[int]:
    """Indices of the non-dominated points, sorted by cost (ties: higher accuracy first).

    A point is dominated when another has cost <= and accuracy >= with at least one strict.  Points
    with a non-finite cost or accuracy are ignored.  Equal (cost, accuracy) pairs keep the first."""
    if len(costs) != len(accuracies):
        raise ValueError(f"pareto_front: {len(costs)} costs but {len(accuracies)} accuracies")
    idx = [i for i in range(len(costs))
           if costs[i] is not None and accuracies[i] is not None
           and math.isfinite(float(costs[i])) and math.isfinite(float(accuracies[i]))]
    idx.sort(key=lambda i: (float(costs[i]), -float(accuracies[i]), i))
    front, best = [], -math.inf
    for i in idx:
        a = float(accuracies[i])
        if a > best:
            front.append(i)
            best = a
    return front


def front_rows(rows: list, cost_key: str, acc_key: str = "accuracy") -> list:
    """The rows (dicts) on the Pareto front of ``cost_key`` vs ``acc_key`` (rows lacking either are ignored)."""
    costs = [r.get(cost_key) for r in rows]
    accs = [r.get(acc_key) for r in rows]
    return [rows[i] for i in pareto_front(costs, accs)]
