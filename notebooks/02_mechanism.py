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
# # 02 — The phenomenon: plausible samples, drifting quantities
#
# *Companion to "Mechanisms of Misgeneralization in Physical Sequence Modeling" (arXiv 2605.20299).*
#
# We train generative models of four classes on the curated datasets of notebook 01 — the
# trajectories only, never q — and measure q on what they generate with the exact rulers of
# notebook 01. The paper's claim has two halves, and this notebook measures both:
#
# 1. **the samples look right**: each passes the task's own validity check, and they are neither
#    copies of training trajectories nor far from them;
# 2. **yet the quantity drifts**: the histogram of m(samples) differs from the curated prior by
#    more than sampling noise explains.
#
# Then we test the boring explanations for the drift — too little training, too little capacity,
# too little data, the sampler, memorisation — for the primary model class, a DDPM with a
# temporal 1D U-Net. The model classes and their sizes are this companion's choices (the paper
# does not publish its hyperparameters); every size comes from the profile.

# %% tags=["parameters"]
profile = "default"

# %%
from functools import partial

import altair as alt
import numpy as np
import pandas as pd

import paper_lib
from paper_lib import drift, metrics, models, parallel, plots
from paper_lib.seeding import rng

P = paper_lib.setup(profile)
paper_lib.check_versions()
TASKS = {name: paper_lib.get_task(name) for name in paper_lib.tasks.SYNTHETIC}
CLASSES = models.MODEL_CLASSES
print(f"profile {P.name}: {P.n_train} training trajectories, {P.train_steps} steps at batch "
      f"{P.batch_size}, width {P.width}, {P.n_samples} samples per model, seeds {P.seeds}")

# %% [markdown]
# ## Training
#
# One model per (task, class), plus extra seeds of `diffusion-unet`. Trained models live in the
# content-addressed cache (`.cache/`), so notebook 03 reuses them instead of training again; the
# times below are those of the run that trained each model. Models missing from the cache are
# trained side by side, one per core (`paper_lib.parallel`; training is single-threaded, so the
# weights do not depend on how many run at once).
#
# | class | what it is |
# |---|---|
# | `diffusion-unet` | DDPM over the (T, C) trajectory, denoiser a temporal 1D U-Net (Diffuser-like) |
# | `diffusion-mlp` | the same diffusion, denoiser an MLP on the flattened trajectory |
# | `transformer` | causal autoregressive Transformer, a Gaussian for each next step |
# | `vae` | whole-trajectory VAE, sampled from its prior |

# %%
jobs = {(name, kind, seed): partial(drift.standard_run, name, kind, P, seed=seed)
        for name in TASKS for kind in CLASSES
        for seed in (P.seeds if kind == "diffusion-unet" else P.seeds[:1])}
slowest_first = sorted(jobs, key=lambda key: key[1] != "diffusion-unet")
parallel.run_all([jobs[key] for key in slowest_first])  # train what the cache lacks, 1 per core
runs = {key: job() for key, job in jobs.items()}   # now loaded from the cache
bank = {key: drift.samples(run, P.n_samples, seed=key[2])[0] for key, run in runs.items()}

timing = pd.DataFrame([{"task": k[0], "model": k[1], "seed": k[2],
                        "params": models.count_params(r.trained),
                        "train_seconds": round(r.trained.train_seconds, 1)}
                       for k, r in runs.items()])
print(timing.to_string(index=False))
print(f"\nmean training time per model: {timing.train_seconds.mean():.0f} s")

# %% [markdown]
# ## 1. The samples look right
#
# Three training trajectories and three samples of each class, per task. By eye they are the same
# kind of object: sinusoids, spirals, logistic orbits.

# %%
def traj_frame(X: np.ndarray, source: str, task: str, n: int = 3) -> pd.DataFrame:
    rows = []
    for i in range(min(n, len(X))):
        y = X[i, :, 1] if X.shape[2] > 1 else np.full(X.shape[1], np.nan)
        rows.append(pd.DataFrame({"task": task, "source": source, "i": i,
                                  "t": np.arange(X.shape[1]), "x": X[i, :, 0], "y": y}))
    return pd.concat(rows)


looks = pd.concat([traj_frame(runs[n, CLASSES[0], 0].dataset.X, "data", n) for n in TASKS]
                  + [traj_frame(bank[n, k, 0], k, n) for n in TASKS for k in CLASSES],
                  ignore_index=True)
looks = looks[(looks.task != "logistic") | (looks.t < 32)]
order = ["data", *CLASSES]


def looks_chart(name: str) -> alt.FacetChart:
    d = looks[looks.task == name]
    if name == "cone":
        enc = dict(x=alt.X("x:Q", title="x"), y=alt.Y("y:Q", title="y"), order="t:Q")
    else:
        enc = dict(x=alt.X("t:Q", title="t"), y=alt.Y("x:Q", title="x_t"))
    return alt.Chart(d).mark_line(strokeWidth=1.2).encode(
        color=alt.Color("i:N", legend=None), detail="i:N", **enc,
    ).properties(width=150, height=110).facet(
        column=alt.Column("source:N", sort=order, title=None), title=name)


chart = alt.vconcat(*[looks_chart(n) for n in TASKS])
plots.save(chart, "02_samples", data=looks)
chart

# %% [markdown]
# By the numbers: the share of samples that pass the task's validity check (`is_plausible`:
# a sinusoid fit explaining ≥ 90% of the variance for `sine`; a linearly growing radius with the
# right number of turns for `cone`; values in [0, 1] and a one-step map residual below 0.05 for
# `logistic`), and a **memorisation check**: the distance from each sample to its nearest
# training trajectory, against the same distance between training trajectories. A model that
# copied its data would sit near zero; `nn_ratio` ≈ 1 means samples are as close to the data as
# the data are to each other.

# %%
rows = [drift.drift_row(runs[k], bank[k], P) for k in runs]
table = pd.DataFrame(rows)

nn_rows = []
for name in TASKS:
    train_X = runs[name, CLASSES[0], 0].dataset.X
    ref = train_X[: min(500, len(train_X))]
    nn_rows.append(pd.DataFrame({"task": name, "source": "train → train",
                                 "distance": metrics.nn_distances(ref, train_X, exclude_self=True)}))
    for kind in CLASSES:
        nn_rows.append(pd.DataFrame({"task": name, "source": f"{kind} → train",
                                     "distance": metrics.nn_distances(bank[name, kind, 0][:500],
                                                                      train_X)}))
nn_df = pd.concat(nn_rows, ignore_index=True)
chart = alt.Chart(nn_df).mark_boxplot(extent="min-max", size=14).encode(
    x=alt.X("source:N", title=None, sort=["train → train"] + [f"{k} → train" for k in CLASSES]),
    y=alt.Y("distance:Q", title="distance to nearest training trajectory"),
    color=alt.Color("source:N", legend=None),
).properties(width=170, height=170).facet(column=alt.Column("task:N", title=None)).resolve_scale(
    y="independent")
plots.save(chart, "02_memorisation", data=nn_df)
chart

# %%
seed0 = table[table.seed == 0]
print(seed0[["task", "model", "plausible_frac", "nn_ratio"]].round(3).to_string(index=False))

# %% [markdown]
# What to read from this at the default profile: the two diffusion models produce samples that
# pass the validity check of `sine` and `cone` essentially always, and sit about as close to the
# data as the data are to each other (`nn_ratio` near 1–1.7): they neither copy the training set
# nor wander away from it. The `logistic` check is strict (a one-step map residual below 0.05),
# and about three quarters of diffusion samples pass it. The Transformer and the VAE are weaker
# density models at this budget (lower plausibility on `sine`, larger `nn_ratio`); their drift is
# reported below but is the least informative about the mechanism, since their samples are
# visibly worse.
#
# ## 2. Yet the quantity drifts
#
# The histogram of q measured on each model's samples (bars, with 90% bootstrap bands) against
# the curated uniform prior (dashed). The outer bins count mass pushed outside the support.
# TV and W1 are distances to the exact prior; the **noise floor** is the TV between two
# independent draws of the prior of the same size — the drift a perfect model would show by
# chance (a conservative bar: it is about √2 above a perfect model's own score).

# %%
hist_rows = []
for (name, kind, seed), X in bank.items():
    if seed != 0:
        continue
    t = TASKS[name]
    bins = drift.quantity_bins(t, P)
    h = drift.histogram_with_band(t.measure(X), bins, P, name, kind, seed)
    hist_rows.append(pd.DataFrame({"task": name, "model": kind, "center": bins.centers,
                                   "bin": bins.labels, **h,
                                   "prior": metrics.uniform_histogram(bins)}))
hist = pd.concat(hist_rows, ignore_index=True)


def drift_chart(name: str) -> alt.FacetChart:
    base = alt.Chart().encode(x=alt.X("center:Q", title=TASKS[name].quantity))
    bars = base.mark_bar(color=plots.COLORS["model"], opacity=0.7, width=5).encode(
        y=alt.Y("p:Q", title="probability per bin"))
    band = base.mark_rule(color="black").encode(y="lo:Q", y2="hi:Q")
    prior = base.mark_line(color=plots.COLORS["prior"], strokeDash=[4, 3],
                           interpolate="step").encode(y="prior:Q")
    return alt.layer(bars, band, prior, data=hist[hist.task == name]).properties(
        width=150, height=110).facet(column=alt.Column("model:N", sort=list(CLASSES), title=None),
                                     title=name)


chart = alt.vconcat(*[drift_chart(n) for n in TASKS])
plots.save(chart, "02_drift", data=hist)
chart

# %% [markdown]
# The same in numbers, with where the mass goes: the mean of q on the samples against the prior's
# mean, and the share of samples whose q falls outside the curated support.

# %%
summary = seed0[["task", "model", "tv_model_prior", "tv_noise_floor", "w1_model_prior"]].copy()
summary["drift/floor"] = summary.tv_model_prior / summary.tv_noise_floor
summary["mean_q_shift"] = [TASKS[n].measure(bank[n, k, 0]).mean() - np.mean(TASKS[n].support)
                           for n, k in zip(summary.task, summary.model)]
summary["outside_support"] = [np.mean((q < TASKS[n].lo) | (q >= TASKS[n].hi)) for n, q in
                              ((n, TASKS[n].measure(bank[n, k, 0]))
                               for n, k in zip(summary.task, summary.model))]
print(summary.round(3).to_string(index=False))
drifting = summary[summary["drift/floor"] > 2]
print(f"\n{len(drifting)} of {len(summary)} (task, class) pairs drift by more than twice the "
      f"noise floor; the rest: {', '.join(summary[summary['drift/floor'] <= 2].task + '/' + summary[summary['drift/floor'] <= 2].model) or 'none'}")

# %% [markdown]
# Every (task, class) pair drifts beyond the noise floor, but by very different amounts, and the
# *shape* of the drift differs by task and class (see `mean_q_shift` and `outside_support`):
# on `cone` the U-Net DDPM moves mass from short paths towards long ones (the paths are too long
# too often, the paper's maze story in miniature) while under-producing the very longest; the MLP
# denoiser piles mass onto the middle of the range; the Transformer and the VAE over-produce the
# shortest paths, even below the support. On `logistic` mass piles up at a few growth rates and
# drains from others (peaks and troughs, not a shift). `sine` drifts least, about twice the floor
# for the diffusion models.
#
# ## 3. Systematic, or seed noise?
#
# A drift pattern that changes from seed to seed is noise in *which* model we happened to train,
# not a mechanism. We train `diffusion-unet` with several seeds and plot the bin-wise drift
# Δ = p_model − p_prior of each (thin lines), their mean (thick), and mark the bins that gain
# (▲) or lose (▼) mass in **every** seed by more than that seed's bootstrap half-width.

# %%
seed_rows, consistent_rows = [], []
for name, t in TASKS.items():
    bins = drift.quantity_bins(t, P)
    prior = metrics.uniform_histogram(bins)
    deltas, noise = [], []
    for seed in P.seeds:
        h = drift.histogram_with_band(t.measure(bank[name, "diffusion-unet", seed]), bins, P,
                                      name, "diffusion-unet", seed)
        deltas.append(h["p"] - prior)
        noise.append((h["hi"] - h["lo"]) / 2)
        seed_rows.append(pd.DataFrame({"task": name, "seed": str(seed), "center": bins.centers,
                                       "delta": h["p"] - prior}))
    deltas = np.array(deltas)
    mark = metrics.consistent_bins(deltas, np.array(noise))
    consistent_rows.append(pd.DataFrame({"task": name, "seed": "mean", "center": bins.centers,
                                         "delta": deltas.mean(0), "consistent": mark}))
seed_df = pd.concat(seed_rows + consistent_rows, ignore_index=True)
seed_df["consistent"] = seed_df["consistent"].fillna(0).astype(int)


def seed_chart(name: str) -> alt.LayerChart:
    d = seed_df[seed_df.task == name]
    base = alt.Chart(d).encode(x=alt.X("center:Q", title=TASKS[name].quantity))
    thin = base.transform_filter("datum.seed != 'mean'").mark_line(
        strokeWidth=1, opacity=0.6, point=True).encode(
        y=alt.Y("delta:Q", title="Δ = p_model − p_prior"), color=alt.Color("seed:N"))
    mean = base.transform_filter("datum.seed == 'mean'").mark_line(color="black", strokeWidth=2.5)\
        .encode(y="delta:Q")
    up = base.transform_filter("datum.consistent == 1").mark_point(
        shape="triangle-up", size=90, filled=True, color=plots.COLORS["kernel"]).encode(y="delta:Q")
    down = base.transform_filter("datum.consistent == -1").mark_point(
        shape="triangle-down", size=90, filled=True, color=plots.COLORS["alt1"]).encode(y="delta:Q")
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(color="gray").encode(y="y:Q")
    return alt.layer(zero, thin, mean, up, down).properties(title=name, width=220, height=170)


chart = alt.hconcat(*[seed_chart(n) for n in TASKS])
plots.save(chart, "02_seeds", data=seed_df)
chart

# %%
seed_summary = []
for name in TASKS:
    d = seed_df[(seed_df.task == name) & (seed_df.seed == "mean")]
    tvs = table[(table.task == name) & (table.model == "diffusion-unet")].tv_model_prior
    seed_summary.append({"task": name, "tv_mean": tvs.mean(), "tv_sd": tvs.std(ddof=1),
                         "bins_gain_all_seeds": int((d.consistent == 1).sum()),
                         "bins_lose_all_seeds": int((d.consistent == -1).sum()),
                         "n_bins": len(d)})
seed_summary = pd.DataFrame(seed_summary)
print(seed_summary.round(3).to_string(index=False))

# %% [markdown]
# The drift pattern survives re-training: the thin lines of different seeds follow each other,
# and the table counts the bins that gain (or lose) mass in every seed beyond its bootstrap
# noise. Those bins are the systematic part — the part a mechanism has to explain. For `cone` the
# consistent bins form one picture (short paths lose, middle-to-long paths gain); for `logistic`
# the consistent gains are isolated peaks; for `sine` only a handful of bins are consistent, most
# of them near the ends of the support (gains near f ≈ 1.2 and 3.6–3.8, which notebook 03 follows
# up).
#
# ## 4. The alternative explanations
#
# Each ablation changes one thing about `diffusion-unet` (seed 0) and re-measures the TV to the
# prior; the dashed line is the noise floor of that task.
#
# * **Under-training**: the drift at intermediate training steps (EMA snapshots of one run).
# * **Capacity**: the U-Net's base width (on the profile's `ablation_tasks`: each point is a model).
# * **Dataset size**: fewer training trajectories (same tasks).
# * **The sampler**: ancestral DDPM with all steps against deterministic DDIM with fewer.
# * **Memorisation** was measured above (`nn_ratio`).

# %%
def tv_of(name: str, X: np.ndarray) -> float:
    t = TASKS[name]
    bins = drift.quantity_bins(t, P)
    return metrics.tv(metrics.histogram(t.measure(X), bins), metrics.uniform_histogram(bins))


ablation_jobs = [partial(drift.train, name, "diffusion-unet", P, **{what: value})
                 for name in P.ablation_tasks
                 for what, values, default in [("width", P.ablation_widths, P.width),
                                               ("n_train", P.ablation_sizes, P.n_train)]
                 for value in values if value != default]
parallel.run_all(ablation_jobs)  # the width and dataset-size models, side by side
abl = []
for name in TASKS:
    main = runs[name, "diffusion-unet", 0]
    for step in sorted(set(P.ablation_steps) | {P.train_steps}):
        snap = None if step >= P.train_steps else step
        X = drift.samples(main, P.n_samples, seed=0, snapshot=snap)[0]
        abl.append({"task": name, "ablation": "training steps", "setting": step,
                    "tv": tv_of(name, X)})
    for width in P.ablation_widths if name in P.ablation_tasks else ():
        run = main if width == P.width else drift.train(name, "diffusion-unet", P, width=width)
        abl.append({"task": name, "ablation": "width", "setting": width,
                    "tv": tv_of(name, drift.samples(run, P.n_samples)[0])})
    for size in P.ablation_sizes if name in P.ablation_tasks else ():
        run = main if size == P.n_train else drift.train(name, "diffusion-unet", P, n_train=size)
        abl.append({"task": name, "ablation": "dataset size", "setting": size,
                    "tv": tv_of(name, drift.samples(run, P.n_samples)[0])})
    abl.append({"task": name, "ablation": "sampler steps", "setting": P.diffusion_steps,
                "tv": tv_of(name, bank[name, "diffusion-unet", 0]), "sampler": "ddpm"})
    for sampler, steps in P.ablation_samplers:
        X, secs = drift.samples(main, P.n_samples, seed=0, sampler=sampler, steps=steps)
        abl.append({"task": name, "ablation": "sampler steps", "setting": steps,
                    "tv": tv_of(name, X), "sampler": sampler})
abl = pd.DataFrame(abl)
abl["sampler"] = abl["sampler"].fillna("ddpm")
floors = table[(table.model == "diffusion-unet") & (table.seed == 0)][["task", "tv_noise_floor"]]
abl = abl.merge(floors, on="task")


def ablation_chart(which: str) -> alt.LayerChart:
    d = abl[abl.ablation == which]
    base = alt.Chart(d).encode(x=alt.X("setting:Q", title=which,
                                       scale=alt.Scale(type="log", nice=False)),
                               color=alt.Color("task:N"))
    lines = base.mark_line().encode(y=alt.Y("tv:Q", title="TV to prior"))
    points = base.mark_point(filled=True, size=50).encode(
        y="tv:Q", shape=alt.Shape("sampler:N", title="sampler"))
    floor = base.mark_line(strokeDash=[3, 3], strokeWidth=1).encode(y="tv_noise_floor:Q")
    return alt.layer(lines, points, floor).properties(width=170, height=150, title=which)


chart = alt.hconcat(*[ablation_chart(a) for a in ["training steps", "width", "dataset size",
                                                  "sampler steps"]])
plots.save(chart, "02_ablations", data=abl)
chart

# %%
pivot = abl.pivot_table(index=["ablation", "setting"], columns="task", values="tv")
print(pivot.round(3).to_string())

# %% [markdown]
# Which alternatives change the drift? For each ablation and task: the range of TV across its
# settings against twice the noise floor (a change smaller than that is indistinguishable from
# sampling noise), and the TV at the smallest and largest setting. An ablation that leaves
# the drift unchanged, or that reduces it only partly while the drift stays far above the floor,
# does not explain it away.

# %%
verdict = []
for (which, name), d in abl.groupby(["ablation", "task"]):
    d = d.sort_values("setting")
    floor = d.tv_noise_floor.iloc[0]
    span = d.tv.max() - d.tv.min()
    verdict.append({"ablation": which, "task": name, "tv_first": d.tv.iloc[0],
                    "tv_last": d.tv.iloc[-1], "span": span, "2x_floor": 2 * floor,
                    "changes_drift": bool(span > 2 * floor),
                    "still_above_floor": bool(d.tv.min() > 2 * floor)})
verdict = pd.DataFrame(verdict)
print(verdict.round(3).to_string(index=False))

# %% [markdown]
# Reading the verdict (default profile):
#
# * **Training steps** change the drift on `cone` and `logistic`: it shrinks as training goes on
#   and is still shrinking at the last step we can afford on a laptop, so under-training is
#   *part* of the measured drift. But at the end of training it is still several times the noise
#   floor on every task. The paper profile (longer training) is the place to see where it levels
#   off. On `sine` the change over training is within the noise.
# * **Width** and **dataset size** (on `cone`) do not change it beyond the noise: neither too
#   little capacity nor too little data explains the drift.
# * **The sampler**: deterministic DDIM with 20–50 steps drifts somewhat less than ancestral DDPM
#   on `cone` and `sine` and about as much on `logistic` (more with 10 steps), every change within
#   our (conservative) 2× noise-floor threshold. On `sine`, though,
#   DDIM brings the drift down to the noise floor: the small `sine` drift cannot be firmly
#   attributed to the model rather than to the stochastic sampler.
# * **Memorisation** is ruled out by `nn_ratio` ≈ 1 (section 1).
#
# ## The results table
#
# `figures/tables/drift.csv` has one row per (task, model, seed): sample count, TV and W1 to the
# prior, the noise floor, the plausible fraction and `nn_ratio`; the training time, which varies
# from machine to machine, goes to `figures/tables/train_cost.csv`. Notebooks 04 and 05 add their
# own rows (maze, pendulum). The checked cell below prints the results rounded.

# %%
drift.update_tables(table)

# %%
# NBVAL_CHECK_OUTPUT
print(table.drop(columns="train_seconds").round(2).to_string(index=False))
