"""Tests of paper_lib.models: every class trains, samples deterministically, caches, resumes."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

import paper_lib
from paper_lib import cache
from paper_lib.models import (MODEL_CLASSES, ModelSpec, alpha_bar, build, count_params, denoise,
                              fit, make_spec, sample)

SMOKE = paper_lib.get_profile("smoke")
TINY = dict(width=8, train_steps=40, batch_size=32, diffusion_steps=10)


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    """One private cache folder shared by the tests of this module (never the real cache)."""
    return str(tmp_path_factory.mktemp("model_cache"))


@pytest.fixture(autouse=True)
def _use_module_cache(monkeypatch, module_cache):
    monkeypatch.setenv("PAPER_LIB_CACHE", module_cache)


@pytest.fixture(scope="module")
def env(module_cache):
    """Deterministic torch and a tiny cone dataset (T = 64, C = 2), built in the private cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PAPER_LIB_CACHE", module_cache)
        paper_lib.seeding.seed_everything(0)
        return paper_lib.make_dataset("cone", 96, seed=0)


@pytest.fixture(scope="module")
def trained(env, module_cache):
    """One tiny model of every class, trained once (and cached) for the tests below."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PAPER_LIB_CACHE", module_cache)
        return {k: fit(make_spec(k, SMOKE, **TINY), env, SMOKE, seed=0, snapshots=(20,))
                for k in MODEL_CLASSES}


def test_make_spec_and_errors(env):
    s = make_spec("diffusion-unet", SMOKE)
    assert (s.width, s.train_steps, s.batch_size, s.diffusion_steps) == (
        SMOKE.width, SMOKE.train_steps, SMOKE.batch_size, SMOKE.diffusion_steps)
    assert make_spec("vae", paper_lib.get_profile("default"), width=16).width == 16
    with pytest.raises(ValueError, match="diffusion-unet, diffusion-mlp, transformer, vae"):
        make_spec("gan", SMOKE)
    with pytest.raises(ValueError, match="valid classes"):
        fit("gan", env, SMOKE)
    with pytest.raises(ValueError, match="valid fields.*width"):
        make_spec("vae", SMOKE, widht=3)
    with pytest.raises(ValueError, match="prediction"):
        make_spec("diffusion-mlp", SMOKE, prediction="v")


@pytest.mark.parametrize("kind", MODEL_CLASSES)
def test_fit_and_sample(trained, kind):
    tr = trained[kind]
    assert isinstance(tr.spec, ModelSpec) and tr.spec.kind == kind
    assert count_params(tr) == tr.n_params > 0
    assert len(tr.losses) == TINY["train_steps"] and np.isfinite(tr.losses).all()
    assert tr.losses[:8].mean() > tr.losses[-8:].mean()  # it learns
    a = sample(tr, 5, seed=1)
    assert a.shape == (5, 64, 2) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, sample(tr, 5, seed=1))
    assert not np.allclose(a, sample(tr, 5, seed=2))
    assert sample(tr, 3, snapshot=20).shape == (3, 64, 2)
    with pytest.raises(ValueError, match="snapshot"):
        sample(tr, 3, snapshot=7)


@pytest.mark.parametrize("kind", MODEL_CLASSES)
def test_cache_round_trip(env, trained, kind):
    tr = trained[kind]
    t0 = time.perf_counter()
    again = fit(make_spec(kind, SMOKE, **TINY), env, SMOKE, seed=0, snapshots=(20,))
    assert again.from_cache and time.perf_counter() - t0 < 2.0
    assert again.train_seconds == tr.train_seconds > 0
    assert all(torch.equal(again.state[k], v) for k, v in tr.state.items())
    np.testing.assert_array_equal(sample(again, 4, seed=3), sample(tr, 4, seed=3))


@pytest.mark.parametrize("kind", MODEL_CLASSES)
def test_resume_is_bitwise_identical(env, kind, tmp_path, monkeypatch):
    monkeypatch.setenv("PAPER_LIB_CACHE", str(tmp_path))
    spec = make_spec(kind, SMOKE, **{**TINY, "train_steps": 24})  # checkpoints at 6, 12, 18
    ref = fit(spec, env, SMOKE, seed=4, use_cache=False, snapshots=(5, 20))
    with pytest.raises(KeyboardInterrupt):
        fit(spec, env, SMOKE, seed=4, snapshots=(5, 20), _stop_after=15)
    ckpts = list((cache.cache_dir() / "checkpoints").glob("*.pt"))
    assert len(ckpts) == 1
    resumed = fit(spec, env, SMOKE, seed=4, snapshots=(5, 20))
    assert not resumed.from_cache and not ckpts[0].exists()  # removed once done
    assert all(torch.equal(resumed.state[k], v) for k, v in ref.state.items())
    for step in (5, 20):
        assert all(torch.equal(resumed.snapshots[step][k], v)
                   for k, v in ref.snapshots[step].items())
    np.testing.assert_array_equal(resumed.losses, ref.losses)


def test_damaged_checkpoint_is_dropped(env, tmp_path, monkeypatch):
    monkeypatch.setenv("PAPER_LIB_CACHE", str(tmp_path))
    spec = make_spec("vae", SMOKE, **{**TINY, "train_steps": 12})
    with pytest.raises(KeyboardInterrupt):
        fit(spec, env, SMOKE, _stop_after=10)
    (ckpt,) = (cache.cache_dir() / "checkpoints").glob("*.pt")
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.warns(cache.CacheCorruptWarning, match="checkpoint"):
        tr = fit(spec, env, SMOKE)
    ref = fit(spec, env, SMOKE, use_cache=False)
    assert all(torch.equal(tr.state[k], v) for k, v in ref.state.items())


def test_diffusion_samplers_and_inpainting(trained):
    tr = trained["diffusion-unet"]
    assert sample(tr, 4, sampler="ddim", steps=4).shape == (4, 64, 2)
    with pytest.raises(ValueError, match="ddim"):
        sample(tr, 4, sampler="euler")
    mask = np.zeros((64, 2), bool)
    mask[0] = mask[-1] = True
    values = np.zeros((3, 64, 2), np.float32)
    values[:, -1] = [[1.0, -1.0], [0.5, 0.5], [-2.0, 0.0]]
    for kw in ({}, {"sampler": "ddim", "steps": 5}):
        out = sample(tr, 3, seed=0, inpaint=(mask, values), **kw)
        np.testing.assert_array_equal(out[:, mask], values[:, mask])
    with pytest.raises(ValueError, match="diffusion"):
        sample(trained["vae"], 3, inpaint=(mask, values))


@pytest.mark.parametrize("kind,prediction,t0_max", [("diffusion-unet", "x0", 0.5),
                                                    ("diffusion-mlp", "eps", 0.2)])
def test_denoise_kernel(env, kind, prediction, t0_max):
    """t* = 0 gives nearly the input (an ε-model is close to the identity there by construction;
    an x0-model returns its own prediction), and larger t* moves X further on average."""
    tr = fit(make_spec(kind, SMOKE, train_steps=150, batch_size=32, prediction=prediction,
                       diffusion_steps=100), env, SMOKE)
    ab = alpha_bar(tr)
    assert ab.shape == (100,) and np.all(np.diff(ab) < 0) and 0 < ab[-1] < ab[0] < 1
    X = env.X[:32]
    scale = np.sqrt((X ** 2).mean())
    dist = [np.sqrt(((denoise(tr, X, t, seed=0) - X) ** 2).mean()) / scale for t in (0, 10, 30)]
    assert dist[0] < t0_max and dist[0] < dist[1] < dist[2], dist
    np.testing.assert_array_equal(denoise(tr, X, 4, seed=1), denoise(tr, X, 4, seed=1))
    with pytest.raises(ValueError, match="t_star"):
        denoise(tr, X, 100)


def test_non_diffusion_has_no_denoise(env, trained):
    with pytest.raises(ValueError, match="diffusion"):
        denoise(trained["transformer"], env.X[:4], 0)


@pytest.mark.parametrize("T,C", [(32, 1), (128, 6), (64, 2)])
def test_unet_shapes(T, C):
    net = build(make_spec("diffusion-unet", SMOKE), T, C)
    out = net(torch.randn(3, T, C), torch.tensor([0, 5, 19]))
    assert out.shape == (3, T, C)
    with pytest.raises(ValueError, match="divisible by 4"):
        build(make_spec("diffusion-unet", SMOKE), 30, C)


def test_condition_frames_train_on_clean_ends_and_keep_old_cache_keys(env):
    from paper_lib.models.diffusion import diffusion_loss, make_schedule

    plain = make_spec("diffusion-unet", SMOKE, **TINY)
    assert "condition_frames" not in plain.key()            # old cache keys stay valid
    spec = plain.with_(condition_frames=(0, -1))
    assert spec.key()["condition_frames"] == (0, -1)
    with pytest.raises(ValueError, match="diffusion"):
        make_spec("vae", SMOKE, condition_frames=(0,))
    # the network sees the conditioned frames clean at every noise level
    seen = []

    def net(x, t):
        seen.append(x.clone())
        return torch.zeros_like(x)

    x0 = torch.randn(8, 64, 2)
    diffusion_loss(net, x0, torch.Generator().manual_seed(0), spec, make_schedule(spec))
    assert torch.equal(seen[0][:, [0, -1]], x0[:, [0, -1]])
    assert not torch.equal(seen[0][:, 1:-1], x0[:, 1:-1])
    tr = fit(spec, env, SMOKE, seed=0)
    mask = np.zeros((64, 2), bool)
    mask[[0, -1]] = True
    values = np.zeros((3, 64, 2), np.float32)
    values[:, -1] = [[1.0, -1.0], [0.5, 0.5], [-2.0, 0.0]]
    out = sample(tr, 3, seed=0, inpaint=(mask, values))
    np.testing.assert_array_equal(out[:, mask], values[:, mask])


@pytest.mark.parametrize("kind", MODEL_CLASSES)
def test_results_do_not_depend_on_the_thread_count(env, trained, kind):
    """Training pins itself to one thread, and sampling gives the same bits on one or two
    threads: a figure does not depend on the machine's core count or OMP_NUM_THREADS."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        tr2 = fit(make_spec(kind, SMOKE, **TINY), env, SMOKE, seed=3, use_cache=False)
        a = sample(tr2, 300, seed=1)
        torch.set_num_threads(1)
        tr1 = fit(make_spec(kind, SMOKE, **TINY), env, SMOKE, seed=3, use_cache=False)
        assert tr1.fingerprint() == tr2.fingerprint()
        np.testing.assert_array_equal(a, sample(tr2, 300, seed=1))
        assert torch.get_num_threads() == 1       # fit restores the caller's thread count
    finally:
        torch.set_num_threads(threads)


def test_q_condition_model(env, trained):
    from paper_lib.models.diffusion import _guided

    plain = make_spec("diffusion-unet", SMOKE, **TINY)
    assert "q_condition" not in plain.key() and "cond_dropout" not in plain.key()
    with pytest.raises(ValueError, match="diffusion-unet"):
        make_spec("diffusion-mlp", SMOKE, q_condition=True)
    with pytest.raises(ValueError, match="cond_dropout"):
        make_spec("diffusion-unet", SMOKE, q_condition=True, cond_dropout=0.0)
    tr = fit(plain.with_(q_condition=True), env, SMOKE, seed=0)
    assert tr.spec.key()["q_condition"] is True
    q = np.full(4, float(np.median(env.q)))
    with pytest.raises(ValueError, match="needs condition"):
        sample(tr, 4, seed=0)
    with pytest.raises(ValueError, match="condition must be 4 finite"):
        sample(tr, 4, seed=0, condition=[np.nan] * 4)
    with pytest.raises(ValueError, match="guidance must be"):
        sample(tr, 4, seed=0, condition=q, guidance=-1)
    with pytest.raises(ValueError, match="unconditional"):
        sample(trained["diffusion-unet"], 4, seed=0, condition=q)
    a = sample(tr, 4, seed=0, condition=q)
    np.testing.assert_array_equal(a, sample(tr, 4, seed=0, condition=q, guidance=0.0))
    assert not np.array_equal(a, sample(tr, 4, seed=0, condition=q, guidance=3.0))
    assert not np.array_equal(a, sample(tr, 4, seed=0, condition=q + 0.3 * np.ptp(env.q)))

    # guidance is (1 + w) out(c) - w out(null), the null condition being NaN
    def net(x, t, c):
        return torch.where(torch.isnan(c), torch.zeros(()), c)[:, None, None] + 0 * x

    x, t, c = torch.zeros(2, 3, 1), torch.zeros(2, dtype=torch.long), torch.tensor([0.5, 1.0])
    np.testing.assert_allclose(_guided(net, x, t, c, 2.0)[:, 0, 0].numpy(), [1.5, 3.0])


def test_reference_ddpm_trains_samples_and_resumes(env):
    """ddp-unet1d (denoising-diffusion-pytorch's Unet1D + GaussianDiffusion1D): matched to our
    U-Net's parameter count, deterministic in the seed, inside the training data's range (the
    package clips its denoised estimate to the range it was given), and an interrupted training
    resumes to the same weights."""
    from paper_lib.models import REFERENCE_CLASSES

    assert REFERENCE_CLASSES == ("ddp-unet1d",) and "ddp-unet1d" not in MODEL_CLASSES
    spec = make_spec("ddp-unet1d", SMOKE, **TINY)
    ref = fit(spec, env, SMOKE, seed=0)
    ours = count_params(build(make_spec("diffusion-unet", SMOKE, **TINY), 64, 2))
    assert abs(ref.n_params / ours - 1) < 0.15
    assert np.isfinite(ref.losses).all() and ref.losses[-5:].mean() < ref.losses[:5].mean()
    a, b = sample(ref, 24, seed=3), sample(ref, 24, seed=3)
    assert a.shape == (24, 64, 2) and np.array_equal(a, b)
    assert not np.array_equal(a, sample(ref, 24, seed=4))
    lo, hi = env.X.min((0, 1)), env.X.max((0, 1))
    assert (a >= lo - 1e-5).all() and (a <= hi + 1e-5).all()
    with pytest.raises(KeyboardInterrupt):
        fit(spec.with_(train_steps=41), env, SMOKE, seed=1, _stop_after=17)
    resumed = fit(spec.with_(train_steps=41), env, SMOKE, seed=1)
    straight = fit(spec.with_(train_steps=41), env, SMOKE, seed=1, use_cache=False)
    assert all(torch.equal(resumed.state[k], straight.state[k]) for k in straight.state)
    with pytest.raises(ValueError, match="diffusion model"):
        denoise(ref, env.X[:4], 2)
