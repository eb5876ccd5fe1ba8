"""Exact cycle model of the whole-network accelerator (``rtl.network.top.NetworkAccelerator``).

Pure Python (no hardware library); the cosimulation compares :func:`network_cycles` with the
measured cycles of every image.

The accelerator runs one image at a time, layer after layer (a *stage* per layer).  Cycle 0 is the
cycle in which the image's job transfers; the first SbS layer's engine takes its job in cycle 1
(from a job register of its own) and is loading from cycle 2, and pixel ``k`` of the ``IMAGE_H x
IMAGE_W`` image (row-major, the input stream always valid) transfers in cycle ``1 + k``; a pixel of
the centre crop reaches the first engine :data:`CROP_REGISTER` = 1 cycle later, through a register
(in cycle ``2 + k``: the engine is always loading by then, so the image never waits for it).  Only
the crop goes into the first engine, so its input phase ends with the crop's last pixel, ``last =
(oy + H - 1) * IMAGE_W + ox + W - 1`` instead of ``n_in - 1`` (``oy = (IMAGE_H - H) // 2``, ``ox =
(IMAGE_W - W) // 2``).

* stage 0 (SbS): ends in cycle ``layer_cycles + (last - (n_in - 1)) + CROP_REGISTER`` (the cycle of its
  last output code, :func:`sbs_model.layer_cycles.layer_cycles` with the stage's ``update``: the
  ``scaled`` update's engine sends every code through FinalScale, ``FINAL`` cycles more per SbS
  stage; a stage without ``update`` is ``int``);
* every later stage starts in the cycle after the stage before ends:
  - SbS stage (engine fed from the previous feature-map RAM, one value per cycle, through the
    map's bank register and the feeder's output register): ends ``layer_cycles + FEED_DELAY``
    cycles after its start;
  - pooling stage: ``C * n_out * k`` window reads; the pooling unit's start pulse comes with the
    previous stage's last cycle, so the stage ends ``C * n_out * k + POOL_LATENCY - 1`` cycles after
    its start;
* the class transfers in the cycle after the last stage ends, but not before the whole image
  (``IMAGE_H * IMAGE_W`` pixels) has been taken: ``max(end + 1, IMAGE_H * IMAGE_W + 1)``.

``cycles_per_image`` is that cycle's number (job transfer -> class transfer).
"""
from __future__ import annotations

from sbs_model.data import center_crop_offset
from sbs_model.layer_cycles import layer_cycles

IMAGE_H = IMAGE_W = 28
FMAP_BANK_WORDS = 1024  # rtl.network.fmap.FeatureMap: words per bank (one ECP5 DP16KD holds 1024 words of <= 18 bits)
FMAP_READ_LATENCY = 2  # rtl.network.fmap.FeatureMap: address -> bank read port -> bank output register -> rd_data
POOL_LATENCY = 6 + FMAP_READ_LATENCY  # rtl.network.pool.PoolUnit, from its start pulse: issue -> geometry ROM ->
                                      # ROM word register -> address register -> map read -> data register ->
                                      # sum -> divide -> write
FEED_DELAY = FMAP_READ_LATENCY  # rtl.network.feeder.FmapFeeder: the map's bank register and the feeder's output
                                # register: a fed SbS stage's values arrive this many cycles later than from a
                                # plain synchronous read port


def fmap_banks(words: int) -> int:
    """Banks of :data:`FMAP_BANK_WORDS` words of a feature map of ``words`` codes."""
    return max(1, -(-int(words) // FMAP_BANK_WORDS))

def crop_first_index(h: int, w: int, image_h: int = IMAGE_H, image_w: int = IMAGE_W) -> int:
    """Row-major index in the full image of the centre crop's first pixel."""
    oy, ox = center_crop_offset(h, w, image_h, image_w)
    return oy * image_w + ox


def crop_last_index(h: int, w: int, image_h: int = IMAGE_H, image_w: int = IMAGE_W) -> int:
    """Row-major index in the full image of the centre crop's last pixel."""
    return crop_first_index(h, w, image_h, image_w) + (h - 1) * image_w + w - 1


CROP_REGISTER = 1  # rtl.network.top: a crop pixel passes one register on its way to the first engine


def pool_cycles(C: int, n_out: int, k: int) -> int:
    return int(C) * int(n_out) * int(k) + POOL_LATENCY - 1


def stage_cycles(stage: dict) -> int:
    """Cycles of one stage from its start to its end (see module docstring)."""
    if stage["kind"] == "sbs":
        return layer_cycles(stage["N"], stage["S"], stage["T"], stage["n_ip"], stage["n_in"], stage["lanes"],
                            stage["engines"], stage["recip_bits"], stage.get("update", "int"), stage.get("slots"))
    if stage["kind"] in ("avgpool", "maxpool"):
        return pool_cycles(stage["C"], stage["n_out"], stage["k"])
    raise ValueError(f"stage kind {stage['kind']!r}; allowed: sbs, avgpool, maxpool")


def network_cycles(stages: list[dict], crop_hw: tuple[int, int]) -> dict:
    """``{"cycles_per_image", "stages": [{"start", "end", "cycles"}]}`` for the stage list of a design
    (dicts with ``kind`` and the fields :func:`stage_cycles` reads); stage 0 must be SbS."""
    if not stages or stages[0]["kind"] != "sbs":
        raise ValueError("network_cycles: the first stage must be an SbS layer")
    out = []
    last = crop_last_index(*crop_hw)
    c0 = stage_cycles(stages[0])
    end = c0 + (last - (int(stages[0]["n_in"]) - 1)) + CROP_REGISTER
    out.append({"start": 0, "end": end, "cycles": end})
    for st in stages[1:]:
        start = end + 1
        c = stage_cycles(st) + (FEED_DELAY if st["kind"] == "sbs" else 0)
        end = start + c
        out.append({"start": start, "end": end, "cycles": c})
    total = max(end + 1, IMAGE_H * IMAGE_W + 1)
    return {"cycles_per_image": total, "stages": out}


__all__ = ["network_cycles", "CROP_REGISTER", "stage_cycles", "pool_cycles", "crop_first_index", "crop_last_index", "POOL_LATENCY", "FEED_DELAY",
           "FMAP_BANK_WORDS", "FMAP_READ_LATENCY", "fmap_banks",
           "IMAGE_H", "IMAGE_W"]
