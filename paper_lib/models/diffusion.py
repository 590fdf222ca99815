"""DDPM over whole trajectories: noise schedules, the training loss, ancestral (DDPM) and DDIM
reverse processes, and Diffuser-style inpainting.

All tensors are in model units, shape (n, T, C); ``t`` counts diffusion steps 0..K−1 with
K = ``spec.diffusion_steps``; x_t ~ q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I). Noise is drawn on the
CPU from a ``torch.Generator`` and moved to the model's device, so a seed gives the same draws
everywhere.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["make_schedule", "diffusion_loss", "ddpm", "ddim", "noise_to"]


def make_schedule(spec) -> dict[str, np.ndarray]:
    """Schedule arrays of length K (float64): ``beta``, ``alpha_bar`` (ᾱ_t = Π_{s≤t}(1 − β_s)),
    ``alpha_bar_prev`` (ᾱ_{t−1}, with ᾱ_{−1} = 1) and ``post_var`` (the DDPM posterior variance).
    ``cosine``: Nichol & Dhariwal (s = 0.008, β ≤ 0.999); ``linear``: β from 1e-4 to 0.02 rescaled
    by 1000/K as in improved DDPM."""
    K = int(spec.diffusion_steps)
    if spec.schedule == "cosine":
        s = 0.008
        f = np.cos((np.arange(K + 1) / K + s) / (1 + s) * math.pi / 2) ** 2
        beta = np.clip(1 - f[1:] / f[:-1], 0, 0.999)
    else:
        beta = np.linspace(1e-4 * 1000 / K, min(0.02 * 1000 / K, 0.999), K)
    alpha_bar = np.cumprod(1 - beta)
    prev = np.concatenate([[1.0], alpha_bar[:-1]])
    post_var = beta * (1 - prev) / (1 - alpha_bar)
    return {"beta": beta, "alpha_bar": alpha_bar, "alpha_bar_prev": prev, "post_var": post_var}


def _randn(shape, gen: torch.Generator, device) -> torch.Tensor:
    return torch.randn(shape, generator=gen).to(device)


def noise_to(x0: torch.Tensor, t: torch.Tensor, sched, noise: torch.Tensor) -> torch.Tensor:
    """x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε for per-row steps ``t`` (n,) and noise like x0."""
    ab = torch.as_tensor(sched["alpha_bar"], dtype=x0.dtype, device=x0.device)[t][:, None, None]
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def diffusion_loss(net, x0: torch.Tensor, gen: torch.Generator, spec, sched,
                   cond: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error of the ε- or x0-prediction at a uniformly drawn step t per row;
    ``cond`` (n,): the condition of each row for a ``q_condition`` network (NaN: none)."""
    t = torch.randint(int(spec.diffusion_steps), (len(x0),), generator=gen).to(x0.device)
    eps = _randn(x0.shape, gen, x0.device)
    xt = noise_to(x0, t, sched, eps)
    if spec.condition_frames:   # Diffuser: the conditioned frames are seen clean
        f = list(spec.condition_frames)
        xt[:, f] = x0[:, f]
    pred = net(xt, t) if cond is None else net(xt, t, cond)
    return F.mse_loss(pred, eps if spec.prediction == "eps" else x0)


def _guided(net, x, t, cond, guidance: float):
    """The network's output for rows x at steps t: plain (``cond`` None), or with classifier-free
    guidance (Ho & Salimans 2022) out = (1 + w) out(c) − w out(∅), w = ``guidance``; linear in the
    output, so the same rule holds for an x0- and an ε-prediction."""
    if cond is None:
        return net(x, t)
    out = net(x, t, cond)
    if guidance == 0:
        return out
    return (1 + guidance) * out - guidance * net(x, t, torch.full_like(cond, float("nan")))


def _predict(net, x, t: int, spec, sched, batch: int, cond=None, guidance: float = 0.0):
    """(x0_hat, eps_hat) at step ``t`` for all rows of x, evaluated in chunks of ``batch`` rows
    (``cond`` (n,), ``guidance``: see :func:`_guided`)."""
    tt = torch.full((len(x),), t, dtype=torch.long, device=x.device)
    out = torch.cat([_guided(net, x[i:i + batch], tt[i:i + batch],
                             None if cond is None else cond[i:i + batch], guidance)
                     for i in range(0, len(x), batch)])
    ab = float(sched["alpha_bar"][t])
    if spec.prediction == "eps":
        return (x - math.sqrt(1 - ab) * out) / math.sqrt(ab), out
    return out, (x - math.sqrt(ab) * out) / math.sqrt(1 - ab)


def _impose(x, t: int, inpaint, sched, gen, clean: bool = False):
    """Inpainting: known entries of x_t replaced by their values noised to level t (t = −1 or
    ``clean``: the exact values, as Diffuser's apply_conditioning does for a model trained with
    ``condition_frames``). ``inpaint`` is (mask, values), tensors broadcastable to x."""
    if inpaint is None:
        return x
    mask, values = inpaint
    values = values.expand_as(x)
    if t >= 0 and not clean:
        ab = float(sched["alpha_bar"][t])
        values = math.sqrt(ab) * values + math.sqrt(1 - ab) * _randn(x.shape, gen, x.device)
    return torch.where(mask, values, x)


@torch.no_grad()
def ddpm(net, x, t_start: int, spec, sched, gen, inpaint=None, batch: int = 2048, cond=None,
         guidance: float = 0.0):
    """Ancestral sampling from x at step ``t_start`` (x = x_{t_start}) down to x_0 (``cond``,
    ``guidance``: a q-conditioned network's condition per row and guidance weight)."""
    for t in range(int(t_start), -1, -1):
        x = _impose(x, t, inpaint, sched, gen, bool(spec.condition_frames))
        x0, _ = _predict(net, x, t, spec, sched, batch, cond, guidance)
        ab, prev, beta = (float(sched[k][t]) for k in ("alpha_bar", "alpha_bar_prev", "beta"))
        x = (beta * math.sqrt(prev) / (1 - ab)) * x0 + ((1 - prev) * math.sqrt(1 - beta)
                                                         / (1 - ab)) * x
        if t > 0:
            x = x + math.sqrt(float(sched["post_var"][t])) * _randn(x.shape, gen, x.device)
    return _impose(x, -1, inpaint, sched, gen)


@torch.no_grad()
def ddim(net, x, steps: int, spec, sched, gen, inpaint=None, batch: int = 2048, cond=None,
         guidance: float = 0.0):
    """Deterministic DDIM (η = 0) from pure noise x over ``steps`` evenly spaced steps."""
    K = int(spec.diffusion_steps)
    ts = np.unique(np.linspace(0, K - 1, int(steps)).round().astype(int))[::-1]
    for i, t in enumerate(ts):
        x = _impose(x, int(t), inpaint, sched, gen, bool(spec.condition_frames))
        x0, eps = _predict(net, x, int(t), spec, sched, batch, cond, guidance)
        prev = float(sched["alpha_bar"][ts[i + 1]]) if i + 1 < len(ts) else 1.0
        x = math.sqrt(prev) * x0 + math.sqrt(1 - prev) * eps
    return _impose(x, -1, inpaint, sched, gen)
