"""IPEngine against :func:`rtl.engine.reference_ip` (the model of one IP): the job generator
(:func:`engine_job`, :func:`stimulus`; also used by ``tests/test_sim_engine.py`` and the demo's
regression step) and the ``sbs regress`` entries: a small layer with random weights (lanes 1 and 4,
a fault entry, a no-stall cycle-count entry) and, with ``--full``, whole IPs of the shipped model's
layers 0, 2 and 4 at T = 1600."""
from __future__ import annotations

import random

import numpy as np

from fixedpoint.pooling import window_from_h
from fixedpoint.schedule import Schedule
from rtl.engine import IPEngine, engine_cycles, pack_job, reference_ip, window_value_width
from sbs_model.data import load_embedded
from sbs_model.loader import shipped_model
from sbs_model.quant import QuantizedModel
from sbs_model.quant_ref import crop_pixels, ip_window
from sim.regress import Entry, register
from sim.regress_units.common import LANES, datapath, stalls

#: (S, N, T, IPs) per mode: quick = a small layer (the engine's own test layer), full = whole IPs
#: of the reference network's layer-5 shape (S = 96, N = 10) at T = 1600
ENGINE_SHAPES = {"quick": (12, 10, 40, 4), "full": (96, 10, 1600, 3)}
ENGINE_DP = "int-e4m1"  # the engine needs the int update (the paper's float32 update is model-only)

#: layers of the reference network whose whole IPs the full regression runs on the shipped model's
#: weights (layer 5, S = 96 / N = 10, is the random-weight ``engine`` entry)
LAYER_ENGINE_LAYERS = (0, 2, 4)
LAYER_ENGINE_LANES = 4


# ------------------------------------------------------------------------------ the generator
def engine_job(dp, w_codes, w_format, schedule, T: int, lanes: int, key, window) -> dict:
    """One IP for ``sim.tb_engine``: ``key = (seed, pattern, layer, ip)`` packed as the job, the
    window, the model's final h codes (:func:`rtl.engine.reference_ip`), the cycles the engine
    takes for this IP's ignored spikes (:func:`rtl.engine.engine_cycles`) and their count."""
    w_codes = np.asarray(w_codes, dtype=np.int64)
    S, N = w_codes.shape
    h, ignored = reference_ip(dp, w_codes, window, *key, T, w_format=w_format, schedule=schedule, record=True)
    return {"job": pack_job(*key), "window": [int(v) for v in window], "expected": h,
            "cycles": int(engine_cycles(dp, N, S, lanes, ignored)), "ignored_spikes": int(sum(ignored))}


def stimulus(dut: IPEngine, keyed_windows, idle: float = 0.25, backpressure: float = 0.25,
             check_cycles: bool = False) -> dict:
    """``tb_data`` of ``sim.tb_engine`` for ``[(key, window), ...]`` on ``dut``'s weights, schedule
    and lanes; ``check_cycles``: the testbench checks the cycles between IPs (no stalls)."""
    jobs = [engine_job(dut.dp, dut.w_codes, dut.W, dut.schedule, dut.T, dut.lanes, key, window)
            for key, window in keyed_windows]
    return {"jobs": [{k: j[k] for k in ("job", "window", "expected", "cycles")} for j in jobs],
            "h_width": dut.H.width, "idle": idle, "backpressure": backpressure, "check_cycles": check_cycles}


# ------------------------------------------------------------------------------ small layer
def engine_weights(S: int, N: int):
    """Fixed (seed-independent, so the weight ROM and the build are cached) layer weights: random
    ``u**3`` normalised per neuron, encoded in the layer's scaled format."""
    rng = np.random.default_rng(3)
    W = rng.uniform(0.0, 1.0, size=(S, N)) ** 3
    return datapath(ENGINE_DP).encode_weights(W / W.sum(axis=0))


def small_engine(lanes: int, mode: str, fault=None) -> IPEngine:
    S, N, T, _ = ENGINE_SHAPES[mode]
    w_codes, w_fmt = engine_weights(S, N)
    return IPEngine(datapath(ENGINE_DP), w_codes, T, lanes=lanes, w_format=w_fmt, fault=fault)


def small_vectors(timing: bool):
    def vectors(dut, mode: str, seed: int):
        S, _, T, n_ips = ENGINE_SHAPES[mode]
        vmax = (1 << dut.value_width) - 1
        rng = random.Random(seed)
        windows = [[0] * S, [rng.randrange(vmax + 1) if i in (2, 7) else 0 for i in range(S)]]
        while len(windows) < n_ips:
            windows.append([rng.randrange(vmax + 1) for _ in range(S)])
        rng.shuffle(windows)
        keyed = [((rng.getrandbits(32), rng.randrange(1 << 16), rng.randrange(8), rng.randrange(1 << 24)), window)
                 for window in windows[:n_ips]]
        st = {"idle": 0.0, "backpressure": 0.0} if timing else stalls(mode)
        return stimulus(dut, keyed, check_cycles=timing, **st), n_ips * T   # vectors = spikes
    return vectors


# ------------------------------------------------------------------------------ real layers
def shipped_layer(layer: int):
    """``(net, spec, weights)`` of a layer of the shipped model (T = 1600)."""
    net, weights, _ = shipped_model()
    return net, net.layers[layer], weights


def layer_engine(layer: int, mode: str, fault=None) -> IPEngine:
    if mode == "quick":  # quick: the small engine entry's design (same Verilog, so its build is shared)
        return small_engine(LAYER_ENGINE_LANES, mode, fault)
    _, spec, weights = shipped_layer(layer)
    w_codes, w_fmt = datapath(ENGINE_DP).encode_weights(np.asarray(weights[layer], dtype=np.float64))
    return IPEngine(datapath(ENGINE_DP), w_codes, spec.spikes, lanes=LAYER_ENGINE_LANES, w_format=w_fmt,
                    schedule=Schedule.from_layer(spec), layer_index=layer, fault=fault)


def real_window(net, weights, spec, layer: int, seed: int, image: int, pick: int):
    """``(ip, window, model h)``: IP number ``pick`` (mod their count) of those of ``layer`` whose
    integer window is not all zero, from the quantized model's trace (seed ``seed``, pattern
    ``image``) of embedded MNIST test image ``image``; the model's final h codes of that IP."""
    dp = datapath(ENGINE_DP)
    images, _ = load_embedded()
    img = images[image:image + 1]
    tr = QuantizedModel(net, weights, dp, seed=seed).trace(img, first_pattern=image)
    if layer == 0:
        src = crop_pixels(img, net).astype(np.int64)
    else:
        src = window_from_h(tr.outputs[layer - 1], tr.formats[layer - 1], dp.sampler_frac_bits)
    _, H_out, W_out = net.shapes()[layer]
    live = [ip for ip in range(H_out * W_out) if ip_window(src, spec, 0, ip).any()]
    ip = live[pick % len(live)]
    model_h = [int(v) for v in tr.outputs[layer][0, :, ip // W_out, ip % W_out]]
    return ip, [int(v) for v in ip_window(src, spec, 0, ip)], model_h


def layer_vectors(layer: int):
    def vectors(dut, mode: str, seed: int):
        if mode == "quick":  # quick: the small engine entry's vectors (see layer_engine)
            return small_vectors(False)(dut, mode, seed)
        net, spec, weights = shipped_layer(layer)
        S, T = spec.window, spec.spikes
        _, H_out, W_out = net.shapes()[layer]
        rng = random.Random(seed)
        # IP 1: a real MNIST window (embedded test image, the quantized model's trace)
        model_seed, image = rng.getrandbits(32), rng.randrange(2000)
        ip, window, model_h = real_window(net, weights, spec, layer, model_seed, image, rng.getrandbits(16))
        keys = [(model_seed, image, layer, ip)]
        # IP 2: a random window of the layer's value width (pixels for layer 0)
        vmax = (1 << window_value_width(dut.dp, layer)) - 1
        windows = [window, [rng.randrange(vmax + 1) for _ in range(S)]]
        keys.append((rng.getrandbits(32), rng.randrange(1 << 16), layer, rng.randrange(H_out * W_out)))
        data = stimulus(dut, list(zip(keys, windows)), **stalls(mode))
        if data["jobs"][0]["expected"] != model_h:
            raise RuntimeError(f"layer {layer}: rtl.engine.reference_ip disagrees with the quantized "
                               f"model's trace at image {image} ip {ip}")
        return data, len(keys) * T   # vectors = spikes
    return vectors


def register_entries() -> None:
    for lanes in LANES:
        variants = [(None, False)] + ([("update", False), (None, True)] if lanes == 4 else [])
        for fault, timing in variants:
            top = f"ip_engine_small_l{lanes}" if not fault else "ip_engine_small_fault"
            register(Entry(unit="engine-timing" if timing else "engine", datapath=ENGINE_DP, lanes=lanes,
                           toplevel=top, testbench="sim.tb_engine",
                           design=lambda fault, mode, lanes=lanes: small_engine(lanes, mode, fault),
                           vectors=small_vectors(timing), fault=fault,
                           note="IPEngine whole IPs vs rtl.engine.reference_ip; vectors = spikes" +
                                ("; no stalls, cycles between IPs == engine_cycles" if timing else "")))
    for layer in LAYER_ENGINE_LAYERS:
        register(Entry(unit=f"engine-layer{layer}", datapath=ENGINE_DP, lanes=LAYER_ENGINE_LANES,
                       toplevel=f"ip_engine_small_l{LAYER_ENGINE_LANES}", testbench="sim.tb_engine",
                       design=lambda fault, mode, layer=layer: layer_engine(layer, mode, fault),
                       vectors=layer_vectors(layer),
                       note=f"--full: IPEngine on layer {layer} of the shipped model (T = 1600), one real "
                            "MNIST window + one random, vs rtl.engine.reference_ip; --quick: the small "
                            "engine entry's design and vectors; vectors = spikes"))
