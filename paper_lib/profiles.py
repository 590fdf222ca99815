"""Run profiles: every size a notebook uses comes from here, never from the notebook itself.

A profile is looked up by name once, at an entry point (``paper_lib.setup`` in a notebook, the
benchmark's ``run``); every library function below takes the resolved :class:`Profile`.

``smoke`` runs the whole pipeline in CI in a few minutes, ``default`` reproduces every figure
and claim on a 2-core laptop CPU, ``paper`` is for a GPU (larger models, several seeds).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = ["Profile", "PROFILES", "get_profile", "require"]


@dataclass(frozen=True)
class Profile:
    """Sizes for one run. Counts are numbers of trajectories unless stated."""

    name: str
    n_train: int = 4096          # training trajectories per synthetic task
    n_examples: int = 6          # trajectories drawn in example figures
    n_recovery: int = 2000       # clean trajectories used to check a measurement
    n_samples: int = 2000        # model samples per figure (docs/design.md §4: >= 2000 at default)
    n_boot: int = 200            # bootstrap resamples for histogram bands
    n_bins: int = 20             # bins over the prior's support (plus under/overflow)
    train_steps: int = 1200      # optimiser steps per model
    batch_size: int = 128
    width: int = 16              # base channel width of the networks (U-Net: ~157k parameters)
    diffusion_steps: int = 100   # DDPM steps
    seeds: tuple[int, ...] = (0, 1, 2)
    # training steps: EMA snapshots of the default run, and models trained that long on their own
    # cosine schedule (plus the final step)
    ablation_steps: tuple[int, ...] = (300, 600)
    # longer than the default, on their own schedule, for the tasks whose diffusion-unet is under
    # 90% plausible (plausibility against training compute, tables/plausibility.csv)
    plausible_steps: tuple[int, ...] = (2400, 4800)
    # the pendulum only: longer still (16× the default), where its motions projected onto their
    # physical constraints pass the task's check 90% of the time (notebook 05)
    pendulum_steps: tuple[int, ...] = (19200,)
    ablation_widths: tuple[int, ...] = (8, 16, 32)        # below and above the default width
    ablation_sizes: tuple[int, ...] = (1024, 4096, 16384)  # below and above the default n_train
    ablation_tasks: tuple[str, ...] = ("cone", "logistic")  # of the width / dataset-size ablations
    ablation_samplers: tuple[tuple[str, int], ...] = (("ddim", 50), ("ddim", 20), ("ddim", 10))
    kernel_draws: int = 2        # kernel draws per training trajectory in a prediction
    kernel_n: int = 2048         # training trajectories a kernel prediction starts from
    localities: tuple[float, ...] = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
    t_stars: tuple[int, ...] = (0, 3, 10, 30, 60)   # denoise levels (of diffusion_steps)
    task_params: dict = field(default_factory=dict)  # per task name: parameter overrides

    def with_(self, **changes) -> "Profile":
        """A copy with some fields changed (for ablations)."""
        return replace(self, **changes)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", n_train=128, n_examples=4, n_recovery=200, n_samples=128, n_boot=50,
        n_bins=10, train_steps=20, batch_size=32, width=8, diffusion_steps=10,
        seeds=(0, 1), ablation_steps=(10,), plausible_steps=(40,), pendulum_steps=(80,),
        ablation_widths=(8, 16),
        ablation_sizes=(64, 128), ablation_tasks=("cone",), ablation_samplers=(("ddim", 5),),
        kernel_draws=1, kernel_n=128,
        localities=(0.5, 1.0, 2.0), t_stars=(0, 2, 5),
        task_params={"maze": {"layout": "umaze", "T": 16}, "pendulum": {"T": 16}},
    ),
    "default": Profile(name="default"),
    "paper": Profile(
        name="paper", n_train=16384, n_samples=8192, n_boot=500, n_bins=30, train_steps=20000,
        batch_size=256, width=64, diffusion_steps=200, seeds=(0, 1, 2, 3, 4),
        ablation_steps=(1000, 3000, 10000, 20000), plausible_steps=(40000,), pendulum_steps=(),
        ablation_widths=(16, 32, 64),
        ablation_sizes=(1024, 4096, 16384), ablation_tasks=("sine", "cone", "logistic"),
        kernel_draws=4, kernel_n=8192,
        t_stars=(0, 2, 5, 10, 20, 40, 80, 120),
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


def require(profile, arg: str = "profile") -> Profile:
    """``profile`` itself if it is a :class:`Profile`, else ``TypeError`` naming ``arg``: library
    functions take a resolved profile; names are looked up once, by ``paper_lib.setup(name)`` or
    :func:`get_profile`."""
    if not isinstance(profile, Profile):
        raise TypeError(f"{arg} must be a Profile, got {profile!r}; resolve a name once with "
                        f"paper_lib.setup(name) or paper_lib.get_profile(name) "
                        f"(valid names: {', '.join(sorted(PROFILES))})")
    return profile
