"""Stream (valid/ready) drivers and monitors for ``amaranth.lib.stream`` ports.

One protocol in two simulators: a transfer happens on a rising clock edge where ``valid`` and
``ready`` are both high; the payload is held while ``valid`` is high and ``ready`` low.

* cocotb (Verilog ports ``<name>__valid``, ``<name>__ready``, ``<name>__payload``, as emitted by
  :func:`rtl.emit.to_verilog`): :class:`StreamDriver` drives valid/payload with seeded random idle
  cycles; :class:`StreamMonitor` drives ready with seeded random back-pressure and collects the
  payloads.  Both decide "transfer or not" in the ``ReadOnly`` phase before the edge (the settled
  values the edge samples) and drive new values right after the edge.
* Amaranth's simulator (async testbenches): :func:`amaranth_put`, :func:`amaranth_get`,
  :func:`amaranth_source`, :func:`amaranth_sink` with the same random idle/back-pressure.

Payloads are Python ints (struct payloads packed by the unit's ``pack_*`` helper).
"""
from __future__ import annotations

import random


def _check_prob(cls: str, name: str, p: float) -> float:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{cls}: {name} must be in [0, 1), got {p}")
    return float(p)


# ----------------------------------------------------------------------------------------- cocotb

def stream_handles(dut, name: str):
    """(valid, ready, payload) handles of stream port ``name`` of the generated Verilog."""
    return (getattr(dut, f"{name}__valid"), getattr(dut, f"{name}__ready"),
            getattr(dut, f"{name}__payload"))


class StreamDriver:
    """Drives DUT input stream ``name`` from ints; before each item an idle cycle (valid low) is
    inserted with probability ``idle_prob`` (repeatedly), drawn from ``random.Random(seed)``.

    ``await driver.send(items)`` returns right after the last transfer edge; ``sent`` counts
    transfers.
    """

    def __init__(self, dut, name: str, clk, seed: int, idle_prob: float = 0.0):
        self.valid, self.ready, self.payload = stream_handles(dut, name)
        self.clk = clk
        self.rng = random.Random(seed)
        self.idle_prob = _check_prob("StreamDriver", "idle_prob", idle_prob)
        self.sent = 0
        self.valid.value = 0

    async def send(self, items) -> None:
        from cocotb.triggers import ReadOnly, RisingEdge
        for item in items:
            while self.rng.random() < self.idle_prob:
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.payload.value = int(item)
            self.valid.value = 1
            while True:
                await ReadOnly()
                fire = int(self.ready.value) == 1
                await RisingEdge(self.clk)
                if fire:
                    break
            self.sent += 1
        self.valid.value = 0


class StreamMonitor:
    """Consumes DUT output stream ``name``: each cycle ``ready`` is low with probability
    ``backpressure_prob`` (``random.Random(seed)``); transferred payloads are appended to
    ``items`` (ints) and their cycle numbers to ``cycles``.  Start with :meth:`start`."""

    def __init__(self, dut, name: str, clk, seed: int, backpressure_prob: float = 0.0):
        self.valid, self.ready, self.payload = stream_handles(dut, name)
        self.clk = clk
        self.rng = random.Random(seed)
        self.backpressure_prob = _check_prob("StreamMonitor", "backpressure_prob",
                                             backpressure_prob)
        self.items: list[int] = []
        self.cycles: list[int] = []
        self.ready.value = 0
        self._task = None

    def start(self):
        import cocotb
        self._task = cocotb.start_soon(self._run())
        return self

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        from cocotb.triggers import ReadOnly, RisingEdge
        cycle = 0
        while True:
            ready = 0 if self.rng.random() < self.backpressure_prob else 1
            self.ready.value = ready
            await ReadOnly()
            if ready and int(self.valid.value) == 1:
                self.items.append(int(self.payload.value))
                self.cycles.append(cycle)
            await RisingEdge(self.clk)
            cycle += 1

    async def wait_for(self, n: int, timeout_cycles: int) -> None:
        """Wait until ``n`` items arrived; raise ``TimeoutError`` after ``timeout_cycles``."""
        from cocotb.triggers import RisingEdge
        for _ in range(timeout_cycles):
            if len(self.items) >= n:
                return
            await RisingEdge(self.clk)
        raise TimeoutError(f"StreamMonitor: got {len(self.items)} of {n} items "
                           f"in {timeout_cycles} cycles")


async def reset(dut, clk, cycles: int = 2) -> None:
    """Start-up: Amaranth's ``rst`` is synchronous and active high; hold it for ``cycles``."""
    from cocotb.triggers import RisingEdge
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(clk)
    dut.rst.value = 0


# -------------------------------------------------------------------------- Amaranth simulator

async def amaranth_put(ctx, port, payload) -> None:
    """Transfer one ``payload`` (int) into stream ``port`` (an In port of the DUT)."""
    ctx.set(port.valid, 1)
    ctx.set(port.payload.as_value() if hasattr(port.payload, "as_value") else port.payload,
            payload)
    await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)


async def amaranth_get(ctx, port) -> int:
    """Wait for and return one payload (int) from stream ``port`` (an Out port of the DUT)."""
    ctx.set(port.ready, 1)
    value = port.payload.as_value() if hasattr(port.payload, "as_value") else port.payload
    payload, = await ctx.tick().sample(value).until(port.valid)
    ctx.set(port.ready, 0)
    return int(payload)


def amaranth_source(port, items, seed: int, idle_prob: float = 0.0):
    """An async testbench function sending ``items`` into ``port`` with random idle cycles."""
    _check_prob("amaranth_source", "idle_prob", idle_prob)

    async def testbench(ctx):
        rng = random.Random(seed)
        for item in items:
            while rng.random() < idle_prob:
                await ctx.tick()
            await amaranth_put(ctx, port, item)
    return testbench


def amaranth_sink(port, n: int, out: list, seed: int, backpressure_prob: float = 0.0):
    """An async testbench function collecting ``n`` payloads of ``port`` into ``out`` with random
    back-pressure (cycles with ready low)."""
    _check_prob("amaranth_sink", "backpressure_prob", backpressure_prob)

    async def testbench(ctx):
        rng = random.Random(seed)
        for _ in range(n):
            while rng.random() < backpressure_prob:
                await ctx.tick()
            out.append(await amaranth_get(ctx, port))
    return testbench


def amaranth_timed_sink(port, n: int, seen: dict):
    """An async testbench function, always ready, collecting ``n`` payloads of ``port``:
    ``seen["got"]`` the payloads, ``seen["cycles"]`` the clock edge (1-based) at which each was
    sampled valid -- for latency and throughput checks."""

    async def testbench(ctx):
        ctx.set(port.ready, 1)
        value = port.payload.as_value() if hasattr(port.payload, "as_value") else port.payload
        got, cycles, k = [], [], 0
        while len(got) < n:
            _, _, payload, valid = await ctx.tick().sample(value, port.valid)
            k += 1
            if valid:
                got.append(payload)
                cycles.append(k)
        seen.update(got=got, cycles=cycles)
    return testbench
