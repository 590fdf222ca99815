# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     notebook_metadata_filter: -jupytext.text_representation
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 — The data deviation kernel: predicting the drift before training
#
# *Companion to "Mechanisms of Misgeneralization in Physical Sequence Modeling" (arXiv 2605.20299).*
#
# Notebook 02 showed that models whose samples look right still move probability mass between
# values of q. The paper's account: a model class makes characteristic **small local deviations**
# from the data, described by a kernel K(x′ | x); pushed through the measurement m they move mass
# in a predictable way:
#
# p̂(q) = law of m(x′) with x ~ data, x′ ~ K(· | x).
#
# If that is right, we can forecast the drift from the data and a kernel alone. This notebook
# builds five kernels, compares their forecasts with the drift of the trained models of
# notebook 02, and — the part that keeps us honest — reports each kernel's **locality**: how far
# it moves a trajectory, in units of the data's nearest-neighbour spacing, next to how far the
# model's own samples sit from the data (`nn_ratio`). A kernel that reproduces the drift only by
# moving trajectories much further than the model's own errors is not evidence for the mechanism.
#
# The paper does not publish its kernel's exact form; the five estimators below are this
# companion's (see `paper_lib/kernels.py`).

# %% tags=["parameters"]
profile = "default"

# %%
from functools import partial

import altair as alt
import numpy as np
import pandas as pd

import paper_lib
from paper_lib import drift, forecast, kernels, metrics, models, parallel, plots, surrogates
from paper_lib.seeding import rng

P = paper_lib.setup(profile)
paper_lib.check_versions()
TASKS = {name: paper_lib.get_task(name) for name in paper_lib.tasks.SYNTHETIC}
CLASSES = models.MODEL_CLASSES
DIFFUSION = [k for k in CLASSES if k.startswith("diffusion")]
FAMILIES = ["white", "smooth", "spectral", "neighbour", "denoise"]
print(f"profile {P.name}: kernels start from {P.kernel_n} training trajectories × "
      f"{P.kernel_draws} draws; locality grid {P.localities}")

# %% [markdown]
# Every model this notebook reads: notebook 02's (seed 0), one `diffusion-unet` per task trained
# on a differently curated prior (for held-out forecasts, below), `sine` and `cone` U-Nets
# trained four times longer (the last section), and the maze and pendulum U-Nets of notebooks
# 04 and 05 (for the before-training forecasts). Those the cache lacks are trained here, side by
# side, one per core.

# %%
OTHER_PRIOR = {"sine": (2.0, 5.0), "cone": (3.0, 7.0), "logistic": (3.4, 4.0)}
LONG = 4 * P.train_steps
budgets = [P.train_steps, 2 * P.train_steps, LONG]
long_jobs = {name: partial(drift.train, name, "diffusion-unet", P, train_steps=LONG,
                           snapshots=tuple(budgets[:-1])) for name in ["sine", "cone"]}
other_jobs = {name: partial(drift.train, name, "diffusion-unet", P, task_params={"lo": lo, "hi": hi})
              for name, (lo, hi) in OTHER_PRIOR.items()}
parallel.run_all([*long_jobs.values(), *[partial(drift.standard_run, name, kind, P)
                                         for kind in CLASSES for name in TASKS],
                  *other_jobs.values(),   # and the U-Nets of 04 and 05 (before training, below)
                  *[partial(drift.standard_run, name, "diffusion-unet", P)
                    for name in ("maze", "pendulum")]])

# %% [markdown]
# ## Why a kernel: a local deviation pushed through the measurement
#
# Take clean training trajectories, add a small zero-mean perturbation, and measure again. The
# change Δq = m(x′) − m(x) is *not* zero-mean, and its bias depends on q:
#
# * **travel distance (cone)** is a sum of norms of steps. A norm is convex, so by Jensen's
#   inequality zero-mean wiggles make every step longer on average (a step of length d becomes
#   √(d² + 2σ²) in expectation, roughly): every path gets longer, and mass moves up.
# * **the logistic growth rate** is a least-squares slope r̂ = Σ x_{t+1} u_t / Σ u_t². Noise in
#   x_t enters both numerator and denominator; where the orbit spans little of the parabola
#   (period 2 at small r) the estimate is fragile, in the chaotic range it is stiff. The bias
#   varies with r, so mass piles up at some r and drains from others.
# * **frequency (sine)** is estimated by the best-fitting sinusoid, which white noise barely
#   moves: we expect little drift from isotropic local noise here.
#
# Below: white noise at half a data spacing (locality 0.5) on clean training data.

# %%
data = {n: drift.standard_run(n, CLASSES[0], P).dataset for n in TASKS}
push_rows = []
for name, t in TASKS.items():
    X = data[name].X[:1000]
    s = kernels.scale_for_locality(kernels.white, data[name].X[:forecast.N_LOCALITY],
                                   kernels.data_spacing(data[name].X), 0.5,
                                   rng(0, "locality", name))
    dq = t.measure(kernels.white(s).sample(X, rng(0, "push", name))) - t.measure(X)
    push_rows.append(pd.DataFrame({"task": name, "q": t.measure(X), "dq": dq}))
push = pd.concat(push_rows, ignore_index=True)
chart = alt.hconcat(*[
    alt.Chart(push[push.task == n]).mark_circle(size=8, opacity=0.4,
                                                color=plots.COLORS["kernel"]).encode(
        x=alt.X("q:Q", title=f"q ({TASKS[n].quantity})", scale=alt.Scale(zero=False)),
        y=alt.Y("dq:Q", title="Δq = m(x′) − m(x)"),
    ).properties(title=n, width=220, height=170) for n in TASKS])
plots.save(chart, "03_pushforward", data=push)
chart

# %%
push_summary = push.groupby("task").dq.agg(["mean", "std"]).rename(
    columns={"mean": "mean_dq", "std": "sd_dq"})
push_summary["mean_dq/se"] = push_summary.mean_dq / (push_summary.sd_dq / np.sqrt(1000))
print(push_summary.round(4).to_string())

# %% [markdown]
# ## The models to predict
#
# The models of notebook 02 (seed 0), loaded from the cache, their samples' q-histogram
# p_model, and the histogram of the training data p_data on the same bins. Drift is
# Δ = p_model − p_data; the model's own error scale is `nn_ratio`, the mean distance from a
# sample to its nearest training trajectory in units of the data spacing.
#
# **How good can a forecast be?** A histogram of 2,000 samples is itself noisy. We draw a second,
# independent bank of the same size from the same model (another sampling seed) and score it
# as if it were a forecast: its EDF is the **ceiling** (`edf_ceiling`), what a perfect forecaster
# of this model would score given the sampling noise. Every EDF below is read against it.

# %%
target = {}
for name, t in TASKS.items():
    for kind in CLASSES:
        run = drift.standard_run(name, kind, P)
        X, sample_seconds = drift.samples(run, P.n_samples, seed=0)
        X_repeat = drift.samples(run, P.n_samples, seed=1)[0]
        target[name, kind] = forecast.make_target(run, X, P, X_repeat=X_repeat,
                                                  sample_seconds=sample_seconds)
        target[name, kind].extra.update(run=run, X=X)
print(pd.DataFrame([{"task": k[0], "model": k[1], "nn_ratio": tg.nn_ratio,
                     "tv_data_model": metrics.tv(tg.p_data, tg.p_model),
                     "edf_ceiling": tg.ceiling} for k, tg in target.items()])
      .round(3).to_string(index=False))

# %% [markdown]
# ## Five kernels
#
# | kernel | K(x′ ∣ x) | free scale |
# |---|---|---|
# | `white` | x + σ ε, ε iid normal | σ |
# | `smooth` | x + σ (G_ℓ ∗ ε): noise correlated over ℓ = 3 steps | σ |
# | `spectral` | stationary noise with the power spectrum of the model's residuals (sample − nearest training trajectory) | a multiplier on that spectrum |
# | `neighbour` | x + α (x_j − x), x_j one of the 8 nearest training trajectories | α |
# | `denoise` | noise x to diffusion step t\* and run the trained model back to 0 | t\* (diffusion models only) |
#
# Every scale is also reported as a **locality**. Three ways to choose the scale:
#
# * **calibrated**: the scale that best fits this model's q-histogram (an upper bound on what the
#   kernel family can explain; it uses the answer);
# * **matched**: the scale whose locality equals this model's own `nn_ratio` — it uses the model's
#   error *size* but never its q-histogram (for `spectral`, the fitted spectrum itself);
# * **held-out**: nothing from this model. For the data-only kernels, the locality calibrated on
#   the *other two tasks* (same model class) is carried over; the spectral kernel carries the
#   other tasks' residual spectrum in units of their data spacing. For `denoise`, the denoiser
#   comes from a diffusion model trained on a *differently curated* dataset of the same task, at
#   the t\* calibrated on that model's own drift.
#
# All of it is `paper_lib.forecast`, the same code notebooks 04 and 05 and the benchmark run:
# `forecast.family_maker` builds each family, `forecast.forecast` sweeps the scale over a grid
# of localities (data-only kernels) or diffusion steps t\* (`denoise`), keeps every prediction,
# calibrates and matches; `forecast.held_out` adds the held-out rows.

# %%
results = {}
for (name, kind), tg in target.items():
    X, run = tg.extra["X"], tg.extra["run"]
    makers = {f: forecast.family_maker(f, tg, X, run.trained) for f in FAMILIES}
    tg.extra["makers"] = {f: m for f, m in makers.items() if m is not None}
    results[name, kind] = forecast.forecast(tg, tg.extra["makers"], P)
sweep = pd.concat([r.sweep for r in results.values()], ignore_index=True)
agree = pd.concat([r.rows for r in results.values()], ignore_index=True)
print(f"{len(sweep)} predictions, {sweep.predict_seconds.sum():.0f} s in all")

# %% [markdown]
# ### EDF against locality
#
# The explained drift fraction EDF = 1 − TV(p̂, p_model) / TV(p_data, p_model) of every kernel
# as its scale grows, for `diffusion-unet`. The grey band marks localities up to 1.5× the model's
# own `nn_ratio` (solid line): a kernel explains the drift *locally* only if it reaches a high EDF
# inside that band.

# %%
unet = sweep[sweep.model == "diffusion-unet"].copy()
unet["nn_ratio"] = [target[n, "diffusion-unet"].nn_ratio for n in unet.task]
chart = alt.hconcat(*[plots.edf_locality(unet[unet.task == n], target[n, "diffusion-unet"].nn_ratio,
                                         n, 220, 180, sort=FAMILIES) for n in TASKS])
plots.save(chart, "03_edf_locality", data=unet.drop(columns="predict_seconds"))  # no timings
chart

# %% [markdown]
# ### Held-out predictions
#
# Data-only kernels: the locality calibrated on the other two tasks (same model class),
# averaged, sets the scale here; the spectral kernel uses the other tasks' residual spectra,
# averaged over channels and expressed in units of their data spacing. The held-out `denoise`
# kernel needs one more model per task: a `diffusion-unet` trained on a differently curated
# dataset (the prior `OTHER_PRIOR`, set at the top), whose own drift fixes t\*.

# %%
def residual_psd(name: str, kind: str) -> np.ndarray:
    """The residual spectrum of a model's samples, averaged over channels, per data spacing²."""
    tg = target[name, kind]
    resid = kernels.nearest_residuals(tg.extra["X"][:1000], tg.data.X)
    return kernels.fit_spectral(resid).mean(1) / tg.spacing ** 2


held_rows = []
for (name, kind), tg in target.items():
    others = [o for o in TASKS if o != name]
    held = {}
    for family in ["white", "smooth", "neighbour"]:
        cal = agree[(agree.model == kind) & (agree.kernel == family)
                    & (agree["mode"] == "calibrated") & agree.task.isin(others)]
        held[family] = (float(cal.locality.mean()), f"locality {cal.locality.mean():.2f} "
                        f"calibrated on {' & '.join(others)}")
    psd = np.mean([residual_psd(o, kind) for o in others], axis=0) * tg.spacing ** 2
    held["spectral"] = (kernels.spectral(psd, 1.0),
                        f"residual spectrum of {' & '.join(others)} (per data spacing)")
    if kind == "diffusion-unet":  # a U-Net trained on a differently curated prior of this task
        lo, hi = OTHER_PRIOR[name]
        other = other_jobs[name]()
        X_other = drift.samples(other, P.n_samples, seed=0)[0]
        t_best = forecast.fit_t_star(other, X_other, P)   # its own drift fixes t*, as in 04, 05
        held["denoise"] = (kernels.denoise(other.trained, t_best),
                           f"denoiser trained on prior U[{lo:g}, {hi:g}], t* fitted there")
    h_rows, h_shown = forecast.held_out(tg, tg.extra["makers"], held, P)
    held_rows += h_rows
    results[name, kind].shown.update(h_shown)
agree = pd.concat([agree, pd.DataFrame(held_rows, columns=forecast.AGREEMENT_COLUMNS)],
                  ignore_index=True)
agree = agree.sort_values(["task", "model", "kernel", "mode"]).reset_index(drop=True)

# %% [markdown]
# ### Predicted against observed
#
# Bars: each model's observed q-histogram; lines: the kernels' predictions (calibrated on the
# left figure, held-out on the right one); dashed grey: the training data.

# %%
def overlay_frame(mode: str) -> pd.DataFrame:
    rows = []
    for (name, kind), res in results.items():
        tg = target[name, kind]
        rows += [pd.DataFrame({"task": name, "model": kind, "kernel": family,
                               "center": tg.bins.centers, "p_hat": p_hat,
                               "p_model": tg.p_model, "p_data": tg.p_data})
                 for (family, m), p_hat in res.shown.items() if m == mode]
    return pd.concat(rows, ignore_index=True)


def overlay_chart(d: pd.DataFrame, name: str, title: str) -> alt.FacetChart:
    base = alt.Chart().encode(x=alt.X("center:Q", title=TASKS[name].quantity))
    # one row per (bin, kernel): stack=None draws the observed bar once instead of summing it
    obs = base.mark_bar(color=plots.COLORS["model"], opacity=0.35, width=5).encode(
        y=alt.Y("p_model:Q", title="probability per bin", stack=None), detail="kernel:N")
    dat = base.mark_line(color=plots.COLORS["prior"], strokeDash=[4, 3], interpolate="step")\
        .encode(y="p_data:Q", detail="kernel:N")
    pred = base.mark_line(strokeWidth=1.6).encode(y="p_hat:Q",
                                                  color=alt.Color("kernel:N", sort=FAMILIES))
    return alt.layer(obs, dat, pred, data=d[d.task == name]).properties(
        width=150, height=110).facet(column=alt.Column("model:N", sort=list(CLASSES), title=None),
                                     title=f"{name} — {title}")


for mode in ["calibrated", "held-out"]:
    d = overlay_frame(mode)
    chart = alt.vconcat(*[overlay_chart(d, n, mode) for n in TASKS])
    plots.save(chart, f"03_predictions_{mode.replace('-', '')}", data=d)
    display(chart)

# %% [markdown]
# ## The agreement table
#
# `figures/tables/kernel_agreement.csv`, one row per (task, model, kernel, mode). `rho` is the
# bin-wise correlation of predicted and observed drift, `sign_agreement` the share of bins with
# significant observed drift (beyond its bootstrap half-width) whose predicted drift has the same
# sign, `edf` the explained drift fraction; `tv_prior_model` is TV(p_data, p_model), the drift to
# explain. A calibrated row's `edf_spread` is the range of EDF over the grid scales whose TV is
# within 0.01 of the best one: near-ties that a last-bit rounding difference on another machine
# can swap, so read a calibrated EDF as ± that spread. Notebooks 04 and 05 append their own rows.

# %%
plots.update_table(agree, "kernel_agreement", ["task", "model", "kernel", "mode"])

# %%
# NBVAL_CHECK_OUTPUT
print(agree.drop(columns=["source", "cost_fraction"]).round(2).to_string(index=False))  # no timings

# %% [markdown]
# ## Does a *local* kernel forecast the drift?
#
# The target (from the paper's summaries, "prediction error below 10%"): for `diffusion-unet`
# on every task, TV(p̂, p_model) ≤ 0.10 and EDF ≥ 0.5 with a kernel whose locality is at most
# 1.5× the model's own `nn_ratio`. For each task: the best such kernel (any mode), and the best
# held-out one.

# %%
verdict = []
for name in TASKS:
    nn = target[name, "diffusion-unet"].nn_ratio
    d = agree[(agree.task == name) & (agree.model == "diffusion-unet")
              & (agree.locality <= 1.5 * nn)]
    for mode_set, label in [(["calibrated", "matched", "held-out"], "any mode"),
                            (["held-out"], "held-out"), (["matched"], "matched")]:
        dd = d[d["mode"].isin(mode_set)]
        if dd.empty:
            verdict.append({"task": name, "modes": label, "nn_ratio": nn})
            continue
        b = dd.loc[dd.edf.idxmax()]
        verdict.append({"task": name, "modes": label, "nn_ratio": nn, "kernel": b.kernel,
                        "mode": b["mode"], "locality": b.locality, "edf": b.edf,
                        "tv_pred_model": b.tv_pred_model,
                        "meets_target": bool(b.tv_pred_model <= 0.10 and b.edf >= 0.5)})
verdict = pd.DataFrame(verdict)
print(verdict.round(3).to_string(index=False))

# %% [markdown]
# ### What this says (default profile)
#
# Read with the table above and the EDF-against-locality figure:
#
# * **`logistic`: a local kernel forecasts the drift.** The model's own denoiser, run from a noise
#   level whose displacement matches the model's own error scale (`denoise`, matched), explains
#   most of the drift (EDF and TV in the verdict table) with a locality about equal to
#   `nn_ratio`. The peaks and troughs of the logistic drift are what the model's local
#   denoising errors do to r̂ — the paper's mechanism, measured.
# * **`cone`: the right direction, far too little.** At the model's own error scale, white noise
#   does push mass upward (Jensen: positive `rho` for `white`), but it explains only a few percent
#   of the drift. The model's denoiser reproduces the drift only from noise levels that move
#   trajectories tens of data spacings (non-local: that is re-sampling the model, not a local
#   error). So the U-Net's cone drift is *not* explained by local errors at this training budget;
#   the ablations of notebook 02 (the drift still shrinks with training) point at
#   under-training of the global shape as a large part of it.
# * **`sine`: no local kernel explains it.** The denoiser at its smallest level gets the *sign*
#   of the drift in most bins right (`rho` high for `denoise`, matched) but explains little of its
#   size; data-only kernels explain nothing. Only non-local denoising "predicts" it, which proves
#   nothing. Notebook 02 found the sine drift small and partly a sampler effect.
# * **Data-only kernels** (white, smooth, spectral, neighbour) explain little of the diffusion
#   models' drift on `sine` and `cone` (EDF ≤ 0.15, calibrated or not): isotropic or data-shaped
#   noise is not those models' error. `logistic` is the exception for every class: the growth
#   rate is so sensitive to any local perturbation that data-only noise recovers part of the
#   drift (more of the MLP's than of the U-Net's), and most of the VAE's (smooth noise,
#   calibrated) — the VAE's samples are smoothed near-copies of the data (the smallest `nn_ratio`
#   of the logistic models), which is
#   what a smooth kernel does.
# * **Held-out forecasts of the U-Net fail** at this budget. Localities carried over from other
#   tasks and denoisers from a differently curated model give EDF near zero or negative: the
#   held-out denoiser reproduces the drift of *its own* dataset, not of this one. (The logistic
#   drift of the VAE and the MLP, which data-only noise reaches, is the exception: their held-out
#   rows keep part of it.) What *is* supported is "the model's own local denoising error explains
#   the logistic drift"; the next section asks the before-training question directly.
#
# These are the numbers of a small laptop-sized model trained for ~1,200 steps; the paper
# profile is where to check whether the cone drift becomes local with more training.
#
# ## Before training: can anything forecast the drift without the model?
#
# Every forecast above that explains the drift used the trained model itself (its histogram, its
# error size or its denoiser). The question a practitioner asks comes *before* training. Two
# kinds of before-training forecast, each judged on the same numbers and with the same
# protocol:
#
# * **a closed-form surrogate of the model class**, built from the training set alone
#   (`paper_lib.surrogates`): for `diffusion-unet` the *patch mosaic* (the equivariant local score
#   machine of Kamb & Ganguli, 2025: at each reverse step every position is denoised to the
#   posterior mean of the centres of training patches of size P(t) cut at every position of every
#   training trajectory; here the two-stage schedule, the exact empirical denoiser while ᾱ_t is
#   below a switch level and a small patch P_lo after it); for `diffusion-mlp` the *smoothed
#   closed-form denoiser* (Scarvelis et al., 2025: the empirical optimal denoiser averaged over
#   Gaussian jitter σ of its input); for `transformer` a *nearest-context* autoregressive model
#   (each step continues the increment of one of the k training trajectories whose last L steps
#   are nearest); for `vae` a *low-rank bottleneck* (probabilistic PCA of rank r). Each draws
#   `n_samples` trajectories, measured like the model's.
# * **a pilot model**: the same class at a tenth of the training steps and half the width, on the
#   same data, drawing half as many samples: what an engineer would try first.
#
# The protocol: a surrogate's free parameters (P_lo and the switch; σ; L and k; r) are chosen
# **leave one task out**: for each task, the setting with the best mean EDF on the *other* tasks
# (the U-Net over all five tasks, including the maze and the pendulum of notebooks 04 and 05; the
# other classes over the three synthetic tasks). Nothing of the target task's model enters. Each
# row carries `edf_ceiling` (the EDF of a second sample bank of the target model, above) and
# `cost_fraction` (the forecast's seconds over the target's training plus sampling seconds; a
# pilot's training counts).
#
# **The goal** (for `diffusion-unet`): ρ ≥ 0.7 and EDF ≥ 0.5 × ceiling on at least 4 of the 5
# tasks, at a cost fraction ≤ 0.1.

# %%
BT_UNET_TASKS = (*TASKS, "maze", "pendulum")
bt_target = {key: tg for key, tg in target.items()}
for name in ("maze", "pendulum"):     # their U-Nets and sample banks are those of 04 and 05
    run = drift.standard_run(name, "diffusion-unet", P)
    _, inpaint = drift.conditions(run, P.n_samples)
    X, seconds = drift.samples(run, P.n_samples, seed=0, inpaint=inpaint)
    X_repeat = drift.samples(run, P.n_samples, seed=1, inpaint=inpaint)[0]
    bt_target[name, "diffusion-unet"] = forecast.make_target(
        run, X, P, keep=None if inpaint is None else inpaint[0], X_repeat=X_repeat,
        sample_seconds=seconds)
    bt_target[name, "diffusion-unet"].extra.update(run=run, X=X)

# the settings each surrogate's free parameters range over (chosen leave one task out below)
SETTINGS = {
    "diffusion-unet": {f"P_lo={p}, switch={a}": dict(patch_schedule=("two-stage", p, a))
                       for p in (3, 5, 9) for a in (0.5, 0.9)},
    "diffusion-mlp": {f"sigma={s}": dict(sigma=s) for s in (0.05, 0.1, 0.2, 0.4)},
    "transformer": {f"L={L}, k={k}": dict(context=L, k=k) for L in (2, 8, 32) for k in (1, 4)},
    "vae": {f"rank={r}": dict(rank=r) for r in (2, 4, 8, 16)},
}


def make_surrogate(name: str, kind: str, params: dict):
    """The class's surrogate on the target's whole training set, with ``params``."""
    tg = bt_target[name, kind]
    params = dict(params)
    if "patch_schedule" in params:
        _, p_lo, a = params["patch_schedule"]
        params["patch_schedule"] = surrogates.two_stage_schedule(
            tg.task.T, p_lo, a, steps=P.diffusion_steps)
    extra = {"steps": P.diffusion_steps} if kind.startswith("diffusion") else {}
    return surrogates.SURROGATES[kind](tg.task, tg.train, **params, **extra)


grid_rows, grid_pred = [], {}
for (name, kind), tg in bt_target.items():
    inpaint = drift.conditions(tg.extra["run"], P.n_samples)[1]
    for label, params in SETTINGS[kind].items():
        X, secs = forecast.sampled(make_surrogate(name, kind, params), P.n_samples,
                                   rng(0, "surrogate", name, kind, label), inpaint=inpaint)
        row, p_hat = forecast.before_training(tg, surrogates.SURROGATES[kind].name, X, secs,
                                              label)
        grid_rows.append({**row, "setting": label})
        grid_pred[name, kind, label] = p_hat
grid = pd.DataFrame(grid_rows)
print(grid.pivot_table(index=["model", "setting"], columns="task", values="edf")
      .round(2).to_string())

# %% [markdown]
# Each task's surrogate row uses the setting chosen on the other tasks (printed as `source`).
# The pilots are trained side by side, one per core, then sampled.

# %%
parallel.run_all([partial(forecast.pilot, name, kind, P) for name, kind in bt_target])
bt_rows, bt_shown = [], {}
for kind in CLASSES:
    g = grid[grid.model == kind]
    choice = forecast.leave_one_task_out(g)
    for name, label in choice.items():
        r = g[(g.task == name) & (g.setting == label)].iloc[0]
        others = " & ".join(t for t in sorted(g.task.unique()) if t != name)
        bt_rows.append({**{c: r[c] for c in forecast.AGREEMENT_COLUMNS},
                        "source": f"{label} (chosen on {others})"})
        bt_shown[name, kind, "surrogate"] = grid_pred[name, kind, label]
for (name, kind), tg in bt_target.items():
    pilot = forecast.pilot(tg.task, kind, P)
    n_pilot = max(1, P.n_samples // 2)
    X, secs = drift.samples(pilot, n_pilot, seed=0,
                            inpaint=drift.conditions(pilot, n_pilot)[1])
    row, p_hat = forecast.before_training(
        tg, "pilot", X, pilot.trained.train_seconds + secs,
        f"{kind}, {pilot.trained.spec.train_steps} steps, width {pilot.trained.spec.width}, "
        f"{n_pilot} samples", scale=forecast.PILOT_STEPS)
    bt_rows.append(row)
    bt_shown[name, kind, "pilot"] = p_hat
before = pd.DataFrame(bt_rows, columns=forecast.AGREEMENT_COLUMNS)
plots.update_table(before, "kernel_agreement", ["task", "model", "kernel", "mode"])

# %%
# NBVAL_CHECK_OUTPUT
print(before.drop(columns=["source", "cost_fraction"]).round(2).to_string(index=False))

# %%
print(before[["task", "model", "kernel", "source", "cost_fraction"]].round(3)
      .to_string(index=False))

# %% [markdown]
# The forecasts against the models: per task and class, the model's histogram (bars), the
# surrogate's and the pilot's forecasts (lines) and the training data (dashed).

# %%
bt_frame = pd.concat([pd.DataFrame({
    "task": name, "model": kind, "forecast": how, "center": bt_target[name, kind].bins.centers,
    "p_hat": p_hat, "p_model": bt_target[name, kind].p_model,
    "p_data": bt_target[name, kind].p_data}) for (name, kind, how), p_hat in bt_shown.items()],
    ignore_index=True)


def before_chart(name: str) -> alt.FacetChart:
    base = alt.Chart().encode(x=alt.X("center:Q", title=drift.task_for(name, P).quantity))
    obs = base.mark_bar(color=plots.COLORS["model"], opacity=0.35, width=5).encode(
        y=alt.Y("p_model:Q", title="probability per bin", stack=None), detail="forecast:N")
    dat = base.mark_line(color=plots.COLORS["prior"], strokeDash=[4, 3], interpolate="step")\
        .encode(y="p_data:Q", detail="forecast:N")
    pred = base.mark_line(strokeWidth=1.6).encode(y="p_hat:Q", color="forecast:N")
    return alt.layer(obs, dat, pred, data=bt_frame[bt_frame.task == name]).properties(
        width=150, height=110).facet(column=alt.Column("model:N", sort=list(CLASSES), title=None),
                                     title=f"{name} — before training")


chart = alt.vconcat(*[before_chart(n) for n in BT_UNET_TASKS])
plots.save(chart, "03_before_training", data=bt_frame)
chart

# %% [markdown]
# **The verdict.** EDF is read against its ceiling. Per class and kind of forecast: on how many
# tasks ρ ≥ 0.7 and EDF ≥ 0.5 × ceiling, and at what cost.

# %%
before["edf_over_ceiling"] = before.edf / before.edf_ceiling
before["meets"] = (before.rho >= 0.7) & (before.edf >= 0.5 * before.edf_ceiling)
before["cheap"] = before.cost_fraction <= 0.1
bt_verdict = before.groupby(["model", "kernel"]).agg(
    tasks=("task", "size"), meets=("meets", "sum"), meets_and_cheap=(
        "meets", lambda m: int((m & before.loc[m.index, "cheap"]).sum())),
    median_rho=("rho", "median"), median_edf_over_ceiling=("edf_over_ceiling", "median"),
    max_cost_fraction=("cost_fraction", "max")).reset_index()
print(bt_verdict.round(2).to_string(index=False))
unet_bt = bt_verdict[bt_verdict.model == "diffusion-unet"]
best_bt = unet_bt.loc[unet_bt.meets_and_cheap.idxmax()]
print(f"\ngoal (diffusion-unet: rho >= 0.7 and EDF >= 0.5 x ceiling at cost <= 0.1 on >= 4 of 5 "
      f"tasks): best before-training forecast `{best_bt.kernel}` meets it on "
      f"{best_bt.meets_and_cheap} of {best_bt.tasks} -> "
      f"{'met' if best_bt.meets_and_cheap >= 4 else 'not met'}")

# %%
points = alt.Chart().mark_point(filled=True, size=60).encode(
    x=alt.X("rho:Q", title="ρ (predicted vs observed drift)", scale=alt.Scale(domain=[-1, 1])),
    y=alt.Y("edf_over_ceiling:Q", title="EDF / ceiling", scale=alt.Scale(domain=[-2, 1.5],
                                                                          clamp=True)),
    color=alt.Color("kernel:N", title="forecast"), shape=alt.Shape("task:N"),
    tooltip=["task", "model", "kernel", "source", "rho", "edf", "edf_ceiling", "cost_fraction"])
goal = [alt.Chart().mark_rule(color="gray", strokeDash=[4, 3]).encode(**{axis: alt.datum(v)})
        for axis, v in (("x", 0.7), ("y", 0.5))]     # the goal: upper right of both lines
chart = alt.layer(points, *goal, data=before).properties(width=200, height=180).facet(
    column=alt.Column("model:N", sort=list(CLASSES), title=None),
    title="Before-training forecasts: agreement against the ceiling (dashed: the goal)")
plots.save(chart, "03_before_training_verdict", data=before)
chart

# %% [markdown]
# What the U-Net's surrogate and pilot do, task by task: the setting chosen on the other tasks,
# the agreement, how far the surrogate's samples sit from the data (`surrogate_locality`, in data
# spacings) against the U-Net's own error scale (`model_nn_ratio`), how often they pass the
# task's validity check against the U-Net's samples, and how large the pilot's drift is against
# the U-Net's (TV(p_data, p_pilot) / TV(p_data, p_model): 1 is the right size).

# %%
reading = []
for name in BT_UNET_TASKS:
    tg = bt_target[name, "diffusion-unet"]
    rows_t = before[(before.task == name) & (before.model == "diffusion-unet")]
    m = rows_t[rows_t.kernel == "mosaic"].iloc[0]
    label = m.source.split(" (chosen")[0]
    X_s = forecast.sampled(make_surrogate(name, "diffusion-unet", SETTINGS["diffusion-unet"][label]),
                           P.n_samples, rng(0, "surrogate", name, "diffusion-unet", label),
                           inpaint=drift.conditions(tg.extra["run"], P.n_samples)[1])[0]
    pilot = rows_t[rows_t.kernel == "pilot"].iloc[0]
    reading.append({
        "task": name, "setting": label, "rho": m.rho, "edf/ceiling": m.edf / m.edf_ceiling,
        "surrogate_locality": m.locality, "model_nn_ratio": tg.nn_ratio,
        "surrogate_plausible": float(tg.task.is_plausible(X_s).mean()),
        "model_plausible": float(tg.task.is_plausible(tg.extra["X"]).mean()),
        "pilot_rho": pilot.rho, "pilot_drift_size": metrics.tv(
            tg.p_data, bt_shown[name, "diffusion-unet", "pilot"]) / metrics.tv(tg.p_data, tg.p_model)})
reading = pd.DataFrame(reading)
print(reading.round(2).to_string(index=False))
print(f"\nmosaic: rho > 0.5 on {int((reading.rho > 0.5).sum())} of {len(reading)} tasks, "
      f"EDF >= 0.5 x ceiling on {int((reading['edf/ceiling'] >= 0.5).sum())}; "
      f"its samples are less often plausible than the U-Net's on "
      f"{int((reading.surrogate_plausible < reading.model_plausible - 0.05).sum())} tasks")
print(f"settings chosen leave one task out: {sorted(set(reading.setting))}")
print(f"pilot: rho > 0 on {int((reading.pilot_rho > 0).sum())} of {len(reading)} tasks; its drift "
      f"is {reading.pilot_drift_size.min():.1f}-{reading.pilot_drift_size.max():.1f} times the "
      f"U-Net's (median {reading.pilot_drift_size.median():.1f})")

# %% [markdown]
# ### What this says (default profile)
#
# Read with the tables just above; every number quoted there is computed here.
#
# * **The goal is not met.** No before-training forecast of the U-Net reaches ρ ≥ 0.7 and
#   EDF ≥ 0.5 × ceiling on 4 of the 5 tasks (the verdict line). The ceiling itself is far from 1:
#   two sample banks of the same U-Net disagree by as much as some forecasts do, so the goal was
#   set against it, not against 1.
# * **The patch mosaic gets the direction more often than the amount**, with the settings chosen
#   on the other tasks (printed above). On `logistic` it
#   forecasts the drift as a model-free machine: its samples are as plausible as the U-Net's, sit
#   at the U-Net's own error scale, and reproduce the gains and troughs of r. On `cone` and the
#   maze its samples are a mosaic of local pieces that the check mostly rejects (a path that
#   wiggles at the scale of its patches), and on the maze its plans come out far longer than the
#   planner's (the overflow bin in the figure): the exact early stage fixes a route, the local
#   late stage jitters it, and every wiggle adds length. The U-Net is not such a mosaic at these sizes: its receptive field covers most of the
#   64 steps through its down-sampling, so its errors are smoother than any patch of 9 steps.
#   Calibrating P(t) per noise level against the trained U-Net, as done for images, does not
#   help here: it picks the exact, memorising denoiser at every step (`docs/design.md` 5.6).
# * **The pilot is the wrong size.** At a tenth of the steps and half the width, its drift points
#   the same way as the U-Net's only where its ρ is positive (printed above), and it is larger
#   than the U-Net's (the pilot's drift size): it is an under-trained model, and the drift of
#   notebook 02 shrinks with training. At best it tells an engineer *where* mass will go, not how
#   much; its EDF is far below the ceiling on every task.
# * **The other classes.** The low-rank bottleneck forecasts the VAE's drift direction on `cone`
#   and `logistic` (high ρ) and most of its logistic drift, at no cost; on `sine` it fails (our
#   reading: a few principal components cannot carry a sinusoid's phase and frequency, so the
#   bottleneck makes frequencies the VAE does not). Neither the smoothed closed-form denoiser (for
#   the MLP) nor the nearest-context model (for the Transformer) forecasts its class: their
#   forecasts stay near the data's histogram (EDF near 0) or move the wrong way, while those
#   classes drift.
# * So, to the question of this section: **a closed-form model of the class forecasts the drift
#   before training where the class's inductive bias is local in the sense the surrogate assumes
#   (the logistic map for the U-Net, linear structure for the VAE), and not elsewhere** at this
#   budget. The trained model's own denoiser (above) remains the only forecast that explains the
#   drift on most tasks.

# %% [markdown]
# ## Cost: forecasting is much cheaper than training
#
# The time to make one prediction with each kernel (matched scale) against the time to train the
# model it predicts and draw its samples. Written to `figures/tables/kernel_cost.csv`.

# %%
cost = pd.concat([r.cost.assign(train_plus_sample_seconds=target[k].cost)
                  for k, r in results.items()], ignore_index=True)
cost["speedup"] = cost.train_plus_sample_seconds / cost.predict_seconds
plots.save_table(cost.round(4), "kernel_cost")
print(cost.groupby("kernel")[["predict_seconds", "train_plus_sample_seconds", "speedup"]]
      .median().round(2).to_string())

# %% [markdown]
# ## An explorer for readers
#
# Drag the slider to change the locality of the `white` and `neighbour` kernels and watch the
# predicted histogram (line) move against the observed one of `diffusion-unet` (bars). The grid
# is precomputed, so the chart works in the static HTML export:
# `figures/03_kernel_explorer.html`.

# %%
exp_rows = []
for name in TASKS:
    tg, res = target[name, "diffusion-unet"], results[name, "diffusion-unet"]
    for family in ("white", "neighbour"):
        sw = res.sweep[res.sweep.kernel == family].reset_index(drop=True)
        for step, r in sw.iterrows():
            exp_rows.append(pd.DataFrame({"task": name, "kernel": family, "step": step,
                                          "locality": round(float(r.locality), 3),
                                          "center": tg.bins.centers,
                                          "p_hat": res.grid[family, float(r.scale)],
                                          "p_model": tg.p_model}))
explorer = pd.concat(exp_rows, ignore_index=True)
slider = alt.param(name="step", value=len(P.localities) // 2,
                   bind=alt.binding_range(min=0, max=len(P.localities) - 1, step=1,
                                          name="locality grid point "))
base = alt.Chart(explorer).encode(x=alt.X("center:Q", title="q"))
# a fixed y scale (the model's largest bin, with room): the chart does not rescale as the slider
# moves, and a prediction that sends most mass to one bin is clipped at the top instead
y_max = float(1.5 * explorer.p_model.max())
bars = base.mark_bar(color=plots.COLORS["model"], opacity=0.35, width=5).encode(
    y=alt.Y("p_model:Q", title="probability per bin", stack=None,
            scale=alt.Scale(domain=[0, y_max], clamp=True)))
line = base.mark_line(color=plots.COLORS["kernel"], strokeWidth=2, clip=True).encode(
    y=alt.Y("p_hat:Q", scale=alt.Scale(domain=[0, y_max], clamp=True)))\
    .transform_filter(alt.datum.step == slider)
label = alt.Chart(explorer).mark_text(align="left", x=5, y=8).encode(
    text=alt.Text("label:N")).transform_filter(alt.datum.step == slider)\
    .transform_aggregate(locality="mean(locality)", groupby=["task", "kernel"])\
    .transform_calculate(label="'locality ' + format(datum.locality, '.2f')")
chart = alt.layer(bars.transform_filter(alt.datum.step == 0), line, label).add_params(slider)\
    .properties(width=200, height=140).facet(row="kernel:N", column="task:N")\
    .resolve_scale(x="independent")
plots.save_html(chart, "03_kernel_explorer")
chart

# %% [markdown]
# ## Why no local kernel explains the sine and cone drift: more training
#
# For `sine` and `cone` no kernel as local as the U-Net's own errors forecast the drift. One
# explanation that the ablations of notebook 02 point at: the drift there is not (only) a local
# error but **under-training** of the global shape — the cone drift still fell with training
# steps at 1,200. A local kernel cannot describe that by construction. The test: train the same
# U-Net four times longer (EMA snapshots at 1× and 2× the default budget on the way, same
# cosine schedule stretched over the longer run), and measure at each budget the drift, the
# model's own error scale and the forecast of its own denoiser at that scale.
#
# For `sine` a second suspect is a **frequency bias** of the U-Net: notebook 02 found mass
# gained near f ≈ 1.2 and 3.8 in every seed. If that were a bias of the architecture rather than
# of the training budget, the same bins would keep gaining with longer training.

# %%
inv, inv_hist = [], []
for name in ["sine", "cone"]:   # LONG = 4 × the default steps, snapshots at 1× and 2× (top)
    t = TASKS[name]
    long_run = long_jobs[name]()
    bins = drift.quantity_bins(t, P)
    p_data = metrics.histogram(t.measure(data[name].X), bins)
    for b in budgets:
        snap = None if b == LONG else b
        X = drift.samples(long_run, P.n_samples, seed=0, snapshot=snap)[0]
        h = drift.histogram_with_band(t.measure(X), bins, P, name, "long", b)
        inv_hist.append(pd.DataFrame({"task": name, "steps": b, "center": bins.centers,
                                      "drift": h["p"] - p_data, "lo": h["lo"] - p_data,
                                      "hi": h["hi"] - p_data}))
        row = {"task": name, "steps": b, "tv_data_model": metrics.tv(p_data, h["p"]),
               "nn_ratio": drift.nn_ratio(X, data[name].X),
               "plausible": float(t.is_plausible(X).mean())}
        if b == LONG:   # the forecast of the longest-trained model by its own denoiser
            tg = forecast.make_target(long_run, X, P)
            rows_l = forecast.forecast(
                tg, {"denoise": forecast.family_maker("denoise", tg, X, long_run.trained)}, P).rows
            m = rows_l[rows_l["mode"] == "matched"].iloc[0]
            row.update({"denoise_matched_locality": m.locality, "denoise_matched_edf": m.edf})
        inv.append(row)
inv = pd.DataFrame(inv)
inv_hist = pd.concat(inv_hist, ignore_index=True)

# %%
# NBVAL_CHECK_OUTPUT
print(inv.round(3).to_string(index=False))
floors = {n: metrics.noise_floor_tv(TASKS[n].sample_quantity, P.n_samples,
                                    drift.quantity_bins(TASKS[n], P), rng(0, "floor", n))
          for n in ["sine", "cone"]}
print("noise floor TV:", {k: round(v, 3) for k, v in floors.items()})
print("the default (1x) model's matched denoise EDF, for comparison:",
      {n: round(float(agree[(agree.task == n) & (agree.model == "diffusion-unet")
                            & (agree.kernel == "denoise") & (agree["mode"] == "matched")]
                      .edf.iloc[0]), 3) for n in ["sine", "cone"]})
for name in ["sine", "cone"]:
    d = inv_hist[inv_hist.task == name]
    for b in budgets:
        dd = d[d.steps == b]
        print(f"{name} {b:>5} steps: bins gaining beyond the band:",
              [round(c, 2) for c in dd.center[dd.lo > 0]])

# %%
chart = alt.Chart(inv_hist).mark_line(point=True, interpolate="step").encode(
    x=alt.X("center:Q", title="q"), y=alt.Y("drift:Q", title="p_model − p_data"),
    color=alt.Color("steps:O", title="training steps")).properties(width=260, height=160)\
    .facet(column=alt.Column("task:N", title=None)).resolve_scale(x="independent")
plots.save(chart, "03_longer_training", data=inv_hist)
chart

# %% [markdown]
# ### What the longer training shows (default profile)
#
# * **`sine`: part under-training, part a frequency bias.** The drift falls with training
#   (TV 0.14 → 0.11 → 0.086 at 1×, 2× and 4× the default budget; noise floor ≈ 0.055), and the
#   model's own denoiser at its own error scale explains more of what is left (the matched EDF
#   at 4× against the default model's, both printed above). But the same frequencies keep gaining at every
#   budget — f ≈ 1.2 and 3.6–3.8, with troughs near 2.4–2.6 and 3.9 (figure) — while the rest
#   shrinks: a preference of the
#   U-Net for some frequencies on a 64-step window that training does not remove at this scale.
#   Such a bias is not a local error of individual trajectories, so no local kernel of the data
#   can forecast it; it belongs to the architecture (a spectral or convolution-length bias is
#   our guess, not tested here).
# * **`cone`: the drift does not go away; it changes shape.** TV falls from 0.25 to ≈ 0.20 by 2×
#   and stays there at 4×, while the pattern moves: at 1× the mid-to-long distances (3.3–5.1)
#   gain, at 4× distances near 2.7–3.5 and 5.1–5.5 gain and both ends of the range lose. The
#   model's error scale shrinks (`nn_ratio` 1.58 → 1.20) and its own local denoiser explains more
#   of the drift (the matched EDF at 4× against the default model's, printed above). So with training
#   the cone drift becomes *more* local, but most of it is still not a local error at this model
#   size.
# * Neither task reaches the target with more training within a laptop budget; the paper profile
#   (more steps, wider nets) is the place to follow these trends further.

# %% [markdown]
# ## Try it on your own data: the drift check
#
# Everything above needs the companion's tasks. `paper_lib.driftcheck.check` (also
# `python -m paper_lib drift`, see the README) runs the data-only part on any curated set of
# trajectories and any vectorised measurement, before anything is trained: it perturbs every
# trajectory with a data deviation kernel, measures again and reports which values of the
# quantity gain or lose mass beyond noise (a paired bootstrap over trajectories). Here we build
# a dataset ourselves — planar random walks of equal step length whose travel distance we curate
# to a uniform prior — and ask where a model making smooth local errors would move the mass.
# Travel distance is a sum of step norms, so zero-mean wiggles should lengthen every walk
# (Jensen): the forecast must move mass up.

# %%
from paper_lib import driftcheck  # noqa: E402

n_walk = min(P.n_train, 4000)
g = rng(0, "drift-check", "walks")
length = g.uniform(4.0, 8.0, n_walk)                     # the curated quantity: uniform
heading = np.cumsum(g.normal(0, 0.3, (n_walk, 63)), axis=1)
steps = np.stack([np.cos(heading), np.sin(heading)], -1) * (length[:, None, None] / 63)
walks = np.concatenate([np.zeros((n_walk, 1, 2)), np.cumsum(steps, 1)], 1).astype(np.float32)
walk_check = driftcheck.check(walks, paper_lib.tasks.travel_distance, kernel="smooth", bins=16,
                              seed=0)
print(walk_check.summary())
walk_check.chart()

# %%
# NBVAL_CHECK_OUTPUT
print(f"forecast mean shift of travel distance: {walk_check.mean_shift:+.3f} "
      f"(bins gaining beyond noise: {len(walk_check.gains)}, losing: {len(walk_check.losses)})")
