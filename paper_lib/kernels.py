"""The data deviation kernel K(x'|x): small local errors around data trajectories, and the
histogram of the quantity they predict (docs/design.md section 5).

Every kernel is an object with ``name`` (its family), ``scale`` (its one free scale, a float),
``params`` (the other documented parameters) and ``sample(X, rng) -> X'``: X (n, T, C) float32 in
task units, rng a numpy Generator, X' float32 of the same shape, deterministic for a given rng
state. Scale 0 returns X exactly (except ``denoise``, whose scale is a diffusion step, see there).

Families:

* ``white(scale)``: x' = x + σ ε, ε iid N(0, 1) per entry.
* ``smooth(scale, length)``: x' = x + σ (G_ℓ ∗ ε), white noise filtered along time by a Gaussian
  of std ``length`` steps, renormalised so every entry has std σ.
* ``spectral(psd, scale)``: stationary Gaussian noise per channel with power spectrum ``psd``
  (fitted by :func:`fit_spectral`, e.g. on :func:`nearest_residuals` of a model's samples), × scale.
* ``neighbour(train, scale, k)``: x' = (1 − α) x + α x_j, x_j uniform among the k nearest
  training trajectories of x (x itself excluded): deviation along directions the data varies in.
* ``denoise(trained, t_star, keep)``: noise x to diffusion step t* and run the model's reverse
  steps (entries ``keep`` imposed by inpainting, as a planner imposes its start and goal).

``pinned(kernel, keep)`` leaves the entries ``keep`` of every trajectory unchanged.

Stationary noise is generated on the circle of T steps (periodic boundary): the rfft of white
noise is multiplied by √psd and transformed back, so it is exactly stationary, with no edge
effects, and its per-entry variance is (1/T) Σ_k psd_k over the full spectrum.

Prediction: :func:`predict` gives p̂ = histogram of m(x'), x ~ data, x' ~ K(·|x). :func:`locality`
measures how far a kernel moves trajectories in units of :func:`data_spacing`;
:func:`scale_for_locality` picks the scale that reaches a target locality (e.g. the model's own
sample-to-data distance) without looking at the model's histogram; fitting a scale to a model's
histogram is :func:`paper_lib.forecast.forecast`'s ``calibrated`` mode.
"""
from __future__ import annotations

import inspect
import time

import numpy as np

from .metrics import Bins, _integer, histogram

__all__ = ["Kernel", "white", "smooth", "spectral", "neighbour", "denoise", "KERNELS",
           "make_kernel", "pinned", "fit_spectral", "spectral_variance", "nearest_residuals", "knn",
           "nearest", "predict", "locality", "kernel_locality", "data_spacing", "scale_for_locality"]


_F32_MAX = float(np.finfo(np.float32).max)


def _check_X(X) -> np.ndarray:
    """X as float32 (n, T, C); another shape, or a finite value too large for float32 (which the
    cast would silently turn into ±inf), raises ``ValueError``. NaN and ±inf pass through."""
    X0 = np.asarray(X)
    if X0.dtype != np.float32 and X0.size and np.issubdtype(X0.dtype, np.number):
        with np.errstate(invalid="ignore"):
            big = np.abs(np.where(np.isfinite(X0), X0, 0)).max()
        if big > _F32_MAX:
            raise ValueError(f"trajectories must fit in float32 (|x| <= {_F32_MAX:.4g}), got a "
                             f"finite value of magnitude {float(big):.4g}")
    X = np.asarray(X0, dtype=np.float32)
    if X.ndim != 3:
        raise ValueError(f"trajectories must have shape (n, T, C), got {X.shape}")
    return X


def _check_scale(scale) -> float:
    s = float(scale)
    if not np.isfinite(s) or s < 0:
        raise ValueError(f"kernel scale must be finite and >= 0, got {scale!r}")
    return s


class Kernel:
    """Base: ``sample`` validates X, returns a copy at scale 0, else calls ``_perturb``."""

    name = "kernel"

    def __init__(self, scale: float, **params):
        self.scale = _check_scale(scale)
        self.params = params

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Perturbed trajectories X' (n, T, C) float32 (task units) for X (n, T, C)."""
        X = _check_X(X)
        self._check_fits(X)
        if self.scale == 0:
            return X.copy()
        return np.asarray(self._perturb(X, rng), dtype=np.float32)

    def _check_fits(self, X) -> None:
        """Raise ``ValueError`` when X (n, T, C) does not fit this kernel (at any scale)."""

    def _perturb(self, X, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def fingerprint(self) -> dict:
        """What determines this kernel's output, JSON-able (arrays hashed): the cache key of a
        prediction. Subclasses holding more than ``params`` (data, a model) add it."""
        from .cache import fingerprint

        return {"kernel": type(self).__name__, "scale": self.scale,
                "params": fingerprint(self.params)}

    def __repr__(self) -> str:
        shown = {k: (v if np.ndim(v) == 0 else f"array{np.shape(v)}")
                 for k, v in self.params.items()}
        return f"{self.name}(scale={self.scale:g}, {shown})"


# ----------------------------------------------------------------------------- stationary noise

def _rfft_weights(T: int) -> np.ndarray:
    """Multiplicity of each rfft bin in the full spectrum, (T//2+1,): 1 for DC and Nyquist,
    else 2."""
    w = np.full(T // 2 + 1, 2.0)
    w[0] = 1.0
    if T % 2 == 0:
        w[-1] = 1.0
    return w


def spectral_variance(psd: np.ndarray, T: int) -> np.ndarray:
    """Per-entry variance of stationary noise with spectrum ``psd`` (T//2+1, C): (1/T) Σ_k psd_k
    over the full spectrum, shape (C,). Divide a psd by it to get unit-variance noise."""
    psd = np.asarray(psd, float)
    return (_rfft_weights(T)[:, None] * psd.reshape(len(psd), -1)).sum(0) / T


def _stationary_noise(psd: np.ndarray, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """Noise (n, T, C) float64, per channel stationary on the circle, spectrum psd (T//2+1, C)."""
    n, T, C = shape
    eps = rng.standard_normal((n, T, C))
    return np.fft.irfft(np.fft.rfft(eps, axis=1) * np.sqrt(psd)[None], n=T, axis=1)


def fit_spectral(residuals: np.ndarray) -> np.ndarray:
    """Per-channel power spectrum of residuals (n, T, C) in task units: psd_k = mean_n |R_k|² / T
    with R = rfft along time, shape (T//2+1, C), float64.

    With this normalisation ``spectral(psd, 1)`` draws noise with the residuals' per-entry mean
    square (Parseval: Σ_t r_t² = (1/T) Σ_k |R_k|²) and the same spectrum. The residuals' mean is
    not removed: a systematic offset appears as power at frequency 0, drawn with a random sign.
    """
    r = np.asarray(residuals, float)
    if r.ndim != 3 or len(r) == 0:
        raise ValueError(f"residuals must have shape (n, T, C) with n >= 1, got {r.shape}")
    return (np.abs(np.fft.rfft(r, axis=1)) ** 2).mean(0) / r.shape[1]


class white(Kernel):
    """x' = x + scale·ε, ε iid N(0, 1) per entry (task units)."""

    name = "white"

    def __init__(self, scale: float):
        super().__init__(scale)

    def _perturb(self, X, rng):
        return X + self.scale * rng.standard_normal(X.shape, dtype=np.float32)


class smooth(Kernel):
    """x' = x + scale·(G_ℓ ∗ ε), ε white, G_ℓ a Gaussian of std ``length`` time steps applied as
    a periodic (circular) filter along time, renormalised so each entry has std exactly ``scale``.

    In the frequency domain the filter's power is exp(−4π² ℓ² (k/T)²); ``length`` 0 is white noise.
    The lag-τ correlation of the noise is ≈ exp(−τ² / (4ℓ²)).
    """

    name = "smooth"

    def __init__(self, scale: float, length: float):
        length = float(length)
        if not np.isfinite(length) or length < 0:
            raise ValueError(f"smooth: length must be finite and >= 0 time steps, got {length!r}")
        super().__init__(scale, length=length)

    def _perturb(self, X, rng):
        T = X.shape[1]
        power = np.exp(-4 * np.pi ** 2 * self.params["length"] ** 2
                       * (np.arange(T // 2 + 1) / T) ** 2)[:, None]
        psd = power / spectral_variance(power, T)  # unit per-entry variance
        return X + self.scale * _stationary_noise(psd, X.shape, rng)


class spectral(Kernel):
    """x' = x + scale·η, η stationary Gaussian noise per channel with power spectrum ``psd``
    (T//2+1, C) in task units² (as returned by :func:`fit_spectral`); a psd of shape (T//2+1,) or
    (T//2+1, 1) is used for every channel. To carry a spectrum to a task with other channels or
    units, average it over channels and divide by :func:`spectral_variance` (unit variance), then
    choose ``scale`` (e.g. with :func:`scale_for_locality`)."""

    name = "spectral"

    def __init__(self, psd: np.ndarray, scale: float = 1.0):
        psd = np.asarray(psd, float)
        psd = psd[:, None] if psd.ndim == 1 else psd
        if psd.ndim != 2 or not np.isfinite(psd).all() or (psd < 0).any():
            raise ValueError(f"spectral: psd must be a finite, non-negative (T//2+1, C) array, "
                             f"got shape {psd.shape}")
        super().__init__(scale, psd=psd)

    def _perturb(self, X, rng):
        psd = self.params["psd"]
        n, T, C = X.shape
        if len(psd) != T // 2 + 1 or psd.shape[1] not in (1, C):
            raise ValueError(f"spectral: psd of shape {psd.shape} does not fit trajectories with "
                             f"T={T}, C={C} (need ({T // 2 + 1}, {C}) or ({T // 2 + 1}, 1))")
        psd = np.broadcast_to(psd, (T // 2 + 1, C))
        return X + self.scale * _stationary_noise(psd, X.shape, rng)


# ----------------------------------------------------------------------------- nearest neighbours

def _pow2_exponent(*arrays) -> int:
    """0 when the largest finite |x| of ``arrays`` lies in [2^-40, 2^40] or is 0 (every realistic
    trajectory), else the e with that maximum in [2^(e-1), 2^e): scaling by 2^-e is exact and
    keeps float32 squared distances from overflowing or underflowing."""
    m = max((float(np.abs(np.where(np.isfinite(x), x, 0)).max()) if x.size else 0.0)
            for x in arrays)
    if m == 0 or 2.0 ** -40 <= m <= 2.0 ** 40:
        return 0
    return int(np.frexp(m)[1])


RERANK = 4  # extra cdist candidates that knn(exact=True) re-ranks exactly


def knn(A: np.ndarray, B: np.ndarray, k: int = 1, exclude: np.ndarray | None = None,
        exclude_zero: bool = False, chunk: int = 1024,
        exact: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest trajectories of B (m, T, C) to each of A (n, T, C), Euclidean over flattened
    trajectories (task units). Returns (distances (n, k) float64, indices into B (n, k)), nearest
    first.

    ``exclude`` (n,) gives, per row of A, an index of B to skip (A's own position when A ⊂ B);
    ``exclude_zero`` skips exact duplicates of the row. Candidates come from ``torch.cdist`` in
    chunks of ``chunk`` rows; with ``exact`` the ``RERANK`` nearest extra candidates too, all
    re-ranked by distances recomputed exactly in float64 (a duplicate has distance exactly 0,
    and the choice among near-ties does not depend on the CPU's float32 rounding); with ``exact=False`` the float32 ``cdist`` distances
    are returned (what :func:`paper_lib.metrics.nn_distances` reports). This is the library's
    one nearest-neighbour search.

    Bad input: A and B of different (T, C), an empty B, ``k`` outside [1, m − excluded],
    ``exclude`` not of shape (n,) or a non-positive ``chunk`` raise ``ValueError``; an empty A
    gives empty results. A row of A with a non-finite value gets NaN distances (its indices are
    arbitrary); rows of B with non-finite values rank last, and a distance to one is NaN. Data
    beyond 2^±40 in magnitude are scaled by a power of two for the search, so float32 neither
    overflows nor underflows.
    """
    import torch

    A, B = _check_X(A), _check_X(B)
    if A.shape[1:] != B.shape[1:]:
        raise ValueError(f"knn: trajectories of A have (T, C) = {A.shape[1:]} but those of B "
                         f"{B.shape[1:]}; both must have the same (T, C)")
    if len(B) == 0:
        raise ValueError(f"knn: B must hold at least one trajectory, got shape {B.shape}")
    chunk = _integer("chunk", chunk)
    if exclude is not None:
        exclude = np.asarray(exclude)
        if exclude.shape != (len(A),) or not np.issubdtype(exclude.dtype, np.integer):
            raise ValueError(f"knn: exclude must be ({len(A)},) integer indices into B, one per "
                             f"row of A, got {exclude.dtype} of shape {exclude.shape}")
    a0 = torch.as_tensor(A.reshape(len(A), A.shape[1] * A.shape[2]))
    b0 = torch.as_tensor(B.reshape(len(B), B.shape[1] * B.shape[2]))
    e = _pow2_exponent(A, B)          # the search runs on data scaled by 2^-e (0: unscaled)
    a, b = (a0, b0) if not e else (torch.as_tensor(np.ldexp(X.numpy().astype(np.float64), -e)
                                                   .astype(np.float32)) for X in (a0, b0))
    extra = int(exclude is not None) + int(exclude_zero)
    k = _integer("k", k)
    if not 1 <= k <= len(b) - extra:
        raise ValueError(f"need 1 <= k <= {len(b) - extra} neighbours (B holds {len(b)} "
                         f"trajectories, {extra} excluded per row), got k={k}")
    # exact: a few more candidates than needed, re-ranked by their float64 distances, so that
    # near-ties are decided by exact arithmetic, not by the float32 matmul inside cdist (whose
    # rounding differs between CPU families and used to flip which neighbour was nearest)
    kc = min(k + extra + (RERANK if exact else 0), len(b))
    dist, idx = np.empty((len(a), k)), np.empty((len(a), k), dtype=np.int64)
    with torch.inference_mode():
        for s in range(0, len(a), chunk):
            ac = a[s:s + chunk]
            top = torch.cdist(ac, b).topk(kc, dim=1, largest=False)
            cand = top.indices                                                       # (c, kc)
            if exact:                                   # exact, from the unscaled data
                d = (b0[cand].double() - a0[s:s + chunk, None].double()).pow(2).sum(-1).sqrt()
            else:
                d = top.values.double()
                if e:
                    d = d * 2.0 ** e
            if exclude is not None:
                own = torch.as_tensor(np.asarray(exclude)[s:s + chunk], dtype=torch.long)
                d[cand == own[:, None]] = float("inf")
            if exclude_zero:
                d[d == 0] = float("inf")
            d, order = d.sort(dim=1)
            dist[s:s + chunk] = d[:, :k].numpy()
            idx[s:s + chunk] = cand.gather(1, order)[:, :k].numpy()
    dist[~np.isfinite(A).all(axis=(1, 2))] = np.nan
    dist[~np.isfinite(dist)] = np.nan
    return dist, idx


def nearest(A: np.ndarray, B: np.ndarray, exclude: np.ndarray | None = None, chunk: int = 1024,
            block: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """Distance (m,) float64 and index (m,) into B of the nearest trajectory of B (n, T, C) to
    each row of A (m, T, C): :func:`knn` with k = 1 over blocks of ``block`` rows of B with a
    running minimum, so memory and time stay bounded for a B of 10⁶ trajectories (knn alone has
    torch copy all of B once per chunk of A). ``exclude`` (m,): an index of B to skip per row.
    For a B of at most ``block`` rows this is exactly ``knn(A, B, 1, exclude)``."""
    B = _check_X(B)
    best, arg = np.full(len(A), np.inf), np.zeros(len(A), np.int64)
    bounds = np.linspace(0, len(B), max(1, len(B) // int(block)) + 1).astype(int)
    for s, e in zip(bounds[:-1], bounds[1:]):
        own = None if exclude is None else \
            np.where((exclude >= s) & (exclude < e), exclude - s, -1)
        d, j = knn(A, np.ascontiguousarray(B[s:e]), k=1, exclude=own, chunk=chunk)
        better = d[:, 0] < best
        best[better], arg[better] = d[better, 0], j[better, 0] + s
    return best, arg


def nearest_residuals(samples: np.ndarray, train: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Each sample minus its nearest training trajectory (flattened Euclidean), (n, T, C) float32
    in task units: the model's own local error, input to :func:`fit_spectral`."""
    S = _check_X(samples)
    _, idx = knn(S, train, k=1, chunk=chunk)
    return S - _check_X(train)[idx[:, 0]]


class neighbour(Kernel):
    """Pure data deviation: x' = (1 − α) x + α x_j = x + α (x_j − x), x_j drawn uniformly among
    the k nearest training trajectories of x, excluding x itself. ``scale`` is α (1 lands exactly
    on x_j, 0.5 halfway).

    The kNN index of the training set is computed once at construction (self excluded by index).
    ``sample`` uses it when X is the training set (same object or equal array); for any other X
    the neighbours are searched on the fly, skipping exact duplicates (distance 0) of each row.
    X of another (T, C) than the training set raises ``ValueError``; a row of X with NaN or inf
    stays non-finite.
    """

    name = "neighbour"

    def __init__(self, train: np.ndarray, scale: float, k: int = 8, chunk: int = 1024):
        self.train = _check_X(train)
        if int(k) != k or not 1 <= int(k) < len(self.train):
            raise ValueError(f"neighbour: need 1 <= k < {len(self.train)} (training size), got {k}")
        super().__init__(scale, k=int(k))
        self.chunk = chunk
        _, self.index = knn(self.train, self.train, int(k), exclude=np.arange(len(self.train)),
                            chunk=chunk)

    def fingerprint(self) -> dict:
        from .cache import fingerprint

        return {**super().fingerprint(), "train": fingerprint(self.train)}

    def _check_fits(self, X) -> None:
        if X.shape[1:] != self.train.shape[1:]:
            T, C = self.train.shape[1:]
            raise ValueError(f"neighbour: trajectories have (T, C) = {X.shape[1:]} but the "
                             f"training set {self.train.shape[1:]}; X must have shape (n, {T}, "
                             f"{C})")

    def neighbours(self, X: np.ndarray) -> np.ndarray:
        """Indices (n, k) into ``train`` of the k nearest training trajectories of each row of X."""
        X = _check_X(X)
        self._check_fits(X)
        if X is self.train or (X.shape == self.train.shape and np.array_equal(X, self.train)):
            return self.index
        return knn(X, self.train, self.params["k"], exclude_zero=True, chunk=self.chunk)[1]

    def _perturb(self, X, rng):
        nb = self.neighbours(X)
        j = nb[np.arange(len(X)), rng.integers(nb.shape[1], size=len(X))]
        a = self.scale
        return (1 - a) * X.astype(np.float64) + a * self.train[j].astype(np.float64)


# ----------------------------------------------------------------------------- model's own error

class denoise(Kernel):
    """The model's own local error: noise x to diffusion step ``t_star`` with q(x_t | x_0) and run
    the trained diffusion model's DDPM reverse steps back to 0 (``paper_lib.models.denoise``), in
    task units. ``scale`` is t* (an integer step, 0 ≤ t* < diffusion_steps); ``params`` holds
    ``alpha_bar`` = ᾱ(t*), the fraction of signal power kept at t* (1: data intact, 0: erased).

    Unlike the data-only kernels, t* = 0 is not the identity: it is the smallest perturbation the
    model makes (noise to ᾱ(0) and one reverse step). Each call draws the model's seed from rng.
    """

    name = "denoise"

    def __init__(self, trained, t_star: int, keep=None):
        from . import models  # lazy: kernels.py must import without the models package

        if int(t_star) != t_star:
            raise ValueError(f"denoise: t_star must be an integer diffusion step, got {t_star!r}")
        ab = np.asarray(models.alpha_bar(trained))
        if not 0 <= int(t_star) < len(ab):
            raise ValueError(f"denoise: t_star must be in [0, {len(ab) - 1}], got {t_star}")
        super().__init__(int(t_star), alpha_bar=float(ab[int(t_star)]))
        self.trained = trained
        self.keep = None if keep is None else np.asarray(keep, bool)

    def fingerprint(self) -> dict:
        from .cache import fingerprint

        return {**super().fingerprint(), "trained": fingerprint(self.trained),
                "keep": fingerprint(self.keep)}

    def sample(self, X, rng):
        from . import models

        X = _check_X(X)
        seed = int(rng.integers(2 ** 31))
        return np.asarray(models.denoise(self.trained, X, int(self.scale), seed, keep=self.keep),
                          dtype=np.float32)


class pinned(Kernel):
    """``kernel`` with the entries ``keep`` (bool (T, C)) of every trajectory left unchanged: the
    entries a conditioned model never generates (a planner's inpainted start and goal). For
    ``denoise`` pass ``keep`` to the kernel itself instead, so the imposed entries also steer
    the reverse steps. ``name`` and ``scale`` are the wrapped kernel's."""

    def __init__(self, kernel: Kernel, keep):
        self.inner, self.keep = kernel, np.asarray(keep, bool)
        self.name, self.scale, self.params = kernel.name, kernel.scale, kernel.params

    def fingerprint(self) -> dict:
        from .cache import fingerprint

        return {"pinned": fingerprint(self.keep), "inner": self.inner.fingerprint()}

    def sample(self, X, rng):
        X = _check_X(X)
        if self.keep.shape != X.shape[1:]:
            raise ValueError(f"keep mask has shape {self.keep.shape}, trajectories {X.shape[1:]}")
        return np.where(self.keep[None], X, self.inner.sample(X, rng)).astype(np.float32)


KERNELS = {"white": white, "smooth": smooth, "spectral": spectral, "neighbour": neighbour,
           "denoise": denoise}


def make_kernel(name: str, **params) -> Kernel:
    """The kernel of family ``name`` with ``params`` (the family's constructor arguments, e.g.
    ``make_kernel("smooth", scale=0.02, length=4)``). Unknown names or parameters and missing
    parameters raise ``ValueError`` naming the valid choices."""
    if name not in KERNELS:
        raise ValueError(f"unknown kernel {name!r}; valid kernels: {', '.join(KERNELS)}")
    cls = KERNELS[name]
    sig = inspect.signature(cls.__init__)
    valid = [p for p in sig.parameters if p != "self"]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(f"kernel {name!r} got unknown parameter(s) {', '.join(unknown)}; "
                         f"valid parameters: {', '.join(valid)}")
    missing = [p for p in valid if sig.parameters[p].default is inspect.Parameter.empty
               and p not in params]
    if missing:
        raise ValueError(f"kernel {name!r} is missing parameter(s) {', '.join(missing)}; "
                         f"valid parameters: {', '.join(valid)}")
    return cls(**params)


# ----------------------------------------------------------------------------- prediction

PREDICT_VERSION = 3  # bump when a change here or in a kernel changes predicted values
# (3: knn re-ranks near-ties exactly; the notebooks' sweep streams are keyed by the locality)


def predict(task, dataset, kernel: Kernel, draws: int, bins: Bins, rng: np.random.Generator,
            chunk: int = 8192, use_cache: bool = True, timed: bool = False):
    """Predicted histogram of the quantity: p̂ = histogram of task.measure(x'), x' = K(x) applied
    ``draws`` times to every trajectory of ``dataset.X``.

    Returns (p̂ (bins.n + 2,), predicted q values (len(dataset) * draws,), draw-major: entry
    d * n + i is draw d of trajectory i), and with ``timed`` also the seconds the prediction took
    to compute (when it was computed: a cached prediction reports the original cost). The kernel
    sees the whole dataset once per draw when it has at most ``chunk`` trajectories (so
    ``neighbour`` reuses its training-set index), else consecutive blocks of ``chunk``
    trajectories; memory is O(chunk · T · C). ``draws`` and ``chunk`` must be positive integers,
    else ``ValueError``; trajectories the task cannot measure give NaN q, which the histogram
    counts in the underflow bin.

    The q values are cached (``use_cache``) under the task, a hash of X, the kernel's
    ``fingerprint()``, ``draws``, ``chunk`` and the state of ``rng``; a cached call leaves ``rng``
    in the state the computation left it in, so a rerun gives bitwise the same results either way.
    """
    from . import cache

    X = dataset.X if hasattr(dataset, "X") else _check_X(dataset)
    draws = _integer("draws", draws)
    _integer("chunk", chunk)
    spec = {"task": task, "X": cache.fingerprint(X), "kernel": kernel.fingerprint(),
            "draws": draws, "chunk": int(chunk)} \
        if use_cache and hasattr(kernel, "fingerprint") else None
    entry = _drawn("prediction", spec, rng, "q",
                   lambda: _predict_q(task, X, kernel, draws, rng, chunk))
    out = (histogram(entry["q"], bins), entry["q"])
    return (*out, float(entry["seconds"])) if timed else out


def _drawn(kind: str, spec: dict | None, rng: np.random.Generator, name: str,
           compute) -> dict:
    """``{name: compute(), "seconds": its cost}`` for a computation that draws from ``rng``,
    cached under ``spec`` plus the state of ``rng`` (``spec`` None: not cached, always computed). A cached answer leaves ``rng`` in the state the computation left it in, so cached
    and computed runs continue with the same random numbers."""
    from . import cache

    def build():
        t0 = time.perf_counter()
        value = compute()
        return {name: value, "rng": rng.bit_generator.state,
                "seconds": time.perf_counter() - t0}

    if spec is None:
        return build()
    entry = cache.memo(kind, {**spec, "rng": rng.bit_generator.state, "v": PREDICT_VERSION}, build)
    rng.bit_generator.state = entry["rng"]
    return entry


def _predict_q(task, X, kernel, draws, rng, chunk) -> np.ndarray:
    n = len(X)
    q = np.empty(n * draws)
    for d in range(draws):
        for s in range(0, n, chunk):
            block = X if chunk >= n else X[s:s + chunk]
            q[d * n + s:d * n + s + len(block)] = task.measure(kernel.sample(block, rng))
    return q


def locality(X: np.ndarray, X_pert: np.ndarray, spacing: float) -> float:
    """Mean ‖x' − x‖ over trajectories (flattened Euclidean, task units) divided by ``spacing``
    (e.g. :func:`data_spacing`): how far a kernel moves data, in nearest-neighbour spacings."""
    X, X_pert = _check_X(X), _check_X(X_pert)
    if X.shape != X_pert.shape:
        raise ValueError(f"shapes differ: {X.shape} vs {X_pert.shape}")
    d = np.sqrt(((X_pert.astype(np.float64) - X) ** 2).sum(axis=(1, 2)))
    return float(d.mean() / spacing)


def kernel_locality(kernel: Kernel, X: np.ndarray, spacing: float, rng: np.random.Generator,
                    use_cache: bool = True) -> float:
    """:func:`locality` of ``kernel`` on X (n, T, C): locality(X, kernel.sample(X, rng), spacing),
    cached like :func:`predict` (a ``denoise`` kernel runs its model to answer)."""
    from . import cache

    spec = {"X": cache.fingerprint(_check_X(X)), "kernel": kernel.fingerprint(),
            "spacing": float(spacing)} if use_cache and hasattr(kernel, "fingerprint") else None
    entry = _drawn("locality", spec, rng, "locality",
                   lambda: locality(X, kernel.sample(X, rng), spacing))
    return float(entry["locality"])


def data_spacing(train: np.ndarray, n_ref: int = 2000, rng: np.random.Generator | None = None,
                 chunk: int = 1024) -> float:
    """Mean nearest-neighbour distance between training trajectories (flattened Euclidean, task
    units, self excluded): ``n_ref`` of them drawn without replacement (``rng``, default seed 0)
    against the whole set (all of them when n_ref >= n). Cached when ``rng`` is None."""
    from . import cache

    train = _check_X(train)
    n = len(train)
    if n < 2:
        raise ValueError("data_spacing needs at least 2 trajectories")

    def compute(g):
        ref = np.arange(n) if n_ref >= n else np.sort(g.choice(n, int(n_ref), replace=False))
        return float(nearest(train[ref], train, exclude=ref, chunk=chunk)[0].mean())

    if rng is not None:
        return compute(rng)
    spec = {"train": cache.fingerprint(train), "n_ref": int(n_ref), "chunk": int(chunk),
            "v": PREDICT_VERSION}
    return cache.memo("spacing", spec, lambda: compute(np.random.default_rng(0)))


def scale_for_locality(make, X: np.ndarray, spacing: float, target: float,
                       rng: np.random.Generator, use_cache: bool = True) -> float:
    """The scale at which ``make(scale)`` moves X (n, T, C) by ``target`` data spacings (e.g. the
    model's own sample-to-nearest-data ratio ``nn_ratio``): ``target / locality at scale 1``,
    the locality measured by :func:`kernel_locality` with ``rng`` (cached unless ``use_cache`` is
    False).

    Exact for the data-only kernels (white, smooth, spectral, neighbour): their x' - x is
    proportional to the scale under a common random stream, so locality is linear in it. Not
    for ``denoise``, whose scale is a diffusion step. The one place a kernel scale is found from
    a locality: notebooks, :mod:`paper_lib.forecast` and the benchmark call it.
    """
    target = float(target)
    if not np.isfinite(target) or target < 0:
        raise ValueError(f"target locality must be finite and >= 0, got {target!r}")
    unit = kernel_locality(make(1.0), X, spacing, rng, use_cache=use_cache)
    if not unit > 0:
        raise ValueError(f"the kernel does not move the data at scale 1 (locality {unit!r}); "
                         "no scale reaches a positive target locality")
    return target / unit
