"""Drawing from trained models: ``sample`` for every class, the ``denoise`` data deviation kernel
and the schedule ``alpha_bar`` for the diffusion classes, ``count_params``.

Inputs and outputs are in *task units*, shape (n, T, C) float32; the models work in
``task.to_model`` units internally.
"""
from __future__ import annotations

import numpy as np
import torch

from ..arithmetic import pinned
from ..seeding import derive_seed
from .diffusion import ddim, ddpm, make_schedule, noise_to
from .train import Trained, build, default_device, scaled_quantity

__all__ = ["sample", "denoise", "alpha_bar", "count_params", "load_net"]

DEFAULT_BATCH = 2048


def load_net(trained: Trained, snapshot: int | None = None, device=None) -> torch.nn.Module:
    """The network with the EMA weights (or those of ``snapshot``), in eval mode on ``device``."""
    if snapshot is None:
        state = trained.state
    elif snapshot in trained.snapshots:
        state = trained.snapshots[snapshot]
    else:
        raise ValueError(f"no snapshot at step {snapshot}; recorded: {sorted(trained.snapshots)}")
    with torch.random.fork_rng(devices=[]):  # the throw-away initialisation leaves torch's RNG alone
        net = build(trained.spec, trained.task.T, trained.task.C)
    net.load_state_dict(state)
    return net.to(device or default_device()).eval()


def _inpaint_tensors(inpaint, n: int, task, device):
    """(mask, values) -> bool and model-unit float tensors of shape (n, T, C)."""
    mask, values = inpaint
    shape = (n, task.T, task.C)
    try:
        mask = np.broadcast_to(np.asarray(mask, bool), shape)
        values = np.broadcast_to(np.asarray(values, np.float32), shape)
    except ValueError:
        raise ValueError(f"inpaint mask and values must broadcast to {shape}, got "
                         f"{np.shape(inpaint[0])} and {np.shape(inpaint[1])}") from None
    values = task.to_model(np.where(mask, values, task.from_model(np.zeros(1))))
    return torch.as_tensor(mask.copy(), device=device), torch.as_tensor(values, device=device)


def sample(trained: Trained, n: int, seed: int = 0, steps: int | None = None,
           sampler: str = "ddpm", inpaint=None, snapshot: int | None = None,
           batch: int | None = None, device=None, condition=None,
           guidance: float = 0.0) -> np.ndarray:
    """``n`` trajectories (n, T, C) float32 in task units; deterministic in ``seed``.

    Diffusion classes: ``sampler="ddpm"`` (ancestral, all K steps) or ``"ddim"`` (η = 0, ``steps``
    evenly spaced steps, default K); ``inpaint=(mask, values)`` imposes known entries (mask bool
    (T, C) or (n, T, C), values in task units broadcastable to (n, T, C)) at every step and exactly
    at the end. Transformer: autoregressive draws from the Gaussian heads. VAE: decoder means at
    z ~ N(0, I). ``sampler``/``steps`` only concern the diffusion classes and are ignored
    otherwise. ``snapshot=k``: weights recorded after k training steps. ``batch``: rows per network
    call (memory only). A ``q_condition`` model needs ``condition``: the requested q of every
    sample ((n,) task units, finite) and draws with classifier-free guidance weight ``guidance``
    (w >= 0; 0: the conditional model alone); other models reject both.
    """
    with pinned(trained.spec.kind):
        return _sample(trained, n, seed, steps, sampler, inpaint, snapshot, batch, device,
                       condition, guidance)


def _sample(trained, n, seed, steps, sampler, inpaint, snapshot, batch, device, condition,
            guidance) -> np.ndarray:
    """:func:`sample` in the arithmetic its class runs in."""
    spec, task = trained.spec, trained.task
    device = torch.device(device) if device is not None else default_device()
    net = load_net(trained, snapshot, device)
    gen = torch.Generator().manual_seed(derive_seed(seed, "sample"))
    batch = int(batch or DEFAULT_BATCH)
    n = int(n)
    if not spec.is_diffusion:
        if inpaint is not None:
            raise ValueError(f"inpainting needs a diffusion model, not {spec.kind!r}")
        return task.from_model(net.generate(n, gen, batch).cpu().numpy())
    K = spec.diffusion_steps
    sched = make_schedule(spec)
    q_cond, w = _condition(spec, task, condition, guidance, n, device)
    cond = _inpaint_tensors(inpaint, n, task, device) if inpaint is not None else None
    x = torch.randn(n, task.T, task.C, generator=gen).to(device)
    if sampler == "ddpm":
        if steps not in (None, K):
            raise ValueError(f"the ddpm sampler uses all {K} steps; use sampler='ddim' for fewer")
        z = ddpm(net, x, K - 1, spec, sched, gen, cond, batch, q_cond, w)
    elif sampler == "ddim":
        if not 1 <= int(steps or K) <= K:
            raise ValueError(f"ddim steps must lie in 1..{K}, got {steps}")
        z = ddim(net, x, int(steps or K), spec, sched, gen, cond, batch, q_cond, w)
    else:
        raise ValueError(f"unknown sampler {sampler!r}; valid samplers: ddpm, ddim")
    return task.from_model(z.cpu().numpy())


def _condition(spec, task, condition, guidance, n: int, device):
    """(scaled condition tensor (n,) or None, guidance weight) for :func:`sample`, checked."""
    if not spec.q_condition:
        if condition is not None or guidance:
            raise ValueError(f"condition and guidance need a q_condition model; this "
                             f"{spec.kind} is unconditional")
        return None, 0.0
    if condition is None:
        raise ValueError("a q_condition model needs condition: the requested q of each sample "
                         f"((n,) = ({n},), task units)")
    q = np.asarray(condition, np.float64).reshape(-1)
    if q.shape != (n,) or not np.isfinite(q).all():
        raise ValueError(f"condition must be {n} finite values of q (one per sample), got shape "
                         f"{np.shape(condition)}")
    w = float(guidance)
    if not (np.isfinite(w) and w >= 0):
        raise ValueError(f"guidance must be a finite weight >= 0, got {guidance!r}")
    return torch.as_tensor(scaled_quantity(task, q), device=device), w


def denoise(trained: Trained, X: np.ndarray, t_star: int, seed: int = 0, keep=None,
            batch: int | None = None, device=None) -> np.ndarray:
    """The ``denoise`` data deviation kernel: noise X (n, T, C, task units) to step ``t_star``
    with q(x_t | x_0), run the model's DDPM reverse steps t_star..0, return task units.
    ``keep`` (bool (T, C), optional): entries of X imposed by inpainting at every reverse step, as
    the planner does with its start and goal."""
    spec, task = trained.spec, trained.task
    if not spec.is_diffusion:
        raise ValueError(f"denoise needs a diffusion model, not {spec.kind!r}")
    t_star = int(t_star)
    if not 0 <= t_star < spec.diffusion_steps:
        raise ValueError(f"t_star must lie in 0..{spec.diffusion_steps - 1}, got {t_star}")
    device = torch.device(device) if device is not None else default_device()
    net = load_net(trained, None, device)
    gen = torch.Generator().manual_seed(derive_seed(seed, "denoise", t_star))
    sched = make_schedule(spec)
    x0 = torch.as_tensor(task.to_model(task.check(X)), device=device)
    noise = torch.randn(x0.shape, generator=gen).to(device)
    x = noise_to(x0, torch.full((len(x0),), t_star, device=device), sched, noise)
    cond = _inpaint_tensors((keep, X), len(X), task, device) if keep is not None else None
    z = ddpm(net, x, t_star, spec, sched, gen, cond, int(batch or DEFAULT_BATCH))
    return task.from_model(z.cpu().numpy())


def alpha_bar(trained: Trained) -> np.ndarray:
    """The cumulative schedule ᾱ_t, t = 0..K−1, float64 (K,)."""
    return make_schedule(trained.spec)["alpha_bar"]


def count_params(obj) -> int:
    """Number of parameters of a ``Trained`` model or a torch module."""
    if isinstance(obj, Trained):
        return int(obj.n_params)
    return int(sum(p.numel() for p in obj.parameters()))
