"""The reference 1D U-Nets the benchmark times ours against (the ``bench`` extra), and the
search for their configuration closest to a parameter count.

* ``denoising_diffusion_pytorch.Unet1D``: loaded by ``paper_lib.models.reference`` (its 1D
  module only; the package's ``__init__`` needs torchvision);
* ``diffusers.UNet1DModel`` in the Diffuser (Janner et al.) configuration; a torchvision that
  cannot be imported is hidden from diffusers.

A missing or broken package is reported as ``(None, reason)``, never raised.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import warnings

# one definition of each: the loader, the parameter counts and the search for Unet1D live with the
# reference model class of the library
from paper_lib.models.reference import (_mults, _unet_shape, closest_ddp_config, ddp_unet1d,
                                        n_params, version)

__all__ = ["ddp_unet1d", "diffusers_unet1d", "diffusers_model", "n_params",
           "closest_ddp_config", "closest_diffusers_config", "version"]


def _torchvision_importable() -> bool:
    """Whether ``import torchvision`` works (checked in a child: a torchvision built for another
    torch, e.g. a CUDA wheel beside the CPU torch, fails half-way and leaves state behind)."""
    if importlib.util.find_spec("torchvision") is None:
        return False
    r = subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True)
    return r.returncode == 0


def diffusers_unet1d():
    """``(UNet1DModel class, note)`` from diffusers, or ``(None, reason)``. A torchvision that
    cannot be imported is hidden from diffusers (it imports it for unrelated video models)."""
    if importlib.util.find_spec("diffusers") is None:
        return None, "not installed"
    note = f"diffusers {version('diffusers')}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if "diffusers.models.unets" not in sys.modules and not _torchvision_importable():
                import diffusers.utils.import_utils as iu

                if hasattr(iu, "_torchvision_available"):
                    iu._torchvision_available = False
                    if importlib.util.find_spec("torchvision") is not None:
                        note += "; installed torchvision not importable, hidden from diffusers"
            from diffusers import UNet1DModel
    except Exception as exc:
        return None, f"import failed: {type(exc).__name__}: {exc}"
    return UNet1DModel, note


def diffusers_model(cls, chans: tuple[int, ...], T: int, C: int):
    """diffusers' 1D U-Net in the Diffuser/RL configuration with ``block_out_channels=chans``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(sample_size=T, in_channels=C, out_channels=C, extra_in_channels=0,
                   time_embedding_type="positional", flip_sin_to_cos=False,
                   use_timestep_embedding=True, freq_shift=1,
                   down_block_types=("DownResnetBlock1D",) * len(chans),
                   up_block_types=("UpResnetBlock1D",) * (len(chans) - 1),
                   mid_block_type="MidResTemporalBlock1D", out_block_type="OutConv1DBlock",
                   block_out_channels=tuple(chans), act_fn="mish", norm_num_groups=8,
                   layers_per_block=1, downsample_each_block=False)


def closest_diffusers_config(cls, target: int, T: int, C: int, levels: int = 3,
                             step: int = 8, max_ch: int = 512) -> tuple[tuple[int, ...], int]:
    """``block_out_channels`` (multiples of ``step`` = the GroupNorm groups, ``levels`` levels,
    shaped as :func:`_unet_shape`) whose parameter count is closest to ``target``, and that
    count. The count grows with every channel, so each loop stops once a configuration passes
    the target."""
    best, seen = None, {}

    def consider(chans) -> int:
        nonlocal best
        if chans not in seen:
            seen[chans] = n_params(lambda: diffusers_model(cls, chans, T, C))
        n = seen[chans]
        if _unet_shape(chans) and (best is None or abs(n - target) < abs(best[1] - target)):
            best = (tuple(chans), n)
        return n

    def grow(prefix: tuple[int, ...]) -> None:
        lo = prefix[-1] if prefix else step
        hi = min(2 * prefix[-1], max_ch) if prefix else max_ch
        for c in range(lo, hi + 1, step):
            chans = prefix + (c,)
            rest = chans + (c,) * (levels - len(chans))  # the smallest completion
            if consider(rest) > target:
                break
            if len(chans) < levels:
                grow(chans)

    grow(())
    return best
