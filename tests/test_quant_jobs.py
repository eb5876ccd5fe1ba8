"""sbs_model.quant_jobs: the blocked threshold count gives the spike indices of
kernels_cpu.spikes_from_thresholds (``==``)."""
import numpy as np
import pytest

from sbs_model.kernels_cpu import BUCKET_BITS, spikes_from_thresholds
from sbs_model.quant_jobs import count_spikes


@pytest.mark.parametrize("s_len,n_t,dtype", [(25, 1600, np.int32), (25, 1600, np.int64), (2, 70, np.int32),
                                             (64, 131, np.int32), (9, 63, np.int64), (65, 200, np.int32)])
def test_count_spikes_equals_spikes_from_thresholds(s_len, n_t, dtype):
    """Random non-decreasing thresholds (with ties, 0, 2**32 - 1 and never-passed 2**32 entries)
    and draws (with the extremes): every index equal, short windows (blocked count, its scalar tail)
    and long ones (the bucket table)."""
    rng = np.random.default_rng(s_len * 1000 + n_t)
    for trial in range(20):
        rth = np.sort(rng.integers(0, 2**32 + 1, s_len)).astype(np.int64)
        if trial % 3 == 0:
            rth[rng.integers(s_len):] = 2**32  # some entries never passed
        if trial % 4 == 1:
            rth[: s_len // 2] = rth[s_len // 2]  # ties
        if trial % 5 == 2:
            rth[0] = 0
            rth[-1] = 2**32 - 1
        r32 = rng.integers(0, 2**32, n_t, dtype=np.uint64).astype(np.uint32)
        r32[:3] = [0, 2**32 - 1, np.uint32(rth[0] % 2**32)]
        want = np.empty(n_t, dtype=dtype)
        got = np.empty(n_t, dtype=dtype)
        spikes_from_thresholds(rth, s_len, r32, np.empty(1 << BUCKET_BITS, np.int64), want)
        count_spikes(rth, s_len, r32, np.empty(1 << BUCKET_BITS, np.int64), got)
        assert np.array_equal(want, got), (trial, rth)
