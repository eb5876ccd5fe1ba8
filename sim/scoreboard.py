"""Scoreboard: compare observed integers (from a simulation) with the model's, exactly (``==``).

``check(observed, expected, width)`` raises :class:`ScoreboardMismatch` naming the first mismatch
(index, both values in hex and as ``width``-bit patterns, how many items differ in total) or a
count mismatch; :class:`Scoreboard` collects items incrementally (e.g. from a monitor callback).
"""
from __future__ import annotations


class ScoreboardMismatch(AssertionError):
    """Observed != expected; ``index`` is the first differing position (or -1 for a count error)."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


def _bits(v: int, width: int) -> str:
    if v < 0:
        return f"-{_bits(-v, width)}"
    return format(v, f"0{width}b")


def check(observed, expected, width: int, name: str = "output") -> int:
    """Compare two integer sequences with ``==``; returns the number of items checked."""
    obs = [int(v) for v in observed]
    exp = [int(v) for v in expected]
    n = min(len(obs), len(exp))
    bad = [i for i in range(n) if obs[i] != exp[i]]
    if bad:
        i = bad[0]
        raise ScoreboardMismatch(
            f"{name}: {len(bad)} of {n} items differ; first at index {i}: "
            f"observed {obs[i]:#x} = {_bits(obs[i], width)}, "
            f"expected {exp[i]:#x} = {_bits(exp[i], width)}", i)
    if len(obs) != len(exp):
        raise ScoreboardMismatch(f"{name}: observed {len(obs)} items, expected {len(exp)}", -1)
    return n


class Scoreboard:
    """Incremental form: ``expect(values)``, ``observe(value)``, then ``check()``."""

    def __init__(self, width: int, name: str = "output"):
        self.width = width
        self.name = name
        self.expected: list[int] = []
        self.observed: list[int] = []

    def expect(self, values) -> None:
        self.expected.extend(int(v) for v in values)

    def observe(self, value) -> None:
        self.observed.append(int(value))

    def check(self) -> int:
        return check(self.observed, self.expected, self.width, self.name)
