"""sbs_model.layer_cycles: the pure-Python cycle model of the layer engine (the simulated counts are
checked in tests/test_rtl_layer_engine.py and tests/test_sim_layer.py)."""
import sys

from sbs_model import layer_cycles as lc


def test_no_hardware_library_imported():
    assert "amaranth" not in sys.modules or "sbs_model.layer_cycles" in sys.modules
    src = open(lc.__file__).read()
    assert "amaranth" not in src.replace("no hardware library", "")


def test_hand_count_of_a_small_layer():
    # 9 IPs, S = 18, N = 10, L = 16 (B = 1), Qb = 16, T = 4, n_in = 50: one wave
    D = 4 + 7 + (4 + 4) + 3 + (16 + 3) + 4
    assert lc.chain_latency(16, 16) == D == 45
    assert lc.slots(10, 16, 16) == D + 1
    # 9 IPs in a core of P = 46 slots: T = 4 rounds padded to D + B = 46 cycles, then round T's 9 passes
    assert lc.round_cycles(9, 10, 16, 16) == 46 and lc.run_cycles(9, 10, 4, 16, 16) == 4 * 46 + 9
    wave = 9 * 18 + (8 + 11 + 4) + (26 + 6 + 4 * 5) + 4 + (4 * 46 + 9) + 9 * (2 + 10)
    assert lc.layer_cycles(10, 18, 4, 9, 50, 16, 1, 16) == 50 + wave
    # a full wave's round is P*B (P covers the chain); more IPs than the chain's slots: their passes
    assert lc.round_cycles(46, 10, 16, 16) == 46 and lc.round_cycles(60, 10, 16, 16) == 60
    assert lc.round_cycles(1, 96, 2, 16) == lc.chain_latency(2, 16) + 48 == 90  # layer 4 of the shipped net


def test_waves_and_engines():
    P = lc.slots(32, 32, 16)
    one = lc.layer_cycles(32, 25, 100, P, 28 * 28, 32, 1, 16)
    two = lc.layer_cycles(32, 25, 100, 2 * P, 28 * 28, 32, 1, 16)
    split = lc.layer_cycles(32, 25, 100, 2 * P, 28 * 28, 32, 2, 16)
    assert two > split > one
    # one extra spike per IP costs one round of P*B cycles per wave
    assert lc.layer_cycles(32, 25, 101, P, 784, 32, 1, 16) - one == P


def test_one_spike_per_cycle_per_engine_asymptotically():
    P = lc.slots(10, 10, 16)
    rate = lc.spike_steps_per_cycle(10, 96, 100000, P, 96, 10, 1, 16)
    assert 0.99 < rate <= 1.0


def test_no_ram_read_and_write_of_one_address_in_one_cycle():
    """What the engine's NO_RW_CHECK memories rely on (rtl.layer.core): a slot's h word is read again
    a round after its read and written WRITE cycles after it, so a round > WRITE; its coefficient is
    written D cycles after the pass's last beat, before its next pass: a round >= D + B, for every count
    of active IPs."""
    for N in (1, 2, 7, 10, 32, 64, 100):
        for L in (1, 2, 3, 4, 8, 10, 16, 32, 64):
            for qb in (4, 8, 12):
                B, P = lc.beats(N, L), lc.slots(N, L, qb)
                assert P * B > lc.WRITE and P * B >= lc.chain_latency(L, qb) + B, (N, L, qb)
                for n in range(1, P + 1):
                    r = lc.round_cycles(n, N, L, qb)
                    assert r > lc.WRITE and r >= lc.chain_latency(L, qb) + B and r >= n * B, (N, L, qb, n)
