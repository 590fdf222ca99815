"""Closed-form ("training-free") stand-ins for the inductive bias of each model class: samplers
and data deviation kernels built from the training set alone, to forecast a model's drift before
it is trained.

* ``diffusion-unet`` → :class:`PatchMosaic`, the equivariant local score (ELS) machine of Kamb &
  Ganguli, "An analytic theory of creativity in convolutional diffusion models" (ICML 2025,
  arXiv 2412.20292): at each reverse step the denoised value at time i is the posterior-weighted
  mean of the centres of *local* training patches taken at every position of every training
  trajectory, with a patch size P(t) per diffusion step (:func:`calibrate_patch_schedule` fits
  it to a trained U-Net; :func:`two_stage_schedule` builds the exact-then-local schedule).
* ``diffusion-mlp`` → :class:`SmoothedClosedForm`, the σ-CFDM of Scarvelis, Borde & Solomon,
  "Closed-Form Diffusion Models" (TMLR 2025, arXiv 2310.12395): the empirical optimal denoiser
  averaged over Gaussian jitter of its input.
* ``transformer`` → :class:`NearestContext`: each step continues the k nearest training contexts.
* ``vae`` → :class:`LowRank`: probabilistic PCA, the top principal components of the data.

``SURROGATES`` maps each model class to its surrogate.

Samplers have ``name``, ``kind`` (the model class), ``params`` (their free parameters),
``fingerprint()`` (a JSON-able cache key, arrays hashed) and ``sample(n, rng, inpaint=None) ->
(n, T, C)`` float32 in task units, deterministic for a given state of the numpy Generator ``rng``
(torch draws come from a ``torch.Generator`` seeded from it). Kernels (:class:`surrogate_denoise`
for the two diffusion surrogates, :class:`lowrank`) are :class:`paper_lib.kernels.Kernel`\\ s, so
``kernels.predict`` and ``kernels.kernel_locality`` take them unchanged.

Everything works in model units (``task.to_model``), as the networks do; inputs and outputs are
in task units. The diffusion surrogates share the trained models' schedule
(:func:`paper_lib.models.diffusion.make_schedule`) and reverse process (their denoiser is handed
to :func:`paper_lib.models.diffusion.ddpm` as an x0-predicting network), inpainting included.
Posterior weights are softmaxes of −‖q − √ᾱ b‖² / (2(1 − ᾱ)) over a bank b, from one
float32 matmul per block of at most ``CHUNK`` weights (4 MB).
"""
from __future__ import annotations

import math
import numbers
import re

import numpy as np
import torch
import torch.nn.functional as F

from . import cache
from .kernels import Kernel, _check_X
from .metrics import _integer
from .models.diffusion import _predict, ddpm, make_schedule, noise_to
from .models.sampling import _inpaint_tensors, load_net
from .models.spec import make_spec
from .models.train import default_device
from .tasks import get_task

__all__ = ["Surrogate", "PatchMosaic", "SmoothedClosedForm", "NearestContext", "LowRank",
           "SURROGATES", "surrogate_denoise", "lowrank", "empirical_x0", "mosaic_x0",
           "PatchBank", "exact_size", "size_ladder", "two_stage_schedule", "two_stage_mosaic",
           "two_stage_label", "read_two_stage_label",
           "calibrate_patch_schedule", "model_x0", "CHUNK", "SURROGATE_VERSION"]

SURROGATE_VERSION = 1   # bump when a change here changes what a surrogate draws
CHUNK = 1 << 20         # posterior weights per block (float32 elements: 4 MB, cache-sized)
_CPU = torch.device("cpu")


# ----------------------------------------------------------------------------- checks

def _finite(name: str, value, minimum: float = 0.0) -> float:
    """``value`` as a float if it is a finite real number >= ``minimum``, else ``ValueError``."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) \
        and bool(np.isfinite(value)) and float(value) >= minimum
    if not ok:
        raise ValueError(f"{name} must be a finite number >= {minimum:g}, got {value!r}")
    return float(value)


def _bounded(name: str, value, lo: int, hi: int) -> int:
    """``value`` as an int in [lo, hi], else ``ValueError`` naming ``name``."""
    v = _integer(name, value, minimum=lo)
    if v > hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return v


def _noise_schedule(steps, noise_schedule: str):
    """(spec, schedule dict) of a K-step DDPM with x0-prediction, as the trained models use."""
    steps = _integer("steps", steps)
    if noise_schedule not in ("cosine", "linear"):
        raise ValueError(f"noise_schedule must be 'cosine' or 'linear', got {noise_schedule!r}")
    spec = make_spec("diffusion-unet", None, diffusion_steps=steps, schedule=noise_schedule)
    return spec, make_schedule(spec)


def _steps(name: str, value, K: int) -> np.ndarray:
    """``value`` as a non-empty int64 array of diffusion steps in [0, K), else ``ValueError``."""
    t = np.asarray(value)
    if t.ndim != 1 or len(t) == 0 or not np.issubdtype(t.dtype, np.integer) \
            or (t < 0).any() or (t >= K).any():
        raise ValueError(f"{name} must be a non-empty list of steps in [0, {K - 1}], got "
                         f"{value!r}")
    return t.astype(np.int64)


def _torch_gen(rng: np.random.Generator) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(2 ** 63 - 1)))


# ----------------------------------------------------------------------------- denoisers

def _posterior_mean(q: torch.Tensor, bank: torch.Tensor, values: torch.Tensor,
                    alpha_bar: float) -> torch.Tensor:
    """Σ_j w_ij values_j, w_i = softmax_j(−‖q_i − √ᾱ bank_j‖² / (2(1 − ᾱ))): the posterior
    mean of ``values`` under x_t = √ᾱ b + √(1 − ᾱ) ε, b uniform over the bank. q (m, d), bank
    (N, d), values (N, c) float32 -> (m, c)."""
    a = math.sqrt(alpha_bar) / (1 - alpha_bar)
    bias = (-0.5 * alpha_bar / (1 - alpha_bar)) * bank.pow(2).sum(1)   # ‖q‖² cancels
    # (c + 1, N), last row: Σ_j w; as the left factor, 3-7x faster than logit @ values for c < 8
    vals = torch.cat([values, torch.ones(len(values), 1)], 1).T.contiguous()
    out = torch.empty(len(q), values.shape[1])
    rows = max(1, CHUNK // max(1, len(bank)))
    for s in range(0, len(q), rows):
        logit = torch.addmm(bias, q[s:s + rows], bank.T, alpha=a)
        # clamped: torch's exp is ~10x slower where it underflows (< -88); exp(-80) weighs
        # nothing next to the maximum's 1 (N·e^-80 ≪ float32 resolution)
        logit.sub_(logit.amax(1, keepdim=True)).clamp_(min=-80.0)
        acc = (vals @ logit.exp_().T).T
        out[s:s + rows] = acc[:, :-1] / acc[:, -1:]
    return out


def empirical_x0(x: torch.Tensor, train: torch.Tensor, alpha_bar: float) -> torch.Tensor:
    """The exact empirical (memorising) denoiser E[x0 | x_t] with x0 uniform over the training
    trajectories: x (n, T, C) and train (N, T, C) float32 in model units, ᾱ of the step ->
    (n, T, C)."""
    n, N = len(x), len(train)
    flat = train.reshape(N, -1)
    return _posterior_mean(x.reshape(n, -1), flat, flat, alpha_bar).reshape(x.shape)


def _pad(x: torch.Tensor, h: int) -> torch.Tensor:
    """(n, T, C) -> (n, T + 2h, C), zeros (model units) before and after."""
    return F.pad(x.transpose(1, 2), (h, h)).transpose(1, 2)


class PatchBank:
    """The training patches of :func:`mosaic_x0`: ``n_patches`` (trajectory, position) pairs
    drawn from ``rng`` without replacement among all N·T of ``train`` (N, T, C) model units (all
    of them when n_patches >= N·T); every position counts, so border patches, with their zero
    padding, are in. ``centres`` (Np, C): the values at the pairs; the patches of each size are
    cut on first use."""

    def __init__(self, train: torch.Tensor, n_patches: int, rng: np.random.Generator):
        N, T, _ = train.shape
        flat = np.sort(rng.choice(N * T, size=min(int(n_patches), N * T), replace=False))
        self.train, self.j, self.i = train, torch.as_tensor(flat // T), torch.as_tensor(flat % T)
        self.centres = train[self.j, self.i]                                 # (Np, C)
        self._cut: dict[int, torch.Tensor] = {}

    def patches(self, P: int) -> torch.Tensor:
        """(Np, P·C): the bank's patches of odd size P, time-major."""
        if P not in self._cut:
            Xp = _pad(self.train, P // 2)
            self._cut[P] = Xp[self.j[:, None], self.i[:, None] + torch.arange(P)[None]] \
                .reshape(len(self.j), -1)
        return self._cut[P]


def mosaic_x0(x: torch.Tensor, bank: PatchBank, P: int, alpha_bar: float) -> torch.Tensor:
    """The ELS denoiser with odd patch size P: at each time i of each row of x (n, T, C, model
    units), the posterior mean of the bank's patch centres given the patch of x_t around i (zero
    padded), ᾱ of the step -> (n, T, C)."""
    n, T, C = x.shape
    xp = _pad(x, P // 2).transpose(1, 2)                                      # (n, C, T + 2h)
    rows = max(1, CHUNK // (T * max(len(bank.j), P * C)))
    out = torch.empty(n, T, C)
    for s in range(0, n, rows):
        q = xp[s:s + rows].unfold(2, P, 1).permute(0, 2, 3, 1).reshape(-1, P * C)
        out[s:s + rows] = _posterior_mean(q, bank.patches(P), bank.centres, alpha_bar) \
            .reshape(-1, T, C)
    return out


# ----------------------------------------------------------------------------- samplers

class Surrogate:
    """Base: holds ``task``, the training set ``train`` (N, T, C) task units and its model-unit
    copy ``_Xm`` (torch float32); ``sample`` validates n and converts units, ``_draw`` does the
    work in model units."""

    name = "surrogate"
    kind = ""

    def __init__(self, task, X, **params):
        self.task = get_task(task)
        self.train = _check_X(X)
        self.task.check(self.train)
        if len(self.train) == 0:
            raise ValueError(f"X must hold at least one training trajectory, got shape "
                             f"{self.train.shape}")
        self._Xm = torch.as_tensor(self.task.to_model(self.train))
        self.params = params

    def fingerprint(self) -> dict:
        """What determines the draws, JSON-able (arrays hashed): a cache key."""
        return {"surrogate": type(self).__name__, "v": SURROGATE_VERSION,
                "task": cache.spec_key("task", self.task),
                "train": cache.fingerprint(self.train), "params": cache.fingerprint(self.params)}

    def sample(self, n: int, rng: np.random.Generator, inpaint=None) -> np.ndarray:
        """``n`` trajectories (n, T, C) float32, task units. ``inpaint=(mask, values)`` (diffusion
        surrogates only): mask bool (T, C) or (n, T, C), values task units broadcastable to
        (n, T, C), imposed at every reverse step and exactly at the end."""
        n = _integer("n", n, minimum=0)
        if inpaint is not None and not isinstance(self, _Diffusion):
            raise ValueError(f"inpaint needs a diffusion surrogate, not {self.name!r}")
        if n == 0:
            return np.zeros((0, self.task.T, self.task.C), np.float32)
        return self.task.from_model(np.asarray(self._draw(n, rng, inpaint)))

    def _draw(self, n, rng, inpaint):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        shown = {k: (v if np.ndim(v) == 0 else f"array{np.shape(v)}")
                 for k, v in self.params.items()}
        return f"{self.name}({shown}, N={len(self.train)})"


class _Diffusion(Surrogate):
    """A closed-form x0-denoiser run through the trained models' DDPM (``steps`` steps of the
    ``noise_schedule``). Subclasses give ``_denoiser(rng, gen) -> f(x_t, t) -> x0_hat``."""

    def __init__(self, task, X, steps: int, noise_schedule: str, **params):
        spec, sched = _noise_schedule(steps, noise_schedule)
        super().__init__(task, X, **params, steps=spec.diffusion_steps,
                         noise_schedule=noise_schedule)
        self._spec, self._sched = spec, sched

    @property
    def alpha_bar(self) -> np.ndarray:
        """ᾱ_t, t = 0..K−1, float64 (K,)."""
        return self._sched["alpha_bar"]

    def _reverse(self, x, t_start: int, rng, gen, inpaint):
        f = self._denoiser(rng, gen)

        def net(xt, tt):  # ddpm's network signature: steps tt (n,), all equal
            return f(xt, int(tt[0]))
        return ddpm(net, x, t_start, self._spec, self._sched, gen, inpaint, batch=len(x))

    def _draw(self, n, rng, inpaint):
        gen = _torch_gen(rng)
        T, C = self.task.T, self.task.C
        cond = None if inpaint is None else _inpaint_tensors(inpaint, n, self.task, _CPU)
        x = torch.randn(n, T, C, generator=gen)
        return self._reverse(x, self._spec.diffusion_steps - 1, rng, gen, cond)

    def denoise(self, X: np.ndarray, t_star: int, rng: np.random.Generator,
                keep=None) -> np.ndarray:
        """Noise X (n, T, C, task units) to step ``t_star`` with q(x_t | x_0) and run the reverse
        steps t_star..0 (the model-free twin of :func:`paper_lib.models.denoise`); ``keep`` (bool
        (T, C) or (n, T, C)): entries of X imposed at every step. (n, T, C) float32 task units."""
        X = self.task.check(_check_X(X))
        K = self._spec.diffusion_steps
        t_star = _bounded("t_star", t_star, 0, K - 1)
        if len(X) == 0:
            return X.copy()
        gen = _torch_gen(rng)
        x0 = torch.as_tensor(self.task.to_model(X))
        x = noise_to(x0, torch.full((len(x0),), t_star), self._sched,
                     torch.randn(x0.shape, generator=gen))
        cond = None if keep is None else _inpaint_tensors((keep, X), len(X), self.task, _CPU)
        return self.task.from_model(self._reverse(x, t_star, rng, gen, cond).numpy())


def exact_size(T: int) -> int:
    """The patch-size code of the exact empirical denoiser, 2T: any size >= 2T means it."""
    return 2 * int(T)


def _patch_sizes(name: str, value, T: int, K: int | None) -> np.ndarray:
    """Patch sizes as int64: one int for every one of K steps, or K ints (K None: any number
    >= 1); odd sizes in [1, 2T − 1] are equivariant patches, sizes >= 2T are clipped to 2T (the
    exact denoiser, :func:`exact_size`). Anything else raises ``ValueError`` naming ``name``."""
    p = np.asarray(value)
    if p.ndim == 0:
        p = np.full(1 if K is None else K, p)
    whole = p.dtype != bool and (np.issubdtype(p.dtype, np.integer) or (
        np.issubdtype(p.dtype, np.floating) and np.isfinite(p).all() and (p == np.round(p)).all()))
    shape_ok = p.ndim == 1 and len(p) >= 1 and (K is None or len(p) == K)
    E = exact_size(T)
    if not (shape_ok and whole) or (p < 1).any() or ((p < E) & (p % 2 == 0)).any():
        count = "one or more integers" if K is None else f"one integer or {K} integers (one per " \
            "diffusion step)"
        raise ValueError(f"{name} must be {count}, each an odd patch size in [1, {E - 1}] or "
                         f">= {E} (the exact denoiser), got {value!r}")
    return np.minimum(p.astype(np.int64), E)


def two_stage_schedule(T: int, p_lo: int, alpha_switch: float, steps: int = 100,
                       noise_schedule: str = "cosine") -> np.ndarray:
    """Patch schedule (steps,) int64: the exact empirical denoiser (code 2T) at the noisy steps
    where ᾱ_t < ``alpha_switch``, the patch ``p_lo`` (odd, in [1, 2T − 1]) from the step where
    ᾱ_t reaches it down to t = 0. ``alpha_switch`` 0 gives p_lo everywhere, above ᾱ_0 the exact
    denoiser everywhere."""
    T = _integer("T", T, minimum=2)
    p_lo = _bounded("p_lo", p_lo, 1, 2 * T - 1)
    if p_lo % 2 == 0:
        raise ValueError(f"p_lo must be an odd patch size in [1, {2 * T - 1}], got {p_lo}")
    a = _finite("alpha_switch", alpha_switch)
    if a > 1:
        raise ValueError(f"alpha_switch must be a level of ᾱ in [0, 1], got {alpha_switch!r}")
    ab = _noise_schedule(steps, noise_schedule)[1]["alpha_bar"]
    return np.where(ab >= a, p_lo, exact_size(T)).astype(np.int64)


class PatchMosaic(_Diffusion):
    """The ``diffusion-unet`` surrogate: the equivariant local score machine (Kamb & Ganguli,
    arXiv 2412.20292) run through the U-Net's DDPM.

    At step t with patch size P = ``patch_schedule[t]`` the denoised value at time i is the
    posterior mean of the centres of training patches of size P given the size-P patch of x_t
    around i, every patch of the bank a priori equally likely, wherever in its trajectory it
    was cut (translation equivariance). Patches are zero padded (model units) past the ends, for
    the queries and the bank alike, as the U-Net's convolutions see the ends; border patches
    are in the bank. Odd P lies in [1, 2T − 1]: P = 2T − 1 sees the whole trajectory from every
    position, yet stays equivariant. A size >= 2T (stored as 2T, :func:`exact_size`) is the
    exact empirical denoiser of whole trajectories, not equivariant (a receptive field that
    covers the sequence and knows the absolute position from its padded ends): it memorises.

    ``patch_schedule``: one int or an int array (steps,), patch size per diffusion step t
    (t = 0 the least noisy); see :func:`two_stage_schedule`, :func:`calibrate_patch_schedule`.
    ``n_patches``: size of the patch bank, a random subsample (drawn from ``rng`` at each call)
    of the N·T training patches, which bounds the cost: each local step computes
    n·T·n_patches weights. A small P needs few patches (they are low-dimensional); a large P
    finds about n_patches/T candidates aligned with any one position, so raise n_patches where
    large patches matter. The exact denoiser always uses the whole training set.
    """

    name = "mosaic"
    kind = "diffusion-unet"

    def __init__(self, task, X, patch_schedule, n_patches: int = 512, steps: int = 100,
                 noise_schedule: str = "cosine"):
        task = get_task(task)
        K = _integer("steps", steps)
        sched = _patch_sizes("patch_schedule", patch_schedule, task.T, K)
        super().__init__(task, X, steps, noise_schedule, patch_schedule=sched,
                         n_patches=_integer("n_patches", n_patches))

    def _denoiser(self, rng, gen):
        P, ab, E = self.params["patch_schedule"], self.alpha_bar, exact_size(self.task.T)
        bank = PatchBank(self._Xm, self.params["n_patches"], rng) if (P < E).any() else None

        def f(x, t):
            if P[t] >= E:
                return empirical_x0(x, self._Xm, float(ab[t]))
            return mosaic_x0(x, bank, int(P[t]), float(ab[t]))
        return f


class SmoothedClosedForm(_Diffusion):
    """The ``diffusion-mlp`` surrogate: the smoothed closed-form denoiser of a σ-CFDM
    (Scarvelis, Borde & Solomon, arXiv 2310.12395) run through the DDPM.

    The σ-CFDM smooths the closed-form score by averaging it over Gaussian jitter of its input,
    s_σ(x) = E_z[s(x + σz)], z ~ N(0, I), a Monte-Carlo mean over M fresh draws at every
    evaluation (the softmax weights of the training points are evaluated at the jittered query,
    the −x term of the score at x itself). In x0 form: x0_hat_σ(x_t) = (1/M) Σ_m
    x0_emp(x_t + σ z_m), x0_emp the exact empirical denoiser (:func:`empirical_x0`); ``sigma``
    is in model units of x_t and the same at every step (it does not scale with the noise
    level). The result is biased toward barycentres of nearby training trajectories; ``sigma``
    0 is the exact empirical denoiser, which memorises.

    ``draws`` (M): jitter draws per step; the default 1 is the paper's unbiased one-draw
    estimate (each of the K steps draws anew), more draws cost proportionally more.
    """

    name = "smoothed"
    kind = "diffusion-mlp"

    def __init__(self, task, X, sigma: float, draws: int = 1, steps: int = 100,
                 noise_schedule: str = "cosine"):
        super().__init__(task, X, steps, noise_schedule, sigma=_finite("sigma", sigma),
                         draws=_integer("draws", draws))

    def _denoiser(self, rng, gen):
        sigma, M, ab = self.params["sigma"], self.params["draws"], self.alpha_bar

        def f(x, t):
            if sigma == 0:
                return empirical_x0(x, self._Xm, float(ab[t]))
            z = torch.randn((M, *x.shape), generator=gen)
            xj = (x[None] + sigma * z).reshape(M * len(x), *x.shape[1:])
            return empirical_x0(xj, self._Xm, float(ab[t])).reshape(M, *x.shape).mean(0)
        return f


class NearestContext(Surrogate):
    """The ``transformer`` surrogate: a nearest-context autoregressive model.

    The first L = ``context`` steps are those of a training trajectory drawn uniformly. Then for
    t = L..T−1, x_t = x_{t−1} + (y_{j,t} − y_{j,t−1}): the increment of training trajectory j,
    drawn uniformly among the ``k`` training trajectories whose steps t−L..t−1 are nearest
    (Euclidean, model units) to x's, at the same time index (the Transformer has positional
    information). The increment, not the value y_{j,t}, is continued, so a sample follows its
    own path instead of jumping onto the neighbour's. k = 1 reproduces training trajectories.
    """

    name = "nearest-context"
    kind = "transformer"

    def __init__(self, task, X, context: int, k: int = 1):
        task = get_task(task)
        super().__init__(task, X, context=_bounded("context", context, 1, task.T - 1))
        self.params["k"] = _bounded("k", k, 1, len(self.train))

    def _draw(self, n, rng, inpaint):
        L, k = self.params["context"], self.params["k"]
        Y = self._Xm
        N, T, C = Y.shape
        Y64 = Y.double().numpy()
        x = np.empty((n, T, C))
        x[:, :L] = Y64[rng.integers(N, size=n), :L]
        rows = max(1, CHUNK // N)
        for t in range(L, T):
            bank = Y[:, t - L:t].reshape(N, -1)
            q = torch.as_tensor(x[:, t - L:t].reshape(n, -1), dtype=torch.float32)
            bias = bank.pow(2).sum(1)
            idx = torch.cat([torch.addmm(bias, q[s:s + rows], bank.T, alpha=-2)
                             .topk(k, 1, largest=False).indices
                             for s in range(0, n, rows)]).numpy()
            j = idx[np.arange(n), rng.integers(k, size=n)]
            x[:, t] = x[:, t - 1] + (Y64[j, t] - Y64[j, t - 1])
        return x.astype(np.float32)


def _pca(Xm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean (D,), eigenvalues (D,) descending, eigenvectors (D, D) as columns), float64, of the
    flattened trajectories Xm (N, T, C): the covariance with 1/N."""
    A = Xm.reshape(len(Xm), -1).astype(np.float64)
    mu = A.mean(0)
    lam, U = np.linalg.eigh((A - mu).T @ (A - mu) / len(A))
    return mu, np.clip(lam[::-1], 0, None), U[:, ::-1]


class LowRank(Surrogate):
    """The ``vae`` surrogate: probabilistic PCA of the training set in model units, x = μ + U_r z
    + noise·ε, z ~ N(0, diag(λ_1..λ_r)) (the top ``rank`` eigenvalues and eigenvectors of the
    data covariance), ε ~ N(0, I); ``noise`` is the decoder's isotropic noise std (model units).
    ``rank`` lies in [0, T·C]; 0 draws μ + noise."""

    name = "lowrank"
    kind = "vae"

    def __init__(self, task, X, rank: int, noise: float = 0.0):
        task = get_task(task)
        super().__init__(task, X, rank=_bounded("rank", rank, 0, task.T * task.C),
                         noise=_finite("noise", noise))
        self._mu, self._lam, self._U = _pca(self._Xm.numpy())

    def _draw(self, n, rng, inpaint):
        r, s = self.params["rank"], self.params["noise"]
        z = rng.standard_normal((n, r)) * np.sqrt(self._lam[:r])
        x = self._mu + z @ self._U[:, :r].T
        if s:
            x = x + s * rng.standard_normal(x.shape)
        return x.reshape(n, self.task.T, self.task.C).astype(np.float32)


def two_stage_mosaic(task, X, p_lo: int, switch: float, steps: int = 100) -> PatchMosaic:
    """The patch mosaic on training set X (n, T, C) with the two-stage schedule (P_lo, switch)
    of :func:`two_stage_schedule` over ``steps`` diffusion steps: the U-Net's before-training
    surrogate as notebooks 03 and 06 use it."""
    task = get_task(task)
    return PatchMosaic(task, X, two_stage_schedule(task.T, p_lo, switch, steps=steps),
                       steps=steps)


def two_stage_label(p_lo: int, switch: float) -> str:
    """The setting's label, as notebook 03 writes it into ``kernel_agreement.csv``'s ``source``:
    "P_lo=9, switch=0.9"; :func:`read_two_stage_label` reads it back."""
    return f"P_lo={p_lo}, switch={switch}"


def read_two_stage_label(text: str) -> tuple[int, float] | None:
    """(P_lo, switch) from a text that starts with :func:`two_stage_label`'s label, else None."""
    m = re.match(r"P_lo=(\d+), switch=([0-9.]+)", str(text))
    return None if m is None else (int(m.group(1)), float(m.group(2)))


SURROGATES = {"diffusion-unet": PatchMosaic, "diffusion-mlp": SmoothedClosedForm,
              "transformer": NearestContext, "vae": LowRank}


# ----------------------------------------------------------------------------- kernels

class surrogate_denoise(Kernel):
    """A diffusion surrogate's local error as a data deviation kernel: noise x to step
    ``t_star`` and run the surrogate's reverse steps back to 0 (:meth:`PatchMosaic.denoise`,
    :meth:`SmoothedClosedForm.denoise`), the model-free twin of :class:`paper_lib.kernels.denoise`.
    ``scale`` is t* (an integer step); ``params`` holds ``alpha_bar`` = ᾱ(t*). As for ``denoise``,
    t* = 0 is not the identity. ``keep`` (bool (T, C)): entries imposed by inpainting at every
    step, as a planner imposes its start and goal."""

    name = "surrogate_denoise"

    def __init__(self, surrogate: _Diffusion, t_star: int, keep=None):
        if not isinstance(surrogate, _Diffusion):
            raise ValueError(f"surrogate must be a PatchMosaic or SmoothedClosedForm, got "
                             f"{type(surrogate).__name__}")
        K = surrogate.params["steps"]
        t_star = _bounded("t_star", t_star, 0, K - 1)
        super().__init__(t_star, alpha_bar=float(surrogate.alpha_bar[t_star]))
        self.surrogate = surrogate
        self.keep = None if keep is None else np.asarray(keep, bool)

    def fingerprint(self) -> dict:
        return {**super().fingerprint(), "surrogate": self.surrogate.fingerprint(),
                "keep": cache.fingerprint(self.keep)}

    def sample(self, X, rng):
        return self.surrogate.denoise(_check_X(X), int(self.scale), rng, keep=self.keep)


class lowrank(Kernel):
    """The ``vae`` surrogate as a data deviation kernel: x' = μ + U_r U_rᵀ (x − μ) + noise·ε in
    model units (μ, U_r: mean and top ``rank`` principal directions of ``train``, as in
    :class:`LowRank`), ε ~ N(0, I). ``scale`` is the rank, an integer in [0, T·C] (not a length:
    :func:`paper_lib.kernels.scale_for_locality` does not apply); ``params`` holds ``noise`` and
    ``explained``, the share of the training variance the rank keeps. Full rank with noise 0
    returns X exactly; rank 0 maps every trajectory to μ (+ noise)."""

    name = "lowrank"

    def __init__(self, task, train: np.ndarray, rank: int, noise: float = 0.0):
        self.task = get_task(task)
        self.train = self.task.check(_check_X(train))
        if len(self.train) == 0:
            raise ValueError(f"train must hold at least one trajectory, got {self.train.shape}")
        D = self.task.T * self.task.C
        rank = _bounded("rank", rank, 0, D)
        self._mu, lam, self._U = _pca(self.task.to_model(self.train))
        kept = float(lam[:rank].sum() / lam.sum()) if lam.sum() > 0 else 1.0
        super().__init__(rank, noise=_finite("noise", noise), explained=kept)

    def fingerprint(self) -> dict:
        return {**super().fingerprint(), "task": cache.spec_key("task", self.task),
                "train": cache.fingerprint(self.train), "v": SURROGATE_VERSION}

    def _check_fits(self, X) -> None:
        self.task.check(X)

    def sample(self, X, rng):
        """x' (n, T, C) float32 task units for X (n, T, C) task units."""
        X = _check_X(X)
        self._check_fits(X)
        r, s = int(self.scale), self.params["noise"]
        full = r >= len(self._mu)
        if full and s == 0:
            return X.copy()
        A = self.task.to_model(X).reshape(len(X), -1).astype(np.float64)
        if not full:
            U = self._U[:, :r]
            A = self._mu + ((A - self._mu) @ U) @ U.T
        if s:
            A = A + s * rng.standard_normal(A.shape)
        return self.task.from_model(A.reshape(X.shape))


# ----------------------------------------------------------------------------- calibration

def size_ladder(T: int, n: int = 12) -> np.ndarray:
    """At most ``n`` candidate patch sizes 2h + 1: h = 0 and roughly geometric half-widths up to
    T − 1 (the largest, 2T − 1, sees the whole trajectory from every position), then the exact
    code 2T. T = 64: 1 3 5 7 11 17 25 37 57 85 127 128."""
    h = np.unique(np.round(np.geomspace(1, T - 1, _integer("n", n) - 1)).astype(np.int64))
    return np.concatenate([[1], 2 * h + 1, [exact_size(T)]])


def calibrate_patch_schedule(task, X, x0_hat, rng: np.random.Generator, sizes=None,
                             n: int = 64, steps: int = 100, noise_schedule: str = "cosine",
                             n_patches: int = 512, ts=None,
                             on: str = "path") -> tuple[np.ndarray, np.ndarray]:
    """The patch schedule that best imitates a network's denoiser: at each step t, the patch
    size whose closed-form x0 estimate is nearest in mean squared error (model units, over
    ``n`` trajectories) to the network's x0 prediction ``x0_hat`` at the same x_t.

    ``on="path"`` (default) evaluates both on the network's own DDPM path from pure noise, as
    Kamb & Ganguli calibrate their locality scales (``scales_calibration.py`` of their code);
    ``on="data"`` on training trajectories of X (task units) noised to t. On data a trained
    U-Net denoises almost exactly like the memorising denoiser (it was fitted there), so
    ``"data"`` picks the exact denoiser nearly everywhere: the network's locality shows where
    it generates, off the data.

    ``x0_hat(x_t, t) -> x0``: x_t a float32 tensor (n, T, C) in model units, t an int step, x0 a
    tensor of the same shape (e.g. :func:`model_x0`). ``sizes``: candidate patch sizes (odd in
    [1, 2T − 1], or 2T: the exact denoiser; default :func:`size_ladder`); ``ts``: the steps
    compared (default all); a step not in ``ts`` takes the size of the nearest compared one.
    Noise, training trajectories and the patch bank (``n_patches``) are drawn from ``rng``.
    Ties go to the larger patch (the less creative choice).

    Returns (schedule (steps,) int64, mse (len(sizes), len(ts)) float64: rows in the order of
    ``sizes`` as given, columns in the order of ``ts``).
    """
    task = get_task(task)
    Xm = torch.as_tensor(task.to_model(task.check(_check_X(X))))
    T, K = task.T, _integer("steps", steps)
    sizes = _patch_sizes("sizes", size_ladder(T) if sizes is None else sizes, T, None)
    ts = _steps("ts", np.arange(K) if ts is None else ts, K)
    if on not in ("path", "data"):
        raise ValueError(f"on must be 'path' or 'data', got {on!r}")
    n = _integer("n", n)
    spec, sched = _noise_schedule(K, noise_schedule)
    gen = _torch_gen(rng)
    bank = PatchBank(Xm, _integer("n_patches", n_patches), rng)
    column = {int(t): c for c, t in enumerate(ts)}
    mse = np.empty((len(sizes), len(ts)))

    def compare(x, t):
        target = torch.as_tensor(x0_hat(x, t)).float().cpu()
        if t in column:
            ab = float(sched["alpha_bar"][t])
            for r, P in enumerate(sizes):
                est = empirical_x0(x, Xm, ab) if P >= 2 * T else mosaic_x0(x, bank, int(P), ab)
                mse[r, column[t]] = float((est - target).double().pow(2).mean())
        return target

    if on == "path":
        ddpm(lambda x, tt: compare(x, int(tt[0])), torch.randn(n, T, task.C, generator=gen),
             K - 1, spec, sched, gen, batch=n)
    else:
        x0 = Xm[torch.as_tensor(rng.choice(len(Xm), size=min(n, len(Xm)), replace=False))]
        for t in ts:
            noise = torch.randn(x0.shape, generator=gen)
            compare(noise_to(x0, torch.full((len(x0),), int(t)), sched, noise), int(t))
    order = np.argsort(-sizes, kind="stable")            # larger first: ties go to them
    best = sizes[order][np.argmin(mse[order], axis=0)]
    nearest = np.abs(np.arange(K)[:, None] - ts[None]).argmin(1)
    return best[nearest].astype(np.int64), mse


def model_x0(trained, device=None, batch: int = 2048):
    """``x0_hat(x_t, t)`` of a trained diffusion model (:class:`paper_lib.models.Trained`, EMA
    weights) for :func:`calibrate_patch_schedule`: x_t (n, T, C) model units, any device; returns
    the model's x0 prediction at step t on the CPU. A q-conditioned model is refused."""
    spec = trained.spec
    if not spec.is_diffusion or spec.q_condition:
        raise ValueError(f"model_x0 needs an unconditional diffusion model, got {spec.kind!r}"
                         f"{' with q_condition' if spec.q_condition else ''}")
    device = torch.device(device) if device is not None else default_device()
    net, sched = load_net(trained, None, device), make_schedule(spec)
    batch = _integer("batch", batch)

    def x0_hat(x: torch.Tensor, t: int) -> torch.Tensor:
        with torch.no_grad():
            return _predict(net, x.to(device), int(t), spec, sched, batch)[0].cpu()
    return x0_hat
