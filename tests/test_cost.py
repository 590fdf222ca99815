"""The arithmetic cost (paper_lib.cost): counts with a known answer, and the linearity every
count relies on (one trajectory's count times the number of trajectories)."""
import numpy as np
import pytest
import torch

from paper_lib import cost, drift, kernels, models, surrogates
from paper_lib.datasets import make_dataset
from paper_lib.profiles import get_profile
from paper_lib.tasks import get_task

P = get_profile("smoke").with_(n_train=64, train_steps=3, n_samples=16)


def test_counted_matrix_product():
    a, b = torch.randn(5, 7), torch.randn(7, 9)
    assert cost.counted(torch.mm, a, b) == 2 * 5 * 7 * 9
    assert cost.counted(lambda: a + 1) == 0   # elementwise work is not counted


@pytest.mark.parametrize("kind", ["diffusion-unet", "diffusion-mlp", "transformer", "vae"])
def test_train_flops_is_steps_times_a_full_batch_step(kind):
    """One example's step times the batch equals a real step of the whole batch."""
    from paper_lib.models import train as tr

    run = drift.train("cone", kind, P, seed=0)
    spec, task = run.trained.spec, run.trained.task
    data = torch.zeros(spec.batch_size, task.T, task.C)
    net, ema, opt, gen, sched = tr.initial_state(spec, data, 0, torch.device("cpu"))
    step = cost.counted(tr.train_step, net, ema, opt, data, gen, spec, sched, 0)
    assert step > 0 and cost.train_flops(run.trained) == spec.train_steps * step


@pytest.mark.parametrize("kind", ["diffusion-unet", "transformer"])
def test_sample_flops_is_linear_in_n(kind):
    run = drift.train("cone", kind, P, seed=0)
    three = cost.counted(models.sample, run.trained, 3)
    assert three > 0 and cost.sample_flops(run.trained, 3) == three
    assert cost.sample_flops(run.trained, 300) == 100 * three


def test_kernel_flops_denoise_scales_and_data_only_kernels_count_zero():
    run = drift.train("cone", "diffusion-unet", P, seed=0)
    X = run.dataset.X[:4]
    den = kernels.denoise(run.trained, 2)
    four = cost.counted(den.sample, X, np.random.default_rng(1))
    assert four > 0 and cost.kernel_flops(den, X, draws=3) == 3 * four
    # t* + 1 reverse steps: one more level costs one more network call per trajectory; the
    # count (t* + 1 network calls) is the probe's, kept on, with start and goal pinned
    assert cost.kernel_flops(kernels.denoise(run.trained, 3), X) == four * 4 / 3
    keep = np.zeros(X.shape[1:], bool)
    keep[0] = True
    pinned = kernels.denoise(run.trained, 2, keep=keep)
    assert cost.counted(pinned.sample, X, np.random.default_rng(1)) == four
    assert cost.kernel_flops(kernels.pinned(kernels.white(0.1), keep), X) == 0
    assert cost.kernel_flops(kernels.white(0.1), X, draws=2) == 0
    assert cost.kernel_flops(den, X[:0]) == 0


def test_sampler_flops_mosaic_linear_and_lowrank_formula():
    task = get_task("cone")
    X = make_dataset("cone", 64, seed=0, use_cache=False).X
    mosaic = surrogates.two_stage_mosaic(task, X, 3, 0.9, steps=10)
    two = cost.counted(mosaic.sample, 2, np.random.default_rng(0))
    assert two > 0 and cost.sampler_flops(mosaic, 6) == 3 * two
    low = surrogates.LowRank(task, X, rank=4)
    N, D = len(X), task.T * task.C
    assert cost.sampler_flops(low, 10) == 2 * N * D * D + 2 * 10 * 4 * D


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_a_count_that_is_not_one_is_refused(bad):
    low = surrogates.LowRank(get_task("cone"), make_dataset("cone", 16, seed=0,
                                                            use_cache=False).X, rank=2)
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        cost.sampler_flops(low, bad)
    with pytest.raises(ValueError, match="draws must be an integer >= 0"):
        cost.kernel_flops(kernels.white(0.1), np.zeros((2, 64, 1), np.float32), draws=bad)


def test_counts_are_cached_and_a_warm_count_runs_nothing(monkeypatch):
    """A second count of the same thing reads the cache: the probe does not run again."""
    run = drift.train("cone", "diffusion-unet", P, seed=0)
    first = cost.train_flops(run.trained) + cost.sample_flops(run.trained, 5)
    monkeypatch.setattr(cost, "counted", lambda *a, **k: pytest.fail("counted again"))
    assert cost.train_flops(run.trained) + cost.sample_flops(run.trained, 5) == first
