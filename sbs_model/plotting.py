"""Matplotlib for files: :func:`pyplot` selects the non-interactive Agg backend before pyplot is
first imported, so plots render the same with or without a display (CLI runs, CI, workers)."""
from __future__ import annotations

import matplotlib


def pyplot(svg_hashsalt: str | None = None):
    """``matplotlib.pyplot`` on the Agg backend; ``svg_hashsalt`` makes SVG element ids deterministic."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after use(): pyplot binds the backend when first imported

    if svg_hashsalt is not None:
        plt.rcParams["svg.hashsalt"] = svg_hashsalt
    return plt
