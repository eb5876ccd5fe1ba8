"""Cosimulation of a whole-network design (``sbs cosim``): the Verilog under Verilator, cocotb
driving whole images (:mod:`sim.tb_network`), every layer's codes and the class compared with the
:class:`sbs_model.quant.QuantizedModel` by ``==``, measured cycles with the cycle model.

:func:`cosim` splits the images into chunks (at most ``CHUNK`` images each) and runs them on
``jobs`` simulator processes of one Verilator build (built once per design hash, :mod:`sim.runner`).
Image ``k`` of the dataset uses spike pattern ``k`` (as ``sbs eval``).  On a divergence the first one
is reported (image, layer, IP, element, both bit patterns), the image is simulated again alone with
waves (unless ``waves=False``), and a command that reproduces it is returned.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from rtl.layer.engine import pack_job
from rtl.network.build import load_design
from rtl.network.design import cycle_model, expected
from sbs_model.data import load_dataset
from sbs_model.quant import QuantizedModel
from sim.runner import build_and_test

CHUNK = 10
TESTBENCH = "sim.tb_network"


def load_images(data, first: int, n: int):
    """Images ``first .. first+n-1`` and labels of the MNIST test set (``data``: a directory or None
    for the embedded images); ValueError naming the argument when there are not enough."""
    images, labels = load_dataset("mnist", data, "test", None)
    if first + n > len(images):
        raise ValueError(f"--first {first} -n {n}: the test set has {len(images)} images (allowed: first + n <= "
                         f"{len(images)})")
    return images[first:first + n], labels[first:first + n]


def vectors(model: QuantizedModel, images, first: int, cycles: int | None):
    codes, cls = expected(model, images, first)
    return {"images": [{"job": pack_job(model.seed, first + b), "pixels": [int(v) for v in images[b].reshape(-1)],
                        "codes": codes[b], "cls": cls[b]} for b in range(len(images))],
            "cycles": cycles}, cls


def describe(net, mm: dict, first: int, h_width: int) -> dict:
    """A divergence from the testbench -> image (dataset index), layer, IP, element, bit patterns."""
    out = dict(mm)
    out["image"] = first + int(mm["image"])
    if mm["layer"] != "class":
        C, X, Y = net.shapes()[int(mm["layer"])]
        e = int(mm["element"])
        out.update(ip=e % (X * Y), channel=e // (X * Y),
                   got_bits=format(int(mm["got"]), f"0{h_width}b"), want_bits=format(int(mm["want"]), f"0{h_width}b"))
    return out


def cosim(out_dir, data=None, n: int = 10, first: int = 0, seed: int = 0, jobs: int = 1, waves: bool = True,
          progress=print) -> dict:
    man, net, weights, dps = load_design(out_dir)
    d = Path(out_dir)
    text = (d / man["verilog"]).read_text()
    images, labels = load_images(data, first, n)
    model = QuantizedModel(net, weights, dps, seed=seed)
    plan = {int(k): v for k, v in man["plan"]["layers"].items()}
    cpi = cycle_model(model, plan)["cycles_per_image"]
    if cpi != man["cycles_per_image"]:
        raise ValueError(f"OUT {out_dir}: manifest cycles_per_image {man['cycles_per_image']} differs from the cycle "
                         f"model {cpi} (rebuild with 'sbs build')")
    chunks = [(s, min(n, s + max(1, min(CHUNK, -(-n // max(1, jobs)))))) for s in
              range(0, n, max(1, min(CHUNK, -(-n // max(1, jobs)))))]
    progress(f"cosim: {n} images (first {first}) in {len(chunks)} chunk(s) on {jobs} job(s); model reference ...")
    results = {}
    t0 = time.perf_counter()

    def run(chunk):
        a, b = chunk
        vec, _ = vectors(model, images[a:b], first + a, cpi)
        return chunk, build_and_test(text, man["top"], TESTBENCH, data=vec, seed=seed % (1 << 31))

    done_images = 0
    build_seconds = 0.0
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futs = [pool.submit(run, c) for c in chunks]
        for f in as_completed(futs):
            chunk, res = f.result()
            results[chunk] = res
            build_seconds = max(build_seconds, res.build_seconds)
            done_images += res.out.get("images", 0)
            progress(f"cosim: {done_images}/{n} images ({time.perf_counter() - t0:.0f} s)")
    wall = time.perf_counter() - t0
    got_cls, cycles, mismatches, reproduce, compared = [], [], [], None, 0
    for chunk in chunks:
        res = results[chunk]
        o = res.out
        compared += int(o.get("images", 0))
        got_cls += o.get("classes", [])
        cycles += o.get("cycles", [])
        for mm in o.get("mismatches", []):
            mismatches.append(describe(net, dict(mm, image=chunk[0] + mm["image"]), first, model.qlayers[
                min(model.qlayers)].H.width))
        if not o:  # the simulation itself failed
            mismatches.append({"image": first + chunk[0], "layer": None, "error": res.summary()})
        if res.failures and reproduce is None:
            reproduce = res.reproduce
    equal = compared == n and not mismatches and all(c == cpi for c in cycles) and len(cycles) == n
    correct = int(sum(int(c) == int(l) for c, l in zip(got_cls, labels)))
    report = {
        "design": str(d), "top": man["top"], "input_hash": man["input_hash"],
        "images": compared, "first": first, "seed": seed, "jobs": jobs,
        "equal": bool(equal), "mismatched": len(mismatches), "first_divergence": mismatches[0] if mismatches else None,
        "cycles_per_image": cpi, "cycles_measured": sorted(set(cycles)),
        "cycles_equal": bool(cycles) and all(c == cpi for c in cycles),
        "accuracy": correct / max(1, len(got_cls)), "correct": correct,
        "images_per_second": round(compared / wall, 4) if wall > 0 else None,
        "simulated_cycles_per_second": round(sum(cycles) / wall, 1) if wall > 0 else None,
        "wall_seconds": round(wall, 2), "build_seconds": round(build_seconds, 2),
        "plan": man["plan"]["layers"], "T": [layer["spikes"] for layer in man["network"]["layers"]
                                             if layer["kind"] in ("sbs", "sbspool")],
    }
    if mismatches:
        mm = mismatches[0]
        cmd = f"sbs cosim {d} --first {mm['image']} -n 1 --seed {seed}" + (f" --data {data}" if data else "")
        report["reproduce"] = cmd
        report["reproduce_run"] = reproduce
        if waves and mm.get("layer") is not None:
            progress(f"cosim: divergence at image {mm['image']}; simulating it again with waves ...")
            k = mm["image"] - first
            vec, _ = vectors(model, images[k:k + 1], mm["image"], cpi)
            res = build_and_test(text, man["top"], TESTBENCH, data=vec, seed=seed % (1 << 31), waves=True)
            dumps = sorted(str(p) for p in res.test_dir.glob("dump.*"))
            report["waves"] = dumps[0] if dumps else None
            report["reproduce_run"] = res.reproduce
    return report


def summary_lines(rep: dict) -> list[str]:
    lines = [f"images {rep['images']}, equal: {str(rep['equal']).lower()}, mismatched {rep['mismatched']}, "
             f"accuracy {100 * rep['accuracy']:.2f} % ({rep['correct']}/{rep['images']})",
             f"cycles per image: model {rep['cycles_per_image']}, measured {rep['cycles_measured']}",
             f"{rep['images_per_second']} images/s simulated ({rep['simulated_cycles_per_second']} cycles/s, "
             f"{rep['jobs']} job(s), build {rep['build_seconds']} s)"]
    if rep["first_divergence"]:
        lines.append(f"first divergence: {rep['first_divergence']}")
        lines.append(f"reproduce: {rep['reproduce']}  (simulator run: {rep.get('reproduce_run')})")
        if rep.get("waves"):
            lines.append(f"waves: {rep['waves']}")
    return lines


__all__ = ["cosim", "summary_lines", "load_images", "vectors"]
