"""``ModelSpec``: everything that determines a model and its training, filled from a profile."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..profiles import Profile, require

__all__ = ["MODEL_CLASSES", "REFERENCE_CLASSES", "MODEL_CODE_VERSION", "ModelSpec", "make_spec"]

MODEL_CLASSES = ("diffusion-unet", "diffusion-mlp", "transformer", "vae")
# implementations from outside this project, trained by the same loop to check that a result is
# not a quirk of our own code (models/reference.py); not among the classes the notebooks compare
REFERENCE_CLASSES = ("ddp-unet1d",)
_KINDS = MODEL_CLASSES + REFERENCE_CLASSES
MODEL_CODE_VERSION = 2  # bump when a change to paper_lib/models changes trained weights
# (2: SiLU instead of Mish in every network, see nets.py)

# per-kind architecture defaults that a profile does not set (``depth`` means: ResBlocks per
# U-Net level are fixed at 1, residual MLP blocks, Transformer layers, encoder/decoder layers)
_KIND_DEFAULTS = {
    "diffusion-unet": {"depth": 1},
    "diffusion-mlp": {"depth": 3},
    "transformer": {"depth": 2},
    "vae": {"depth": 2},
    "ddp-unet1d": {"depth": 1},
}


_LATE_FIELDS = ("condition_frames", "q_condition", "cond_dropout")


@dataclass(frozen=True)
class ModelSpec:
    """One model class and its sizes. ``width`` is the base channel count: U-Net channels are
    ``width * mults``, the MLP denoiser's and the VAE's hidden size ``16 * width``, the
    Transformer's d_model ``2 * width``. Training: AdamW at ``lr`` with a linear warm-up over
    ``warmup`` of the steps and cosine decay to 0, gradient-norm clipping at ``grad_clip``, and an
    EMA of weights with decay ``ema`` (used for sampling by every kind).

    Diffusion defaults to x0-prediction: with the cosine schedule the last step has β = 0.999
    (ᾱ ≈ 2e-7 at K = 100), where an ε-prediction's error is amplified ~30-fold in the first
    reverse step and samples blow up; ``prediction="eps"`` is fine with ``schedule="linear"``
    (K ≥ 50, where β stays below 1)."""

    kind: str
    width: int = 32
    train_steps: int = 3000
    batch_size: int = 128
    lr: float = 2e-3
    diffusion_steps: int = 100
    prediction: str = "x0"        # diffusion target: "x0" (clean trajectory) or "eps" (noise)
    schedule: str = "cosine"      # diffusion noise schedule: "cosine" or "linear"
    ema: float = 0.995
    depth: int = 2
    mults: tuple[int, ...] = (1, 2, 4)  # U-Net channel multipliers (one level each)
    kernel_size: int = 5          # U-Net convolution width (time steps)
    heads: int = 2                # Transformer attention heads
    latent_dim: int = 16          # VAE latent size
    beta: float = 1.0             # VAE KL weight (1: the plain ELBO)
    min_logvar: float = -14.0     # floor of Gaussian log-variances (Transformer, VAE): a guard
                                  # only, below what training reaches (σ ≈ 1e-3 model units)
    condition_frames: tuple[int, ...] = ()  # diffusion: frames whose clean values are imposed
                                  # in x_t in training and at every sampling step (Diffuser's
                                  # apply_conditioning), e.g. (0, -1) for a planner's start/goal
    q_condition: bool = False     # diffusion-unet: condition on the quantity q (an embedding of q
                                  # added to the time embedding; classifier-free guidance)
    cond_dropout: float = 0.1     # with q_condition: share of training rows whose condition is
                                  # dropped (the unconditional model guidance extrapolates from)
    warmup: float = 0.05          # fraction of steps of linear LR warm-up
    weight_decay: float = 1e-4
    grad_clip: float = 1.0

    def __post_init__(self):
        if self.kind not in _KINDS:
            raise ValueError(f"unknown model class {self.kind!r}; valid classes: "
                             f"{', '.join(_KINDS)}")
        if self.prediction not in ("eps", "x0"):
            raise ValueError(f"prediction must be 'eps' or 'x0', got {self.prediction!r}")
        if self.schedule not in ("cosine", "linear"):
            raise ValueError(f"schedule must be 'cosine' or 'linear', got {self.schedule!r}")
        for name in ("width", "train_steps", "batch_size", "diffusion_steps", "depth"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for f in fields(self):  # canonical types, so that 2 and 2.0 give the same cache key
            if f.type in ("int", "float"):
                object.__setattr__(self, f.name, (int if f.type == "int" else float)(
                    getattr(self, f.name)))
        object.__setattr__(self, "mults", tuple(int(m) for m in self.mults))
        object.__setattr__(self, "condition_frames", tuple(int(f) for f in self.condition_frames))
        if self.condition_frames and not self.is_diffusion:
            raise ValueError(f"condition_frames needs a diffusion model, not {self.kind!r}")
        object.__setattr__(self, "q_condition", bool(self.q_condition))
        if self.q_condition and self.kind != "diffusion-unet":
            raise ValueError(f"q_condition needs kind 'diffusion-unet', not {self.kind!r}")
        if not 0.0 < self.cond_dropout < 1.0:
            raise ValueError(f"cond_dropout must lie strictly between 0 and 1 (the share of "
                             f"rows trained without their condition), got {self.cond_dropout!r}")

    def key(self) -> dict:
        """The fields that identify this spec in cache keys. Fields added after models were first
        cached (``_LATE_FIELDS``) are left out at their default, so old keys stay valid."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if not (f.name in _LATE_FIELDS and getattr(self, f.name) == f.default)}

    @property
    def is_diffusion(self) -> bool:
        return self.kind.startswith("diffusion")

    def with_(self, **changes) -> "ModelSpec":
        return make_spec(self, None, **changes)


def make_spec(kind: str | ModelSpec, profile: Profile | None, **overrides) -> ModelSpec:
    """The spec of ``kind`` with sizes (width, train_steps, batch_size, diffusion_steps) from
    ``profile`` (a resolved :class:`Profile`; None: the class defaults only) and any field changed by
    ``overrides``. Unknown kinds or fields raise
    ``ValueError`` naming the valid ones. A ``ModelSpec`` as ``kind`` is copied with overrides."""
    valid = [f.name for f in fields(ModelSpec) if f.name != "kind"]
    bad = sorted(set(overrides) - set(valid))
    if bad:
        raise ValueError(f"unknown model spec field(s) {', '.join(bad)}; valid fields: "
                         f"{', '.join(valid)}")
    if isinstance(kind, ModelSpec):
        return replace(kind, **overrides)
    if kind not in _KINDS:
        raise ValueError(f"unknown model class {kind!r}; valid classes: {', '.join(_KINDS)}")
    sizes = {}
    if profile is not None:
        p = require(profile)
        sizes = {"width": p.width, "train_steps": p.train_steps, "batch_size": p.batch_size,
                 "diffusion_steps": p.diffusion_steps}
    return ModelSpec(kind=kind, **{**_KIND_DEFAULTS[kind], **sizes, **overrides})
