"""Counter-based generator: known answers, backend equality, statistics, sampler exactness."""
import numpy as np
import pytest

from fixedpoint import rng

# Known-answer vectors of Threefry-2x32-20 from the Random123 distribution (ctr, key -> out).
KAT = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x243F6A88, 0x85A308D3), (0x13198A2E, 0x03707344), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.mark.parametrize("ctr,key,out", KAT)
def test_threefry_known_answers(ctr, key, out):
    a = rng.threefry2x32(*ctr, *key)
    assert (int(a[0]), int(a[1])) == out
    b = rng.threefry2x32_nb(*ctr, *key)
    assert (int(b[0]), int(b[1])) == out


def test_numpy_and_numba_draws_identical():
    g = np.random.default_rng(1)
    for _ in range(200):
        seed, pattern, spike = (int(x) for x in g.integers(0, 2**32, 3, dtype=np.uint64))
        layer = int(g.integers(0, 256))
        ip = int(g.integers(0, 2**24))
        assert int(rng.spike_random(seed, pattern, layer, ip, spike)) == int(
            rng.spike_random_nb(seed, pattern, layer, ip, spike))


def test_every_key_field_changes_the_draw():
    base = dict(seed=3, pattern=7, layer=2, ip=11, spike=5)
    ref = int(rng.spike_random(**base))
    for k in base:
        other = dict(base)
        other[k] += 1
        assert int(rng.spike_random(**other)) != ref, k


def test_out_of_range_ids_rejected():
    with pytest.raises(ValueError, match="layer"):
        rng.spike_random(0, 0, 256, 0, 0)
    with pytest.raises(ValueError, match="ip"):
        rng.spike_random(0, 0, 0, 1 << 24, 0)


def test_statistics_uniform_and_uncorrelated():
    spikes = np.arange(200_000)
    r = rng.spike_random(0, 1, 0, 5, spikes).astype(np.float64) / 2**32
    # mean and variance of U[0,1) within 5 standard errors
    n = r.size
    assert abs(r.mean() - 0.5) < 5 * np.sqrt(1 / 12 / n)
    assert abs(r.var() - 1 / 12) < 5 * np.sqrt(1 / 180 / n)
    # chi-square over 256 bins (p ~ 1e-6 threshold for 255 dof is about 361)
    counts = np.bincount((r * 256).astype(int), minlength=256)
    chi2 = ((counts - n / 256) ** 2 / (n / 256)).sum()
    assert chi2 < 361
    # lag-1 serial correlation and correlation between neighbouring IPs
    assert abs(np.corrcoef(r[:-1], r[1:])[0, 1]) < 5 / np.sqrt(n)
    r2 = rng.spike_random(0, 1, 0, 6, spikes).astype(np.float64) / 2**32
    assert abs(np.corrcoef(r, r2)[0, 1]) < 5 / np.sqrt(n)
    # every output bit is balanced
    bits = (rng.spike_random(0, 1, 0, 5, spikes)[:, None] >> np.arange(32, dtype=np.uint32)) & 1
    assert np.all(np.abs(bits.mean(axis=0) - 0.5) < 5 * 0.5 / np.sqrt(n))


def test_integer_sampler_exact_frequencies():
    # Over all 2**k evenly spaced draws the integer sampler hits index s exactly in proportion
    # to u_s (up to one draw per index): checks the comparison and the scaling are exact.
    u = np.array([0, 3, 1, 0, 4], dtype=np.int64)
    cum = np.cumsum(u)
    r = (np.arange(2**16, dtype=np.uint64) << np.uint64(16))
    idx = rng.sample_index_int(cum, r)
    counts = np.bincount(idx, minlength=u.size)
    expected = u / u.sum() * r.size
    assert np.all(np.abs(counts - expected) <= 1)
    assert counts[0] == 0 and counts[3] == 0
    nb = np.array([rng.sample_index_int_nb(cum, cum.size, int(x)) for x in r[::97]])
    assert np.array_equal(nb, idx[::97])


def test_integer_sampler_all_zero_window_is_uniform():
    cum = np.zeros(4, dtype=np.int64)
    r = np.arange(4, dtype=np.uint64) << np.uint64(30)
    assert list(rng.sample_index_int(cum, r)) == [0, 1, 2, 3]
    assert [rng.sample_index_int_nb(cum, 4, int(x)) for x in r] == [0, 1, 2, 3]


def test_float_sampler_matches_definition():
    g = np.random.default_rng(0)
    u = g.random(25) + 1e-20
    cum = np.cumsum(u)
    r = rng.spike_random(0, 0, 0, 0, np.arange(5000))
    idx = rng.sample_index_float(cum, r)
    for x, s in zip(r[:300], idx[:300]):
        target = (float(x) / 2**32) * cum[-1]
        first = int(np.argmax(cum >= target))
        assert s == first
        assert rng.sample_index_float_nb(cum, cum.size, int(x)) == s


def test_batch_draws_equal_scalar_draws():
    # the vectorised form the kernels use (LLVM IR) against the numpy definition
    out = np.zeros(300, dtype=np.uint32)
    for seed, pattern, layer, ip in [(0, 0, 0, 0), (7, 123456, 5, 399), (2**32 - 1, 2**32 - 1, 255, 2**24 - 1)]:
        rng.spike_random_batch_nb(seed, pattern, layer, ip, 300, out)
        assert np.array_equal(out, rng.spike_random(seed, pattern, layer, ip, np.arange(300)))


@pytest.mark.parametrize("window", [
    [0, 0, 5, 0, 3, 255, 1],          # zeros inside and at both ends
    [0, 0, 0, 0],                     # all-zero window: uniform branch
    [7],                              # one position: always spike 0
    [2**31 - 2, 1],                   # total at the limit
    [1, 0, 0, 0, 0, 0, 0, 0, 0, 2],
])
def test_integer_thresholds_count_to_the_sampled_index(window):
    """#{j : r >= out[j]} is the binary-search sampler's index, on edge draws and random ones."""
    cum = np.cumsum(np.array(window, dtype=np.int64))
    n = cum.size
    th = np.empty(max(n - 1, 1), dtype=np.int64)
    rng.sample_thresholds_int_nb(cum, n, th)
    th = th[:n - 1]
    draws = set(np.random.default_rng(5).integers(0, 2**32, 2000).tolist()) | {0, 1, 2**31, 2**32 - 1}
    draws |= {int(t) + d for t in th for d in (-1, 0) if 0 <= int(t) + d < 2**32}
    for r in sorted(draws):
        assert int(np.sum(r >= th)) == rng.sample_index_int_nb(cum, n, r), r


def test_bit_length_nb_equals_numpy_bit_length():
    from fixedpoint.rounding import bit_length, bit_length_nb

    v = np.array([0, 1, 2, 3, 255, 256, 2**31 - 1, 2**31, 2**32, 2**62 - 1, 2**62, 2**63 - 1], dtype=np.int64)
    assert [bit_length_nb(int(x)) for x in v] == bit_length(v).tolist() == [int(x).bit_length() for x in v]
