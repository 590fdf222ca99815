"""Arithmetic cost: what training a model, drawing its samples or computing a forecast takes,
counted in floating-point operations rather than timed, so that a forecast's ``cost_fraction``
is the same number on every machine (docs/glossary.md, cost fraction).

What is counted: the operations of matrix products and convolutions, as torch's
``FlopCounterMode`` counts them (a multiply and an add are 2), where the networks, the patch mosaic,
the smoothed closed-form denoiser and the nearest-context model do all but a sliver of their
arithmetic; the low-rank bottleneck's numpy products are counted by formula. Elementwise work,
FFTs, sorting and nearest-neighbour searches (``torch.cdist``) are not counted, so the data-only
kernels (``white``, ``smooth``, ``spectral``, ``neighbour``), which do no matrix products on the
trajectories they perturb, count 0.

Every count runs the real computation once on one trajectory (one training example, one sample,
one perturbed trajectory) and scales it by the number of trajectories: each of these operations is
linear in the number of rows it is given. Training counts one optimiser step (forward, backward)
times the steps; a diffusion model's DDPM sampling and its ``denoise`` kernel count one network
call per reverse step. The count of one trajectory is cached (kind ``flops``, keyed by what
determines it: the model spec and trajectory shape, or the kernel's or surrogate's fingerprint),
so a warm run does not count again. No random stream of a caller is touched: the probes draw from
their own.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["counted", "train_flops", "sample_flops", "kernel_flops", "sampler_flops"]


COST_VERSION = 1   # part of every cached count's key: raise it when a count's rule changes


def _count(name: str, value) -> int:
    """``value`` as a count (an integer >= 0), else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def counted(fn, *args, **kwargs) -> float:
    """The FLOPs of matrix products and convolutions that ``fn(*args, **kwargs)`` runs in torch."""
    with FlopCounterMode(display=False) as fc:
        fn(*args, **kwargs)
    return float(fc.get_total_flops())


def _cached(key: dict, count) -> float:
    """``count()`` (FLOPs of one trajectory), cached under ``key``."""
    from . import cache

    return float(cache.memo("flops", {**key, "v": COST_VERSION},
                            lambda: {"flops": float(count())})["flops"])


def _shape_key(what: str, trained) -> dict:
    return {what: trained.spec.key(), "T": trained.task.T, "C": trained.task.C}


def _step_flops(trained) -> float:
    """FLOPs of one training step of ``trained``'s spec on one example."""
    from .models import train as tr

    spec, task = trained.spec, trained.task
    one = spec.with_(batch_size=1)
    data = torch.zeros(2, task.T, task.C)
    net, ema, opt, gen, sched = tr.initial_state(one, data, 0, torch.device("cpu"))
    cond = torch.full((2,), 0.5) if spec.q_condition else None
    return counted(tr.train_step, net, ema, opt, data, gen, one, sched, 0, cond)


def train_flops(trained) -> float:
    """FLOPs of training ``trained`` (a :class:`paper_lib.models.Trained`): its steps × its
    batch × one example's forward and backward pass."""
    spec = trained.spec
    return spec.train_steps * spec.batch_size * _cached(_shape_key("train_step", trained),
                                                        lambda: _step_flops(trained))


def _network_call(trained) -> float:
    """FLOPs of one call of a diffusion model's network on one trajectory (its ``denoise`` at
    t* = 0: one reverse step)."""
    from . import models

    X = trained.task.from_model(np.zeros((1, trained.task.T, trained.task.C), np.float32))
    return _cached(_shape_key("network_call", trained),
                   lambda: counted(models.denoise, trained, X, 0))


def sample_flops(trained, n: int) -> float:
    """FLOPs of drawing ``n`` trajectories from ``trained`` (``paper_lib.models.sample``: for the
    diffusion classes DDPM, one network call per step; inpainting adds no products)."""
    from . import models

    n = _count("n", n)
    if trained.spec.is_diffusion:
        return n * trained.spec.diffusion_steps * _network_call(trained)
    return n * _cached(_shape_key("sample", trained), lambda: counted(models.sample, trained, 1))


def kernel_flops(kernel, X: np.ndarray, draws: int = 1) -> float:
    """FLOPs of applying ``kernel`` ``draws`` times to each trajectory of X (n, T, C), as
    ``paper_lib.kernels.predict`` does (0 for the data-only kernels: see the module's note; a
    model's ``denoise`` at t*: t* + 1 network calls per trajectory)."""
    from . import cache, kernels

    X, draws = np.asarray(X), _count("draws", draws)
    if len(X) == 0 or draws == 0:
        return 0.0
    if isinstance(kernel, kernels.denoise):
        one = (int(kernel.scale) + 1) * _network_call(kernel.trained)
    else:
        one = _cached({"kernel": cache.fingerprint(kernel), "T": X.shape[1], "C": X.shape[2]},
                      lambda: counted(kernel.sample, X[:1], np.random.default_rng(0)))
    return one * len(X) * draws


def sampler_flops(sampler, n: int) -> float:
    """FLOPs of ``n`` draws of a closed-form surrogate (``paper_lib.surrogates``): its products in
    torch, counted, plus for the low-rank bottleneck its numpy products by formula (the
    covariance of the N training trajectories, 2·N·D², once; 2·r·D per draw; D = T·C)."""
    from .surrogates import LowRank

    n = _count("n", n)
    if isinstance(sampler, LowRank):
        N, D = len(sampler.train), sampler.task.T * sampler.task.C
        return 2.0 * N * D * D + 2.0 * n * sampler.params["rank"] * D
    return n * _cached({"sampler": sampler.fingerprint()},
                       lambda: counted(sampler.sample, 1, np.random.default_rng(0)))
