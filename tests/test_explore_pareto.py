"""Pareto frontier (lower cost, higher accuracy) against a brute-force definition."""
import numpy as np
import pytest

from sbs_model.explore.pareto import front_rows, pareto_front


def brute(costs, accs):
    out = []
    for i, (c, a) in enumerate(zip(costs, accs)):
        dominated = any((c2 <= c and a2 >= a and (c2 < c or a2 > a)) or (c2 == c and a2 == a and j < i)
                        for j, (c2, a2) in enumerate(zip(costs, accs)) if j != i)
        if not dominated:
            out.append(i)
    return sorted(out, key=lambda i: (costs[i], -accs[i]))


def test_matches_brute_force_with_ties():
    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        costs = [int(v) for v in rng.integers(0, 5, n)]
        accs = [int(v) / 4 for v in rng.integers(0, 5, n)]
        assert pareto_front(costs, accs) == brute(costs, accs), (costs, accs)


def test_known_case_and_missing_values():
    # 4-bit 0.97, 5-bit 0.99, 8-bit 0.99 (dominated by 5-bit), 4-bit 0.95 (dominated), no cost
    costs = [4, 5, 8, 4, None, float("nan")]
    accs = [0.97, 0.99, 0.99, 0.95, 1.0, 1.0]
    assert pareto_front(costs, accs) == [0, 1]
    rows = [{"c": c, "accuracy": a} for c, a in zip(costs, accs)]
    assert front_rows(rows, "c") == [rows[0], rows[1]]
    with pytest.raises(ValueError, match="3 costs but 2 accuracies"):
        pareto_front([1, 2, 3], [0.1, 0.2])


def test_plots_draw_points_at_100_percent(tmp_path):
    """A point at 300/300 has a Wilson upper bound that rounds to just below its accuracy; the
    error bars must still draw (a layer-sensitivity run on the shipped model stopped there)."""
    from sbs_model.evaluation import wilson_interval
    from sbs_model.explore.plots import plot_layers, plot_spikes

    lo, hi = wilson_interval(300, 300)
    hi = min(hi, 1.0 - 1e-12)  # the rounding that made matplotlib reject a negative error bar
    base = dict(status="ok", float=False, noise=0.0, accuracy=1.0, ci95_lo=lo, ci95_hi=hi, n=300)
    rows = [dict(base, label="e3m1", layer=li, spikes=1600) for li in (0, 2)]
    rows += [dict(base, label="e3m1", layer=None, spikes=T) for T in (400, 1600)]
    rows += [dict(base, label="float", layer=None, spikes=1600, float=True)]
    assert plot_layers(rows, tmp_path) and plot_spikes(rows, tmp_path)
    assert (tmp_path / "layer_sensitivity.png").stat().st_size > 1000
