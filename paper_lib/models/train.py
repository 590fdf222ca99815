"""``fit``: the one training loop shared by every model class, with caching and resumable
checkpoints.

A trained model is cached under a hash of (task, dataset spec, model spec, profile name, seed,
snapshot steps, ``MODEL_CODE_VERSION``). While training, a checkpoint (weights, EMA, optimiser,
step, generator state, losses so far) is written atomically every quarter of the run and at least
every ``CHECKPOINT_SECONDS``; a later ``fit`` with the same key resumes from it and ends with
bitwise the same weights as an uninterrupted run (on the same device; training is single-threaded,
so the thread count does not matter).
"""
from __future__ import annotations

import contextlib
import contextvars
import copy
import io
import math
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from tqdm import tqdm

from .. import arithmetic, cache
from ..profiles import Profile, require
from ..seeding import derive_seed
from ..tasks import Task, get_task
from .diffusion import diffusion_loss, make_schedule
from .nets import MLPDenoiser, UNet1D
from .reference import ReferenceDDPM, n_params
from .sequence import ARTransformer, TrajectoryVAE
from .spec import MODEL_CODE_VERSION, ModelSpec, make_spec

__all__ = ["Trained", "fit", "build", "default_device", "cache_only", "NotCached",
           "CHECKPOINT_SECONDS", "scaled_quantity"]

CHECKPOINT_SECONDS = 30.0
_CACHE_ONLY = contextvars.ContextVar("cache_only", default=False)


class NotCached(LookupError):
    """Raised by ``fit`` inside :func:`cache_only` when the model would have to be trained."""


@contextlib.contextmanager
def cache_only():
    """Within this block ``fit`` loads cached models and raises :class:`NotCached` instead of
    training (``paper_lib.parallel`` uses it to send only the missing models to workers)."""
    token = _CACHE_ONLY.set(True)
    try:
        yield
    finally:
        _CACHE_ONLY.reset(token)


@dataclass
class Trained:
    """A trained model: ``state`` holds the EMA weights used for sampling (CPU tensors),
    ``snapshots[k]`` the EMA weights after k steps, ``losses`` the training loss of every step,
    ``train_seconds`` the wall time of the training itself (kept when loaded from the cache),
    ``from_cache`` whether this object was loaded rather than trained."""

    spec: ModelSpec
    task: Task
    state: dict
    snapshots: dict = field(default_factory=dict)
    train_seconds: float = 0.0
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    n_params: int = 0
    from_cache: bool = False

    def fingerprint(self) -> dict:
        """What determines the model's outputs, JSON-able: the spec's key, the task and a hash of
        every weight tensor (EMA and snapshots), for cache keys of results computed with it."""
        tensors = {k: cache.fingerprint(v) for k, v in sorted(self.state.items())}
        snaps = {str(k): cache.spec_key("weights", {n: cache.fingerprint(v) for n, v in
                                                    sorted(w.items())})
                 for k, w in sorted(self.snapshots.items())}
        return {"model": self.spec.key(), "task": cache.spec_key("task", self.task),
                "weights": cache.spec_key("weights", tensors), "snapshots": snaps}


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build(spec: ModelSpec, T: int, C: int) -> torch.nn.Module:
    """The network of ``spec`` for trajectories of shape (T, C) (weights from torch's RNG)."""
    w = spec.width
    if spec.kind == "diffusion-unet":
        if T % 2 ** (len(spec.mults) - 1):
            raise ValueError(f"diffusion-unet with {len(spec.mults)} levels needs T divisible by "
                             f"{2 ** (len(spec.mults) - 1)}, got T={T}")
        return UNet1D(C, w, spec.mults, spec.kernel_size, spec.depth, spec.q_condition)
    if spec.kind == "diffusion-mlp":
        return MLPDenoiser(T, C, 16 * w, spec.depth)
    if spec.kind == "transformer":
        if (2 * w) % spec.heads:
            raise ValueError(f"transformer d_model 2*width={2 * w} is not divisible by "
                             f"heads={spec.heads}")
        return ARTransformer(T, C, 2 * w, spec.depth, spec.heads, spec.min_logvar)
    if spec.kind == "ddp-unet1d":
        # sized like the diffusion-unet of the same width, levels, kernel size and depth
        twin = n_params(lambda: build(replace(spec, kind="diffusion-unet"), T, C))
        return ReferenceDDPM(T, C, twin, len(spec.mults), spec.diffusion_steps)
    return TrajectoryVAE(T, C, 16 * w, spec.latent_dim, spec.depth, spec.min_logvar, spec.beta)


def _state(module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def _lr(spec: ModelSpec, step: int) -> float:
    """Linear warm-up over ``spec.warmup`` of the run, then cosine decay to 0."""
    warm = max(1, round(spec.warmup * spec.train_steps))
    cosine = 0.5 * (1 + math.cos(math.pi * step / spec.train_steps))
    return spec.lr * min(1.0, (step + 1) / warm) * cosine


def _save_checkpoint(path, net, ema, opt, gen, step, losses, snaps, seconds) -> None:
    buf = io.BytesIO()
    torch.save({"net": _state(net), "ema": _state(ema), "opt": opt.state_dict(),
                "gen": gen.get_state(), "step": step, "losses": list(losses),
                "snapshots": snaps, "seconds": seconds}, buf)
    cache.atomic_write_bytes(path, buf.getvalue())


def _load_checkpoint(path):
    if not path.exists():
        return None
    try:  # on the CPU: the generator state must stay there; load_state_dict moves the rest
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged checkpoint is dropped, training starts over
        warnings.warn(f"checkpoint {path.name} is unreadable ({exc}); starting over",
                      cache.CacheCorruptWarning, stacklevel=3)
        path.unlink(missing_ok=True)
        return None


def train_step(net, ema, opt, data, gen, spec, sched, step: int, cond=None) -> torch.Tensor:
    """One optimiser step at step number ``step``: a batch of ``spec.batch_size`` rows drawn from
    ``data`` (model units, (n, T, C) tensor) with ``gen``, the loss (``diffusion_loss`` with
    ``sched`` for the diffusion kinds, else ``net.loss``), backward, gradient clipping, the
    learning rate of the schedule, AdamW, and the EMA update of ``ema``. ``cond`` (n,): the scaled
    quantity of each row for a ``q_condition`` model; a share ``spec.cond_dropout`` of the batch
    is trained without it (NaN). Returns the loss."""
    idx = torch.randint(len(data), (spec.batch_size,), generator=gen).to(data.device)
    x = data[idx]
    c = None
    if cond is not None:
        c = cond[idx].clone()
        c[(torch.rand(len(c), generator=gen) < spec.cond_dropout).to(c.device)] = float("nan")
    loss = (diffusion_loss(net, x, gen, spec, sched, c) if spec.is_diffusion
            else net.loss(x, gen))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), spec.grad_clip)
    for g in opt.param_groups:
        g["lr"] = _lr(spec, step)
    opt.step()
    decay = min(spec.ema, (1 + step) / (10 + step))
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), net.parameters()):
            pe.lerp_(p, 1 - decay)
    return loss


def scaled_quantity(task: Task, q) -> np.ndarray:
    """q (n,) in task units -> the condition a ``q_condition`` model sees: (q − lo) / (hi − lo),
    float32 (0..1 over the prior's support)."""
    return ((np.asarray(q, np.float64) - task.lo) / (task.hi - task.lo)).astype(np.float32)


def _train(spec, task, X, seed, snapshots, show, ckpt_path, device, stop_after, q=None) -> dict:
    """Training on one thread: a small model's step hardly speeds up with more threads, and the
    weights then do not depend on the thread count (see ``paper_lib.parallel`` for running
    several trainings side by side)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with arithmetic.pinned(spec.kind):
            return _train_loop(spec, task, X, seed, snapshots, show, ckpt_path, device,
                               stop_after, q)
    finally:
        torch.set_num_threads(threads)


def initial_state(spec: ModelSpec, data: torch.Tensor, seed: int, device) -> tuple:
    """What a training run starts from: ``(net, ema, opt, gen, sched)``, the freshly initialised
    network (weights from ``seed``), its EMA copy, AdamW, the batch generator and the diffusion
    schedule (None for the other kinds). ``data``: the training set in model units, (n, T, C)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init", spec.kind))
        net = build(spec, *data.shape[1:]).to(device)
    if hasattr(net, "set_range"):   # a reference DDPM maps the data into its own range
        net.set_range(data)
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=spec.lr, weight_decay=spec.weight_decay,
                            **arithmetic.optimizer_options(spec.kind))
    gen = torch.Generator().manual_seed(derive_seed(seed, "train", spec.kind))
    sched = make_schedule(spec) if spec.is_diffusion else None
    return net, ema, opt, gen, sched


def _train_loop(spec, task, X, seed, snapshots, show, ckpt_path, device, stop_after,
                q=None) -> dict:
    data = torch.as_tensor(task.to_model(X), device=device)
    cond = torch.as_tensor(scaled_quantity(task, q), device=device) if spec.q_condition else None
    net, ema, opt, gen, sched = initial_state(spec, data, seed, device)
    step, losses, snaps, seconds = 0, [], {}, 0.0
    ck = _load_checkpoint(ckpt_path) if ckpt_path is not None else None
    if ck is not None:
        net.load_state_dict(ck["net"]), ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"]), gen.set_state(ck["gen"])
        step, losses, snaps, seconds = ck["step"], ck["losses"], ck["snapshots"], ck["seconds"]
    marks = {round(spec.train_steps * f) for f in (0.25, 0.5, 0.75)}
    start = last_ckpt = time.perf_counter()
    bar = tqdm(total=spec.train_steps, initial=step, disable=not show, leave=False,
               desc=f"{spec.kind} on {task.name}")
    net.train()
    while step < spec.train_steps:
        loss = train_step(net, ema, opt, data, gen, spec, sched, step, cond)
        losses.append(float(loss.detach()))
        step += 1
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        if step in snapshots:
            snaps[step] = _state(ema)
        now = time.perf_counter()
        if ckpt_path is not None and step < spec.train_steps and (
                step in marks or now - last_ckpt >= CHECKPOINT_SECONDS):
            _save_checkpoint(ckpt_path, net, ema, opt, gen, step, losses, snaps,
                             seconds + now - start)
            last_ckpt = now
        if stop_after is not None and step >= stop_after:
            bar.close()
            raise KeyboardInterrupt(f"_stop_after={stop_after} (simulated interruption)")
    bar.close()
    return {"spec": asdict(spec), "task": task, "state": _state(ema), "snapshots": snaps,
            "train_seconds": seconds + time.perf_counter() - start,
            "losses": np.asarray(losses, np.float32),
            "n_params": sum(p.numel() for p in net.parameters())}


def _trained(payload: dict, from_cache: bool) -> Trained:
    d = dict(payload["spec"])
    d["mults"] = tuple(d["mults"])
    return Trained(ModelSpec(**d), payload["task"], payload["state"], dict(payload["snapshots"]),
                   float(payload["train_seconds"]), payload["losses"], int(payload["n_params"]),
                   from_cache)


def fit(spec: ModelSpec | str, dataset, profile: Profile, seed: int = 0,
        use_cache: bool = True, progress: bool | None = None, snapshots=(), device=None,
        _stop_after: int | None = None) -> Trained:
    """Train ``spec`` (a ``ModelSpec`` or a kind name, sized by ``profile``) on ``dataset``
    (trajectories (n, T, C) in task units; the model sees ``task.to_model(X)``).

    Deterministic in ``seed``. Loads the cached model when there is one (``use_cache``), else
    trains (resuming from a checkpoint if an earlier run was interrupted) and stores it.
    ``snapshots``: step counts at which a copy of the EMA weights is kept (for drift versus
    training steps). ``progress``: show a tqdm bar (default: not under the smoke profile and
    only on a terminal). ``_stop_after``: testing hook, raises ``KeyboardInterrupt`` after that
    many steps of this call, as an interruption would.
    """
    profile = require(profile)
    spec = make_spec(spec, profile) if isinstance(spec, str) else spec
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec or a model class name, "
                        f"got {type(spec).__name__}")
    params = dataset.spec.get("params")
    task = params if isinstance(params, Task) else get_task(dataset.task)
    X = task.check(dataset.X)
    q = np.asarray(dataset.q, np.float64) if spec.q_condition else None
    if q is not None and not np.isfinite(q).all():
        raise ValueError("a q_condition model needs a finite quantity q for every training "
                         "trajectory")
    snapshots = tuple(sorted({int(s) for s in snapshots}))
    if any(s < 1 or s > spec.train_steps for s in snapshots):
        raise ValueError(f"snapshot steps must lie in 1..{spec.train_steps}, got {snapshots}")
    key = {"task": task, "data": dataset.spec, "model": spec.key(), "profile": profile.name,
           "seed": int(seed), "snapshots": snapshots, "v": MODEL_CODE_VERSION}
    if use_cache:
        hit = cache.load("model", key)
        if hit is not None:
            return _trained(hit, from_cache=True)
        if _CACHE_ONLY.get():
            raise NotCached(f"{spec.kind} on {task.name} (seed {seed}) is not in the cache")
        with cache.locked("model", key):   # another process may be training the same model
            hit = cache.load("model", key)
            if hit is not None:
                return _trained(hit, from_cache=True)
            return _fit_and_store(spec, task, X, seed, snapshots, progress, profile, key,
                                  device, _stop_after, q)
    return _fit_and_store(spec, task, X, seed, snapshots, progress, profile, None, device,
                          _stop_after, q)


def _fit_and_store(spec, task, X, seed, snapshots, progress, profile, key, device,
                   stop_after, q=None) -> Trained:
    """Train (resuming from a checkpoint when ``key`` is given), store under ``key``."""
    use_cache = key is not None
    show = progress if progress is not None else (profile.name != "smoke" and sys.stderr.isatty())
    ckpt = cache.cache_dir() / "checkpoints" / f"{cache.spec_key('model', key)}.pt" \
        if use_cache else None
    device = torch.device(device) if device is not None else default_device()
    payload = _train(spec, task, X, int(seed), set(snapshots), show, ckpt, device, stop_after, q)
    if use_cache:
        cache.store("model", key, payload)
        ckpt.unlink(missing_ok=True)
    return _trained(payload, from_cache=False)
