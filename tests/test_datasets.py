import numpy as np
import pytest

from paper_lib import Bins, make_dataset
from paper_lib.datasets import curate_uniform, resample_to_weights


def test_dataset_is_deterministic_and_cached():
    a = make_dataset("cone", 64, seed=3)
    b = make_dataset("cone", 64, seed=3)
    c = make_dataset("cone", 64, seed=4, use_cache=False)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.q, b.q)
    assert not np.array_equal(a.q, c.q)
    assert a.X.shape == (64, 64, 2) and len(a) == 64


def test_dataset_with_changed_prior():
    d = make_dataset("sine", 100, seed=0, lo=2.0, hi=3.0)
    assert d.q.min() >= 2.0 and d.q.max() < 3.0


def test_bad_size_is_rejected():
    with pytest.raises(ValueError):
        make_dataset("sine", 0)


def test_curate_uniform_is_flat():
    q = np.random.default_rng(0).normal(0.5, 0.2, 20000)
    bins = Bins(0.1, 0.9, 8)
    idx = curate_uniform(q, bins, 100, np.random.default_rng(1))
    counts = np.bincount(bins.index(q[idx]), minlength=10)
    assert counts[0] == counts[-1] == 0 and np.all(counts[1:-1] == 100)
    assert len(np.unique(idx)) == len(idx)
    with pytest.raises(ValueError, match="generate a larger pool"):
        curate_uniform(q, bins, 5000, np.random.default_rng(1))


def test_resample_to_weights():
    idx = resample_to_weights(np.array([0.0, 1.0, 3.0]), 4000, np.random.default_rng(0))
    assert set(np.unique(idx)) == {1, 2}
    assert abs((idx == 2).mean() - 0.75) < 0.03
    with pytest.raises(ValueError):
        resample_to_weights(np.array([-1.0, 1.0]), 3, np.random.default_rng(0))


def test_head_is_the_first_rows_as_a_subset():
    ds = make_dataset("sine", 10, seed=0, use_cache=False)
    h = ds.head(4)
    np.testing.assert_array_equal(h.X, ds.X[:4])
    assert h.spec == ds.subset(np.arange(4)).spec      # the same cache key as the subset
    assert len(ds.head(50)) == 10 and len(ds.head(0)) == 0
