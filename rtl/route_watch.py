"""Stop a nextpnr ``router2`` run that does not converge.

router2 routes every net at once allowing wires to be shared, then rips up and reroutes until no wire
is used twice.  Its log has one line per iteration (``iter=N wires=W overused=O overuse=U ...``):
``overuse`` is the number of excess uses of wires.  On a design that routes it falls steadily (of
the five routed whole-network runs whose logs this project kept, four set a new least overuse in
every iteration while that was at least 100 wires and the fifth missed it twice, for one iteration
each; all then crept to 0, sometimes holding at 1 or 2 for a dozen iterations, at most 14 without a
new least, also with the static placer); on one that does
not, it stalls and climbs again (layer 0 at 32 lanes at f0a666e: least 2,897 at iteration 22, 4,890
at 31; layer 0 on two 16-lane cores: least 1,187 at iteration 26, 5,133 at 44; layer 0 at 32 lanes
at aa4130e, seed 1: least 671 at iteration 30, 994 at 40), and router2 has no iteration limit of its
own.  A run can also hover in the end game: today's plan with the static placer, seed 2 (bb064aa),
reached 1 wire at iteration 160 and was between 1 and 66 for the next 79 iterations, until stopped by
hand.

:class:`RouteWatch` reads those lines and says the run has stalled when the least overuse so far is
at least ``floor`` wires and has not fallen for ``patience`` iterations, or is below ``floor`` and has
not fallen for :data:`END_GAME_FACTOR` times ``patience`` iterations (50 by default: more than three
times the longest end-game hold of a run that routed).
"""
from __future__ import annotations

import re

ROUTE_PATIENCE = 10  # iterations without a new least overuse before a run is called stalled
OVERUSE_FLOOR = 100  # below this many wires (the end game) a run gets END_GAME_FACTOR x the patience
END_GAME_FACTOR = 5
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
    ``floor``: least overuse (wires) below which it gets :data:`END_GAME_FACTOR` times the patience."""

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
        end_game = b_over < self.floor
        if self.patience and it - b_it >= self.patience * (END_GAME_FACTOR if end_game else 1):
            wires = f"{b_over:,} wire{'' if b_over == 1 else 's'}"
            return (f"router2 did not converge: the least overuse, {wires} at iteration {b_it}, did not "
                    f"fall in {it - b_it} iterations (now {over:,} at iteration {it})"
                    + (f"; below {self.floor} wires a run gets {END_GAME_FACTOR} x the patience" if end_game else ""))
        return None


__all__ = ["RouteWatch", "RouteStalled", "check_patience", "ROUTE_PATIENCE", "OVERUSE_FLOOR", "END_GAME_FACTOR",
           "MAX_PATIENCE"]
