"""Stop a nextpnr ``router2`` run that does not converge.

router2 routes every net at once allowing wires to be shared, then rips up and reroutes until no wire
is used twice.  Its log has one line per iteration (``iter=N wires=W overused=O overuse=U ...``):
``overuse`` is the number of excess uses of wires.  On a design that routes it falls steadily (of
the five routed whole-network runs whose logs this project kept, four set a new least overuse in
every iteration while that was at least 100 wires and the fifth missed it twice, for one iteration
each; all then crept to 0, sometimes holding at 1 or 2 for a dozen iterations); on one that does
not, it stalls and climbs again (layer 0 at 32 lanes at f0a666e: least 2,897 at iteration 22, 4,890
at 31; layer 0 on two 16-lane cores: least 1,187 at iteration 26, 5,133 at 44; layer 0 at 32 lanes
at aa4130e, seed 1: least 671 at iteration 30, 994 at 40), and router2 has no iteration limit of its
own.

:class:`RouteWatch` reads those lines and says the run has stalled when the least overuse so far is
at least ``floor`` wires and has not fallen for ``patience`` iterations.
"""
from __future__ import annotations

import re

ROUTE_PATIENCE = 10  # iterations without a new least overuse before a run is called stalled
OVERUSE_FLOOR = 100  # a least overuse below this many wires is never called stalled (the end game)
MAX_PATIENCE = 1000
_ITER = re.compile(r"\biter=(\d+)\s+wires=\d+\s+overused=\d+\s+overuse=(\d+)")


class RouteStalled(RuntimeError):
    """A router2 run stopped by :class:`RouteWatch` (a tool failure: ``sbs pnr`` exits 1 with it)."""


def check_patience(patience) -> int:
    """``patience`` as an int in ``0..MAX_PATIENCE`` (0: never stop); ValueError naming the option."""
    if isinstance(patience, bool) or not isinstance(patience, int) or not 0 <= patience <= MAX_PATIENCE:
        raise ValueError(f"--route-patience {patience!r} out of range; allowed: integer 0..{MAX_PATIENCE} "
                         f"(router2 iterations without a new least overuse; 0: never stop)")
    return patience


class RouteWatch:
    """Feed it nextpnr's output lines (:meth:`feed`); it returns a one-line reason once router2 has
    stalled, else None.  ``patience``: iterations without a new least overuse (0: never stalls);
    ``floor``: least overuse (wires) below which it never stalls."""

    def __init__(self, patience: int = ROUTE_PATIENCE, floor: int = OVERUSE_FLOOR):
        self.patience, self.floor = check_patience(patience), int(floor)
        self.trajectory: list[tuple[int, int]] = []  # (iteration, overuse) as logged
        self.best: tuple[int, int] | None = None  # (iteration, overuse) of the least overuse so far

    def feed(self, line: str) -> str | None:
        m = _ITER.search(line)
        if m is None:
            return None
        it, over = int(m.group(1)), int(m.group(2))
        self.trajectory.append((it, over))
        if self.best is None or over < self.best[1]:
            self.best = (it, over)
            return None
        b_it, b_over = self.best
        if self.patience and b_over >= self.floor and it - b_it >= self.patience:
            return (f"router2 did not converge: the least overuse, {b_over:,} wires at iteration {b_it}, did not "
                    f"fall in {it - b_it} iterations (now {over:,} at iteration {it})")
        return None


__all__ = ["RouteWatch", "RouteStalled", "check_patience", "ROUTE_PATIENCE", "OVERUSE_FLOOR", "MAX_PATIENCE"]
