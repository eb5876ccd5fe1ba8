"""Design-space exploration (``sbs explore``): grid files, resumable sweeps, Pareto fronts, plots.

* :mod:`.grid`: grid TOML -> :class:`~.grid.Grid` of :class:`~.grid.Point` (cartesian product + explicit points)
* :mod:`.runner`: resumable evaluation of every (point, seed), results.json / results.csv
* :mod:`.pareto`: non-dominated points (fewer bits / LUTs, higher accuracy)
* :mod:`.plots`: accuracy vs weight bits / memory / LUTs, vs spikes, vs noise, per-layer sensitivity
"""
from sbs_model.explore.grid import Grid, Point, load_grid, parse_grid

__all__ = ["Grid", "Point", "load_grid", "parse_grid"]
