"""A reference DDPM from outside this project: ``Unet1D`` + ``GaussianDiffusion1D`` of
denoising-diffusion-pytorch (Phil Wang's widely used implementation), as model class
``ddp-unet1d``.

It answers a reviewer's question: is the drift a quirk of this project's own DDPM? The network,
the noise schedule, the training objective (its default, ε-prediction), the clipping of the
denoised estimate to [-1, 1] and the ancestral sampler are all the package's; this project only
feeds it data and runs the same optimiser loop as for every other class (``models.fit``: AdamW,
warm-up and cosine decay, gradient clipping, EMA), so the comparison is at an equal training
budget. The package's ``Unet1D`` is sized to the parameter count of our ``diffusion-unet`` at the
same ``width`` (:func:`closest_ddp_config`).

The package expects data in [0, 1] (``auto_normalize``); each channel is mapped there from its
range over the training set (model units), and samples are mapped back.

Only the package's 1D module is imported: its ``__init__`` pulls in the 2D image code, which
needs torchvision (absent here: its wheels would replace the CPU torch). The package is installed
without its dependencies by ``make setup``; the 1D module needs einops, ema-pytorch, accelerate.
"""
from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import sys
import types
import warnings

import torch
from torch import nn

__all__ = ["ReferenceDDPM", "load_ddp1d", "ddp_unet1d", "closest_ddp_config", "n_params",
           "version"]

_PACKAGE = "denoising_diffusion_pytorch"


def version(dist: str) -> str:
    """The installed version of distribution ``dist``, or "not installed"."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def load_ddp1d():
    """``(module, note)``: the ``denoising_diffusion_pytorch_1d`` module, or ``(None, reason)``
    when the package is missing or cannot be imported (never raises). The package is entered
    under a bare module object, so that its ``__init__`` (the 2D code) is not run."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None:
        return None, "not installed"
    stub = _PACKAGE not in sys.modules
    if stub:
        pkg = types.ModuleType(_PACKAGE)
        pkg.__path__ = list(spec.submodule_search_locations)
        pkg.__spec__, pkg.__file__ = spec, spec.origin
        sys.modules[_PACKAGE] = pkg
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = importlib.import_module(f"{_PACKAGE}.denoising_diffusion_pytorch_1d")
    except Exception as exc:  # a broken install is reported, not fatal
        if stub:
            sys.modules.pop(_PACKAGE, None)
        return None, f"import failed: {type(exc).__name__}: {exc}"
    return mod, f"denoising-diffusion-pytorch {version('denoising-diffusion-pytorch')}"


def ddp_unet1d():
    """``(Unet1D class, note)`` from denoising-diffusion-pytorch, or ``(None, reason)``."""
    mod, note = load_ddp1d()
    return (mod.Unet1D if mod is not None else None), note


def n_params(make) -> int:
    """Parameter count of ``make()`` built on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        return int(sum(p.numel() for p in make().parameters()))


def _unet_shape(chans) -> bool:
    """Channels of a U-Net's levels: never shrinking, at most doubling per level, and the
    deepest level wider than the first (as ours, ``width * (1, 2, 4)``)."""
    return all(a <= b <= 2 * a for a, b in zip(chans, chans[1:])) and chans[-1] > chans[0]


def _mults(levels: int) -> list[tuple[int, ...]]:
    """Channel multipliers (1, m2, ...) of :func:`_unet_shape`."""
    out = [(1,)]
    for _ in range(levels - 1):
        out = [m + (k,) for m in out for k in range(m[-1], 2 * m[-1] + 1)]
    return [m for m in out if _unet_shape(m)]


def closest_ddp_config(cls, target: int, C: int, levels: int = 3) -> tuple[dict, int]:
    """``Unet1D`` keyword arguments (``dim``, ``dim_mults``) with ``levels`` levels whose
    parameter count is closest to ``target``, and that count. Every multiplier pattern of
    :func:`_mults` is tried with ``dim`` rising until the count passes the target; ``dim`` is
    even (its sinusoidal time embedding has 2 * (dim // 2) features but the next layer expects
    ``dim``)."""
    best = None
    for mults in _mults(levels):
        for dim in range(2, 513, 2):
            n = n_params(lambda: cls(dim=dim, dim_mults=mults, channels=C))
            if best is None or abs(n - target) < abs(best[1] - target):
                best = ({"dim": dim, "dim_mults": mults}, n)
            if n > target:
                break
    return best


@functools.lru_cache(maxsize=None)
def _matched_config(target: int, C: int, levels: int) -> dict:
    """The ``Unet1D`` configuration with ``levels`` levels closest to ``target`` parameters."""
    mod, note = load_ddp1d()
    if mod is None:
        raise ImportError(f"model class 'ddp-unet1d' needs denoising-diffusion-pytorch ({note}); "
                          f"`make setup` installs it")
    return closest_ddp_config(mod.Unet1D, int(target), int(C), int(levels))[0]


def _reseed(gen: torch.Generator) -> None:
    """Seed torch's global RNG from ``gen``: the package draws its noise and time steps from the
    global RNG, and the draws must follow this project's seeded (and checkpointed) generator."""
    torch.manual_seed(int(torch.randint(2 ** 62, (1,), generator=gen)))


class ReferenceDDPM(nn.Module):
    """denoising-diffusion-pytorch's ``GaussianDiffusion1D(Unet1D)`` behind the interface of the
    project's non-diffusion classes: ``loss(x, gen)`` and ``generate(n, gen, batch)`` on
    (B, T, C) tensors in model units. ``target``: the parameter count to match (that of our U-Net,
    computed by ``train.build``) with a ``levels``-level ``Unet1D``; ``steps``: diffusion steps K
    (the package's ``timesteps``).
    Call :meth:`set_range` with the training data before training."""

    def __init__(self, T: int, C: int, target: int, levels: int, steps: int):
        super().__init__()
        cfg = _matched_config(target, C, levels)
        mod, _ = load_ddp1d()
        net = mod.Unet1D(**cfg, channels=C)
        self.diffusion = mod.GaussianDiffusion1D(net, seq_length=T, timesteps=steps)
        self.register_buffer("lo", torch.zeros(C))
        self.register_buffer("span", torch.ones(C))

    def set_range(self, data: torch.Tensor) -> None:
        """Per-channel range of the training data (n, T, C), mapped to [0, 1] for the package."""
        lo, hi = data.amin((0, 1)), data.amax((0, 1))
        self.lo.copy_(lo)
        self.span.copy_(torch.where(hi > lo, hi - lo, torch.ones_like(hi)))

    def _to_unit(self, x):     # (B, T, C) model units -> (B, C, T) in [0, 1]
        return ((x - self.lo) / self.span).transpose(1, 2)

    def _from_unit(self, u):   # (B, C, T) in [0, 1] -> (B, T, C) model units
        return u.transpose(1, 2) * self.span + self.lo

    def loss(self, x, gen):
        """The package's training loss (ε-prediction MSE at a random step) on a batch."""
        with torch.random.fork_rng(devices=[]):
            _reseed(gen)
            return self.diffusion(self._to_unit(x))

    @torch.no_grad()
    def generate(self, n: int, gen: torch.Generator, batch: int = 2048):
        """``n`` samples by the package's ancestral sampler (its ``p_sample`` at every step from
        K − 1 to 0, without its progress bar), ``batch`` rows at a time."""
        d, out = self.diffusion, []
        C, T = d.channels, d.seq_length
        with torch.random.fork_rng(devices=[]):
            for i in range(0, n, batch):
                _reseed(gen)
                img = torch.randn(min(batch, n - i), C, T, device=self.lo.device)
                for t in reversed(range(d.num_timesteps)):
                    img, _ = d.p_sample(img, t)
                out.append(self._from_unit(d.unnormalize(img)))
        return torch.cat(out)
