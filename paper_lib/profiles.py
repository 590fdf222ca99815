"""Run profiles: every size a notebook uses comes from here, never from the notebook itself.

``smoke`` runs the whole pipeline in CI in a few minutes, ``default`` reproduces every figure
and claim on a 2-core laptop CPU, ``paper`` is for a GPU (larger models, several seeds).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = ["Profile", "PROFILES", "get_profile"]


@dataclass(frozen=True)
class Profile:
    """Sizes for one run. Counts are numbers of trajectories unless stated."""

    name: str
    n_train: int = 4096          # training trajectories per synthetic task
    n_examples: int = 6          # trajectories drawn in example figures
    n_recovery: int = 2000       # clean trajectories used to check a measurement
    n_samples: int = 2000        # model samples per figure (DESIGN: >= 2000 at default)
    n_boot: int = 200            # bootstrap resamples for histogram bands
    n_bins: int = 20             # bins over the prior's support (plus under/overflow)
    train_steps: int = 3000      # optimiser steps per model
    batch_size: int = 128
    width: int = 32              # base channel width of the networks
    diffusion_steps: int = 100   # DDPM steps
    sample_steps: int = 100      # reverse steps used for figures (DDIM when < diffusion_steps)
    seeds: tuple[int, ...] = (0, 1, 2)
    ablation_steps: tuple[int, ...] = (500, 1000, 3000)
    ablation_widths: tuple[int, ...] = (16, 32)
    ablation_sizes: tuple[int, ...] = (1024, 4096)
    ablation_samplers: tuple[tuple[str, int], ...] = (("ddim", 50), ("ddim", 20), ("ddim", 10))
    extra: dict = field(default_factory=dict)

    def with_(self, **changes) -> "Profile":
        """A copy with some fields changed (for ablations)."""
        return replace(self, **changes)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", n_train=256, n_examples=4, n_recovery=200, n_samples=256, n_boot=50,
        n_bins=10, train_steps=40, batch_size=64, width=8, diffusion_steps=20, sample_steps=20,
        seeds=(0, 1), ablation_steps=(20, 40), ablation_widths=(8, 16), ablation_sizes=(128, 256),
        ablation_samplers=(("ddim", 10), ("ddim", 5)),
    ),
    "default": Profile(name="default"),
    "paper": Profile(
        name="paper", n_train=16384, n_samples=8192, n_boot=500, n_bins=30, train_steps=20000,
        batch_size=256, width=64, diffusion_steps=200, sample_steps=200, seeds=(0, 1, 2, 3, 4),
        ablation_steps=(1000, 3000, 10000, 20000), ablation_widths=(16, 32, 64),
        ablation_sizes=(1024, 4096, 16384),
    ),
}


def get_profile(name: str | Profile) -> Profile:
    """Look a profile up by name; an unknown name raises ``ValueError`` listing the valid ones."""
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown profile {name!r}; valid profiles: {', '.join(sorted(PROFILES))}"
        ) from None
