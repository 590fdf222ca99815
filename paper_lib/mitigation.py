"""Mitigations of the drift and the bookkeeping of ``tables/mitigation.csv`` (notebook 06).

* **Reweighting** trains on the curated set resampled with weights per q-bin:
  :func:`plain_weights` (prior / p_model, what an engineer does after seeing the drift) or the
  weights of :func:`predistort`, which solve for the data distribution d whose image through the
  kernel's bin-to-bin transition matrix M (:func:`transition_matrix`) is the prior: M d ≈ prior,
  d ≥ 0 (Richardson-Lucy deconvolution).
* **Conditioning on q** is a ``q_condition`` U-Net (``models.ModelSpec``) sampled with
  classifier-free guidance; :func:`condition_error` measures how far m(x̃) lands from the
  requested q.
* **A representation** is :mod:`paper_lib.representation`.

Histograms are on ``metrics.Bins`` (length bins.n + 2: underflow, the bins, overflow).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import cache, metrics
from .datasets import Dataset, resample_to_weights

__all__ = ["METHODS", "MITIGATION_COLUMNS", "plain_weights", "transition_matrix", "predistort",
           "row_weights", "reweighted", "condition_error", "MAX_WEIGHT", "before_training",
           "mosaic_forecast", "pilot_forecast", "tv_change"]

MITIGATION_COLUMNS = ["task", "method", "predicted_tv", "tv_model_prior", "w1_model_prior",
                      "tv_noise_floor", "plausible_frac", "plausible_projected", "train_seconds",
                      "forecast"]
METHODS = ("baseline", "reweight-plain", "reweight-predistorted", "condition-w0", "condition-w1",
           "condition-w3")   # plus "represent-<name>" per candidate representation
MAX_WEIGHT = 10.0   # largest weight of a bin relative to its curated mass (clipped)


def _inner(p: np.ndarray, bins: metrics.Bins, what: str) -> np.ndarray:
    p = np.asarray(p, float)
    if p.shape != (bins.n + 2,):
        raise ValueError(f"{what} must be a histogram of length bins.n + 2 = {bins.n + 2}, got "
                         f"shape {p.shape}")
    return p[1:-1]


def plain_weights(p_model: np.ndarray, bins: metrics.Bins) -> np.ndarray:
    """Per inner bin (bins.n,): prior / p_model, the model's mass floored at prior / MAX_WEIGHT
    (a bin the model never visits gets the largest weight, not an infinite one), normalised to
    mean 1 over the bins. ``p_model``: the unmitigated model's histogram (bins.n + 2,)."""
    prior = _inner(metrics.uniform_histogram(bins), bins, "prior")
    pm = _inner(p_model, bins, "p_model")
    w = prior / np.maximum(pm, prior / MAX_WEIGHT)
    return w / w.mean()


def transition_matrix(q_source: np.ndarray, q_pred: np.ndarray, bins: metrics.Bins) -> np.ndarray:
    """M (bins.n + 2, bins.n + 2): column b is the histogram of the kernel's predicted q for the
    trajectories whose own q is in bin b (q_source (n,); q_pred (draws · n,), draw-major as
    ``kernels.predict`` returns it, or (n, draws)). Columns of empty source bins are 0."""
    q_source = np.asarray(q_source, float)
    n = len(q_source)
    q_pred = np.asarray(q_pred, float)
    if q_pred.ndim == 1 and len(q_pred) % max(n, 1) == 0:
        q_pred = q_pred.reshape(-1, n).T
    if q_pred.ndim != 2 or q_pred.shape[0] != n:
        raise ValueError(f"q_pred must hold draws of the {n} source trajectories, got shape "
                         f"{np.shape(q_pred)}")
    src = np.repeat(bins.index(q_source), q_pred.shape[1])
    dst = bins.index(q_pred.reshape(-1))
    M = np.zeros((bins.n + 2, bins.n + 2))
    np.add.at(M, (dst, src), 1.0)
    total = M.sum(0)
    return np.divide(M, total, out=np.zeros_like(M), where=total > 0)


def predistort(M: np.ndarray, target: np.ndarray, iters: int = 200) -> np.ndarray:
    """The source distribution d (len(target),) over the bins, d ≥ 0, Σ d = 1, zero where M has
    no column, whose image M d is closest to ``target`` in the Kullback-Leibler sense:
    ``iters`` Richardson-Lucy iterations d ← d · Mᵀ(target / M d) / Mᵀ1 from ``target`` itself
    (stopping early is the method's usual regulariser: M is estimated from samples), then each
    bin's mass clipped to [1 / MAX_WEIGHT, MAX_WEIGHT] × its target mass, as the plain weights
    are, and renormalised. Mass the kernel sends where the target has none (outside the support)
    cannot be brought back by any d: if no column sends any mass to the target's bins, d is the
    target (nothing to reweight)."""
    M = np.asarray(M, float)
    target = np.asarray(target, float)
    if M.shape != (len(target), len(target)):
        raise ValueError(f"M must be ({len(target)}, {len(target)}) for a target of length "
                         f"{len(target)}, got {M.shape}")
    live = (M.sum(0) > 0) & (target > 0)
    if not live.any():
        raise ValueError("M has no non-empty column where the target has mass: no source bin "
                         "to reweight")
    d0 = np.where(live, target, 0.0)
    d0 /= d0.sum()
    d = d0.copy()
    norm = np.where(live, M.sum(0), 1.0)
    for _ in range(int(iters)):
        image = M @ d
        ratio = np.divide(target, image, out=np.zeros_like(image), where=image > 0)
        step = np.where(live, d * (M.T @ ratio) / norm, 0.0)
        if not step.sum() > 0:
            break
        d = step / step.sum()
    d = np.where(live, np.clip(d, d0 / MAX_WEIGHT, d0 * MAX_WEIGHT), 0.0)
    return d / d.sum()


def row_weights(q: np.ndarray, bins: metrics.Bins, bin_weights: np.ndarray) -> np.ndarray:
    """Weights per trajectory (n,) from weights per inner bin (bins.n,) (or per bin including
    under/overflow, bins.n + 2): each trajectory gets its bin's weight divided by the bin's count,
    so the resampled set's bin masses follow ``bin_weights``. Trajectories outside the inner bins
    get weight 0."""
    w = np.asarray(bin_weights, float)
    w = np.r_[0.0, w, 0.0] if len(w) == bins.n else w
    if len(w) != bins.n + 2 or np.any(w < 0) or not np.isfinite(w).all():
        raise ValueError(f"bin_weights must be {bins.n} (or {bins.n + 2}) finite weights >= 0, "
                         f"got {np.shape(bin_weights)}")
    idx = bins.index(q)
    counts = np.bincount(idx, minlength=bins.n + 2).astype(float)
    return w[idx] / np.maximum(counts[idx], 1)


def reweighted(dataset: Dataset, weights: np.ndarray, rng: np.random.Generator) -> Dataset:
    """The curated set resampled with replacement, len(dataset) draws with probability ∝
    ``weights`` (n,): a new Dataset (its spec names the draw, so a model trained on it has its
    own cache entry)."""
    return dataset.subset(resample_to_weights(weights, len(dataset), rng))


def condition_error(q_requested: np.ndarray, q_measured: np.ndarray,
                    bins: metrics.Bins) -> pd.DataFrame:
    """Per bin of the requested q: count, mean and standard deviation of m(x̃) − q (units of q;
    NaN measurements are counted in ``n_nan`` and left out)."""
    q_requested, q_measured = np.asarray(q_requested, float), np.asarray(q_measured, float)
    idx = bins.index(q_requested)
    err = q_measured - q_requested
    rows = []
    for b in range(1, bins.n + 1):
        e = err[idx == b]
        f = e[np.isfinite(e)]
        rows.append({"bin": bins.labels[b], "center": float(bins.centers[b]), "n": len(e),
                     "n_nan": int(len(e) - len(f)),
                     "mean_error": float(f.mean()) if len(f) else np.nan,
                     "sd_error": float(f.std(ddof=1)) if len(f) > 1 else np.nan})
    return pd.DataFrame(rows)


def before_training(task, X: np.ndarray, bins: metrics.Bins, draws: int, seed: int = 0) -> dict:
    """The before-training forecast of a training set X (n, T, C) in ``task``'s coordinates: the
    drift check (:func:`paper_lib.driftcheck.check`, ``smooth`` kernel at the companion's default
    locality, measured in data spacings of X itself, so that representations are compared at the
    same relative error size). Returns {"p": forecast histogram (bins.n + 2,), "tv_prior": its TV
    to the uniform prior, "locality", "seconds"}; cached by a hash of X."""
    from . import driftcheck, kernels

    spec = {"task": task, "X": cache.fingerprint(np.asarray(X, np.float32)), "bins": bins,
            "draws": int(draws), "seed": int(seed), "v": kernels.PREDICT_VERSION}

    def build():
        r = driftcheck.check(X, task.measure, bins=bins, draws=int(draws), seed=seed)
        return {"p": r.p_forecast, "locality": r.locality, "seconds": r.seconds}

    out = dict(cache.memo("before_training", spec, build))
    out["tv_prior"] = metrics.tv(out["p"], metrics.uniform_histogram(bins))
    return out


def mosaic_forecast(task, X: np.ndarray, bins: metrics.Bins, setting: tuple[int, float], n: int,
                    steps: int, rng: np.random.Generator, inpaint=None) -> dict:
    """The U-Net's closed-form surrogate as the before-training forecast of a training set X
    (n_train, T, C) in ``task``'s coordinates: the patch mosaic (``surrogates.PatchMosaic``) on X
    with the two-stage schedule ``setting`` = (P_lo, switch) over ``steps`` diffusion steps, ``n``
    draws from ``rng`` (``inpaint``: entries imposed, as for the model's samples), measured by the
    task. Returns {"p": histogram (bins.n + 2,), "tv_prior": its TV to the uniform prior,
    "plausible": share of draws passing the task's check, "seconds": sampling time}; the draws
    are cached (``forecast.sampled``)."""
    from . import forecast, surrogates

    mosaic = surrogates.two_stage_mosaic(task, X, *setting, steps=steps)
    Xd, seconds = forecast.sampled(mosaic, n, rng, inpaint=inpaint)
    p = metrics.histogram(task.measure(Xd), bins)
    return {"p": p, "tv_prior": metrics.tv(p, metrics.uniform_histogram(bins)),
            "plausible": float(task.is_plausible(Xd).mean()), "seconds": seconds}


def pilot_forecast(task, dataset, bins: metrics.Bins, shape: dict, t_star: int, profile,
                   draws: int, rng: np.random.Generator, keep=None) -> dict:
    """A kernel pilot's own denoiser as the before-training forecast of a training set:
    ``forecast.kernel_pilot`` of the U-Net of ``shape`` trained on ``dataset`` (in ``task``'s
    coordinates), its ``denoise`` kernel at ``t_star`` applied to the first ``profile.kernel_n``
    trajectories (``draws`` each; ``keep``: entries left as they are, a planner's start and
    goal), measured by the task. Returns {"p": histogram (bins.n + 2,), "tv_prior": its TV to
    the uniform prior, "seconds": the pilot's training plus the prediction}; pilot and
    prediction are cached."""
    from . import forecast, kernels

    run = forecast.kernel_pilot(task, "diffusion-unet", profile, shape, dataset=dataset)
    data = dataset.head(profile.kernel_n)
    p, _, seconds = kernels.predict(task, data, kernels.denoise(run.trained, t_star, keep=keep),
                                    draws, bins, rng, timed=True)
    return {"p": p, "tv_prior": metrics.tv(p, metrics.uniform_histogram(bins)),
            "seconds": run.trained.train_seconds + seconds}


def tv_change(q_new: np.ndarray, q_old: np.ndarray, bins: metrics.Bins, n_boot: int,
              rng: np.random.Generator, level: float = 0.9) -> tuple[float, float, float]:
    """TV(new, prior) − TV(old, prior) for two independent samples of q, with the central
    ``level`` interval of its bootstrap (each sample resampled with replacement): a change whose
    interval excludes 0 is beyond sampling noise."""
    prior = metrics.uniform_histogram(bins)
    q_new, q_old = np.asarray(q_new, float), np.asarray(q_old, float)

    def tv_of(q):
        return metrics.tv(metrics.histogram(q, bins), prior)

    boots = [tv_of(rng.choice(q_new, len(q_new))) - tv_of(rng.choice(q_old, len(q_old)))
             for _ in range(int(n_boot))]
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return tv_of(q_new) - tv_of(q_old), float(lo), float(hi)
