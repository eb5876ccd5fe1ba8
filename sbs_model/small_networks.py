"""Small SbS networks that exercise every layer kind of the whole-network accelerator (for tests and
benchmarks of ``sbs build`` / ``sbs cosim``), each with a plan (lanes, engines and optionally slots per SbS layer).

``SMALL_NETWORKS[name] = (NetworkSpec, plan)``; weights are the caller's (random in the tests):

* ``pad-max-avg``: padding, max pooling (stride 2), average pooling (overlapping windows, k = 4);
* ``stride-dil-avg3-maxpad``: stride 2 with padding, average pooling k = 3 (1x3), max pooling with
  padding, dilation, a fully connected tail (its last layer with more slots than its chain needs:
  the plan's ``slots`` reach the engine and the cycle model);
* ``fc2``: a two-layer fully connected network;
* ``full-image``: a first layer over the whole 28x28 image (no crop: its first pixel is the image's
  first, which reaches the first engine a cycle after its job; the cycle model counts that cycle).
"""
from __future__ import annotations

from sbs_model.network import LayerSpec as L
from sbs_model.network import NetworkSpec

SMALL_NETWORKS = {
    "pad-max-avg": (NetworkSpec((1, 8, 8), (
        L("sbs", 1, 4, (3, 3), padding=(1, 1), spikes=4),
        L("maxpool", 4, 4, (2, 2), (2, 2)),
        L("sbs", 4, 6, (3, 3), spikes=3),
        L("avgpool", 6, 6, (2, 2), (1, 1)),
        L("sbs", 6, 5, (1, 1), spikes=5)), name="small-a"),
        {0: {"lanes": 4, "engines": 2}, 2: {"lanes": 4, "engines": 1}, 4: {"lanes": 8, "engines": 1}}),
    "stride-dil-avg3-maxpad": (NetworkSpec((1, 11, 11), (
        L("sbs", 1, 3, (3, 3), stride=(2, 2), padding=(1, 1), spikes=3),
        L("avgpool", 3, 3, (1, 3), (1, 1)),
        L("maxpool", 3, 3, (2, 2), (2, 2), padding=(1, 1)),
        L("sbs", 3, 4, (2, 2), dilation=(2, 2), spikes=4),
        L("sbs", 4, 3, (2, 1), spikes=3)), name="small-b"),
        {0: {"lanes": 2, "engines": 2}, 3: {"lanes": 4, "engines": 1}, 4: {"lanes": 2, "engines": 1, "slots": 24}}),
    "fc2": (NetworkSpec((1, 6, 6), (
        L("sbs", 1, 8, (6, 6), spikes=6),
        L("sbs", 8, 3, (1, 1), spikes=5)), name="small-fc"),
        {0: {"lanes": 8, "engines": 1}, 1: {"lanes": 2, "engines": 1}}),
    "full-image": (NetworkSpec((1, 28, 28), (
        L("sbs", 1, 4, (28, 28), spikes=2),
        L("sbs", 4, 3, (1, 1), spikes=3)), name="small-full"),
        {0: {"lanes": 4, "engines": 1}, 1: {"lanes": 1, "engines": 1}}),
}

__all__ = ["SMALL_NETWORKS"]
