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
# # 04 — Maze navigation: a planner trained on distance-curated demonstrations
#
# The paper's motivating example. A roboticist wants a planner whose trips cost a bounded,
# evenly spread amount of energy, so she curates demonstrations whose **travel distance** is
# uniform over a fixed range, and trains a diffusion planner on them (as in Diffuser: plans of
# positions, start and goal imposed by inpainting). Every plan she samples reaches its goal
# without crossing a wall. Yet the distances of the plans are not uniform: long paths come out
# too often. This notebook builds the maze, the demonstrations and the curated prior, trains the
# planner, measures the drift, and asks whether the data deviation kernels of notebook 03
# forecast it.
#
# **What is ours, not the paper's.** The maze is D4RL's `maze2d` layout, but the dynamics are a
# NumPy point mass that *approximates* D4RL's MuJoCo model (same time step, damping, gear,
# velocity clip and body radius; hard wall contacts instead of MuJoCo's soft ones; see
# `paper_lib/tasks/maze.py`). Nothing is downloaded. The curation rule, the planner's size and
# the kernels are this companion's choices.

# %% tags=["parameters"]
profile = "default"

# %%
from functools import partial

import altair as alt
import numpy as np
import pandas as pd

import paper_lib
from paper_lib import drift, forecast, kernels, metrics, models, parallel, plots
from paper_lib.seeding import rng
from paper_lib.tasks import maze

P = paper_lib.setup(profile)
paper_lib.check_versions()
TASK = drift.task_for("maze", P)
KIND = "diffusion-unet"
print(f"profile {P.name}: layout {TASK.layout}, T = {TASK.T} frames, one frame every "
      f"{TASK.frame_interval} steps of {maze.DT} s (horizon {TASK.horizon_steps * maze.DT:.2f} s); "
      f"curated travel distance U[{TASK.lo:g}, {TASK.hi:g}) cells")

# the planners of this notebook, one per seed and one trained on a differently curated prior
# (for the held-out forecast): those the cache lacks are trained side by side, one per core
lo_o = TASK.lo + 0.25 * (TASK.hi - TASK.lo)
planner_jobs = {s: partial(drift.standard_run, "maze", KIND, P, seed=s) for s in P.seeds}
other_job = partial(drift.train, "maze", KIND, P, task_params={"lo": lo_o, "hi": TASK.hi})
parallel.run_all([*planner_jobs.values(), other_job])

# %% [markdown]
# The default layout is `medium`: its paths branch and double back, so travel distances spread
# over a wide range (1 to 10 cells) on a horizon of 64 frames that a small U-Net trains on in
# a minute or two on one laptop core; `umaze` has too few distinct routes and `large` needs a longer
# horizon. The `smoke` profile uses `umaze` with 16 frames so CI stays fast.
#
# ## The maze, the controller and its demonstrations
#
# D4RL's waypoint controller: the shortest path over the grid of cells (BFS), PD control toward
# the next waypoint (gains 10 and −1, waypoints jittered a little), from a random start cell to a
# random goal cell. Each episode is recorded for T frames and padded with the goal after arrival.
# Its travel distance q = Σ‖p_{t+1} − p_t‖ (in cells) is the physical quantity: a proxy for the
# energy a trip costs.

# %%
pool = TASK.rollouts(P.n_train, rng(0, "maze", "pool"))
print(f"{len(pool['q'])} uncurated episodes: {pool['success'].mean():.1%} reach their goal within "
      f"the horizon, {pool['plausible'].mean():.1%} plausible (no wall crossed, no jump)")
walls = pd.DataFrame(maze.wall_cells(TASK.layout), columns=["x0", "y0", "x1", "y1"])


def maze_layer(width=260) -> alt.Chart:
    """The walls, drawn like the layout grid: column (y) to the right, row (x) downward."""
    rows, cols = maze.layout_grid(TASK.layout).shape
    return alt.Chart(walls).mark_rect(color="#444444").encode(
        x=alt.X("y0:Q", title="y (column, cells)", scale=alt.Scale(domain=[-0.5, cols - 0.5])),
        x2="y1:Q",
        y=alt.Y("x0:Q", title="x (row, cells)",
                scale=alt.Scale(domain=[-0.5, rows - 0.5], reverse=True)),
        y2="x1:Q").properties(width=width, height=width * rows / cols)


def paths_frame(X, label, q=None) -> pd.DataFrame:
    n, T, _ = X.shape
    return pd.DataFrame({"plan": np.repeat([f"{label}{i}" for i in range(n)], T),
                         "t": np.tile(np.arange(T), n), "x": X[..., 0].ravel(),
                         "y": X[..., 1].ravel(),
                         "q": np.repeat(TASK.measure(X) if q is None else q, T)})


demo = paths_frame(pool["X"][:12], "demo")
lines = alt.Chart(demo).mark_line(strokeWidth=1.5, opacity=0.85).encode(
    x="y:Q", y="x:Q", order="t:Q", detail="plan:N",
    color=alt.Color("q:Q", title="travel distance", scale=alt.Scale(scheme="viridis")))
ends = alt.Chart(demo[demo.t.isin([0, TASK.T - 1])]).mark_point(filled=True, size=30).encode(
    x="y:Q", y="x:Q", shape=alt.Shape("t:O", legend=None), color=alt.value("black"))
chart = alt.layer(maze_layer(), lines, ends).properties(
    title=f"{TASK.layout}: 12 controller demonstrations (circle: start, square: goal)")
plots.save(chart, "04_maze", data=demo)
chart

# %% [markdown]
# ## Curation: a uniform travel-distance prior
#
# Left to itself the controller's distances are skewed (random start and goal cells are mostly
# close in a maze of corridors). The engineer keeps the same number of demonstrations in each of
# ten bins of [lo, hi): rejection per bin from a pool that grows until every bin is full. The
# training set of the planner is that curated set.

# %%
run0 = planner_jobs[P.seeds[0]]()
data = run0.dataset
bins = drift.quantity_bins(TASK, P)
wide = metrics.Bins(0.0, float(np.ceil(max(pool["q"].max(), TASK.hi))), 2 * P.n_bins)
prior = pd.concat([
    pd.DataFrame({"set": "uncurated pool", "center": wide.centers[1:-1],
                  "density": metrics.histogram(pool["q"], wide)[1:-1] / wide.width}),
    pd.DataFrame({"set": "curated training set", "center": wide.centers[1:-1],
                  "density": metrics.histogram(data.q, wide)[1:-1] / wide.width})])
chart = alt.Chart(prior).mark_bar(opacity=0.6, binSpacing=0).encode(
    x=alt.X("center:Q", bin=alt.Bin(step=wide.width), title="travel distance (cells)"),
    y=alt.Y("density:Q", stack=None, title="density"),
    color=alt.Color("set:N", sort=["uncurated pool", "curated training set"])).properties(
    width=420, height=180, title="Curation flattens the travel-distance prior")
plots.save(chart, "04_prior", data=prior)
chart

# %%
# NBVAL_CHECK_OUTPUT
counts = metrics.histogram(data.q, TASK.bins)[1:-1] * len(data)
chi2 = float(((counts - counts.mean()) ** 2 / counts.mean()).sum())
print(f"curated set: {len(data)} demonstrations, per-bin counts {counts.astype(int).tolist()}, "
      f"chi2 against flat = {chi2:.2f} (df {TASK.n_bins - 1}); "
      f"q in [{data.q.min():.2f}, {data.q.max():.2f}]")

# %% [markdown]
# ## The planner
#
# A `diffusion-unet` (the temporal U-Net of notebook 02, sizes from the profile) over plans of
# (x, y) positions, T frames. Positions only, not velocities: the plan is what the question is
# about (its length), a plan of positions is what Diffuser's maze2d planner inpaints, and a
# controller can track it; adding velocities would double the channels without changing q.
# Conditioning is Diffuser's (`apply_conditioning`): the first frame is set to the start and the
# last to the goal, *clean*, at every denoising step, and the planner is trained the same way (its
# noised training plans carry their clean start and goal), so it learns plans given their ends.
# (While building this companion we first imposed the ends only at sampling time, on a U-Net
# trained without them: at this training budget its plans ignored the imposed ends and cut
# through walls.) The planner's start/goal pairs are those of training demonstrations
# drawn at random, so a perfect planner would reproduce the curated prior exactly.

# %%
runs = {s: job() for s, job in planner_jobs.items()}
idx, (keep, cond) = drift.conditions(runs[P.seeds[0]], P.n_samples)  # start and goal imposed
plans = {s: drift.samples(r, P.n_samples, seed=0, inpaint=(keep, cond)) for s, r in runs.items()}
for s, r in runs.items():
    print(f"seed {s}: trained in {r.trained.train_seconds:.0f} s, {P.n_samples} plans in "
          f"{plans[s][1]:.0f} s")

# %% [markdown]
# ### Plans look right
#
# Eight plans for each of four start/goal pairs (from new episodes, not training ones), drawn over
# the maze with the controller's demonstration for the same pair (black, dashed). A plan is
# *plausible* when it never enters or crosses a wall, never moves faster than the point mass can,
# and ends at its goal.

# %%
fresh = TASK.rollouts(64, rng(0, "maze", "fresh"))
order = np.argsort(fresh["q"])
pairs = order[np.linspace(len(order) // 4, len(order) - 1, 4).astype(int)]
_, ex_cond = TASK.conditions(fresh["X"], np.repeat(pairs, 8))   # 8 plans per pair
ex, _ = drift.samples(run0, 32, seed=1, inpaint=(keep, ex_cond))
frames = []
for k, i in enumerate(pairs):
    f = paths_frame(ex[8 * k:8 * k + 8], "plan")
    f["who"] = "planner"
    g = paths_frame(fresh["X"][i:i + 1], "demo")
    g["who"] = "controller"
    frames.append(pd.concat([f, g]).assign(pair=f"pair {k + 1}: demo q = {fresh['q'][i]:.1f}"))
ex_frame = pd.concat(frames, ignore_index=True)


def pair_chart(pair: str) -> alt.LayerChart:
    d = ex_frame[ex_frame.pair == pair]
    plan = alt.Chart(d[d.who == "planner"]).mark_line(opacity=0.7, strokeWidth=1.2).encode(
        x="y:Q", y="x:Q", order="t:Q", detail="plan:N",
        color=alt.Color("q:Q", title="plan length", scale=alt.Scale(scheme="viridis")))
    ctrl = alt.Chart(d[d.who == "controller"]).mark_line(
        color="black", strokeDash=[4, 3], strokeWidth=1.5).encode(x="y:Q", y="x:Q", order="t:Q")
    return alt.layer(maze_layer(170), plan, ctrl).properties(title=pair)


chart = alt.hconcat(*[pair_chart(p) for p in ex_frame.pair.unique()])
plots.save(chart, "04_plans", data=ex_frame)
chart

# %%
# NBVAL_CHECK_OUTPUT
plaus = pd.DataFrame([{"seed": s, "plausible": TASK.is_plausible(X, goal=cond[:, -1]).mean(),
                       "no_wall_crossed": (~maze.crosses_wall(X, TASK.layout)).mean()}
                      for s, (X, _) in plans.items()])
print(plaus.round(3).to_string(index=False))

# %% [markdown]
# ## Travel distance drifts
#
# The travel distance of every plan against the curated prior, on the curation bins (ten equal
# bins of the range: the training set is flat at that resolution, while travel distances cluster
# near whole numbers of cells inside them) plus under/overflow bins for plans outside the range
# (bars: seed 0 with 90% bootstrap bands; points: the other seeds).

# %%
q_plan = {s: TASK.measure(X) for s, (X, _) in plans.items()}
rows = []
for s, q in q_plan.items():
    h = drift.histogram_with_band(q, bins, P, "maze", s)
    rows.append(pd.DataFrame({"seed": s, "bin": bins.labels, "center": bins.centers,
                              "p": h["p"], "lo": h["lo"], "hi": h["hi"],
                              "p_data": metrics.histogram(data.q, bins)}))
hist = pd.concat(rows, ignore_index=True)
h0 = hist[hist.seed == P.seeds[0]]
base = alt.Chart(h0).encode(x=alt.X("center:Q", title="travel distance of the plan (cells)"))
chart = alt.layer(
    base.mark_bar(color=plots.COLORS["model"], opacity=0.5, width=20).encode(
        y=alt.Y("p:Q", title="probability per bin")),
    base.mark_errorbar(color=plots.COLORS["model"]).encode(
        y=alt.Y("lo:Q", title="probability per bin"), y2="hi:Q"),
    base.mark_line(color=plots.COLORS["prior"], strokeDash=[4, 3], interpolate="step")
    .encode(y="p_data:Q"),
    alt.Chart(hist[hist.seed != P.seeds[0]]).mark_point(color="black", size=15).encode(
        x="center:Q", y="p:Q"),
).properties(width=460, height=200,
             title="Plans (bars, seed 0; points: other seeds) against the curated prior (dashed)")
plots.save(chart, "04_drift", data=hist)
chart

# %% [markdown]
# Where mass moves: a bin *gains* (or *loses*) when every seed's histogram is above (below) the
# prior beyond its bootstrap band. The paired view is sharper still: each plan shares its start and
# goal with a training demonstration, so plan length minus demonstration length (`dq`) measures
# the drift pair by pair. The `_plausible` columns repeat the measurement on the plausible plans
# only: plans that look right drift too.

# %%
p_data = metrics.histogram(data.q, bins)
above = np.all([hist[hist.seed == s].lo.to_numpy() > p_data for s in P.seeds], axis=0)
below = np.all([hist[hist.seed == s].hi.to_numpy() < p_data for s in P.seeds], axis=0)
summary = []
for s, q in q_plan.items():
    dq = q - data.q[idx]
    ok = TASK.is_plausible(plans[s][0], goal=cond[:, -1])
    summary.append({"seed": s, "tv": metrics.tv(metrics.histogram(q, bins), p_data),
                    "tv_plausible_only": metrics.tv(metrics.histogram(q[ok], bins), p_data)
                    if ok.any() else np.nan,
                    "w1": metrics.w1(q, data.q), "longer_than_max": float((q >= TASK.hi).mean()),
                    "mean_dq": dq.mean(), "se_dq": dq.std(ddof=1) / np.sqrt(len(dq)),
                    "share_longer": float((dq > 0).mean()),
                    "mean_dq_plausible": dq[ok].mean() if ok.any() else np.nan})
summary = pd.DataFrame(summary)
floor = metrics.noise_floor_tv(TASK.sample_quantity, P.n_samples, bins, rng(0, "maze", "floor"))

# %%
# NBVAL_CHECK_OUTPUT
print(summary.round(3).to_string(index=False))
print(f"noise floor TV {floor:.3f}; bins gaining in every seed: "
      f"{[bins.labels[i] for i in np.flatnonzero(above)]}; losing: "
      f"{[bins.labels[i] for i in np.flatnonzero(below)]}")
print(f"curated maximum {TASK.hi:g} cells: {np.mean([(q >= TASK.hi).mean() for q in q_plan.values()]):.1%} "
      f"of plans exceed it (training set: {(data.q >= TASK.hi).mean():.1%})")

# %% [markdown]
# Where along a plan does the extra length come from? A demonstration stands still at its goal
# after arriving (the padding), so its length is all travelled before its arrival frame. Split each
# plan's length at the arrival frame of the demonstration it shares its ends with: the part after
# it is length a perfect planner would not have (seed 0, by demonstration length).

# %%
Xd, X0 = data.X[idx], plans[P.seeds[0]][0]
static = np.all(Xd == Xd[:, -1:], axis=2)                       # frames at the goal, (n, T)
arrival = TASK.T - np.argmin(static[:, ::-1], axis=1)            # first frame of the padding
seg = np.sqrt((np.diff(X0.astype(np.float64), axis=1) ** 2).sum(-1))    # (n, T − 1)
after = (seg * (np.arange(TASK.T - 1)[None] >= arrival[:, None])).sum(1)
split = pd.DataFrame({"demo_q": pd.cut(data.q[idx], np.linspace(TASK.lo, TASK.hi, 5).round(2),
                                       right=False, include_lowest=True),
                      "dq": q_plan[P.seeds[0]] - data.q[idx], "after_arrival": after,
                      "before_arrival": seg.sum(1) - after - data.q[idx]})

# %%
# NBVAL_CHECK_OUTPUT
print(split.groupby("demo_q", observed=True).agg(
    n=("dq", "size"), mean_dq=("dq", "mean"), length_after_arrival=("after_arrival", "mean"),
    extra_before_arrival=("before_arrival", "mean")).round(3).to_string())

# %% [markdown]
# The rows for `figures/tables/drift.csv` (task `maze`; TV and W1 against the exact uniform
# prior, as for the synthetic tasks).

# %%
drift_rows = pd.DataFrame([drift.drift_row(r, plans[s][0], P) for s, r in runs.items()])
drift.update_tables(drift_rows)   # results to drift.csv, training times to train_cost.csv
print(drift_rows.drop(columns="train_seconds").round(3).to_string(index=False))

# %% [markdown]
# ## Does the kernel forecast it?
#
# The five kernels of notebook 03 applied to the curated demonstrations, with the start and goal
# left untouched (the planner never generates them): each kernel's predicted distance histogram
# against the planner's (seed 0), calibrated, matched to the planner's own error scale
# (`nn_ratio`), and held out. Held out means nothing from this planner: for `white`, `smooth` and
# `neighbour`, the locality calibrated on the synthetic tasks in notebook 03; for `denoise`, a
# planner trained on a *differently curated* dataset (only the longer 75% of the range), at the
# t\* that fits its own drift.
#
# For travel distance there is a simple expectation (Jensen): zero-mean wiggles added to a path
# make it longer on average, so even `white` noise at the planner's own error scale should push
# mass upward.

# %%
X0, seconds0 = plans[P.seeds[0]]
X0_repeat = drift.samples(run0, P.n_samples, seed=1, inpaint=(keep, cond))[0]  # the ceiling
tg = forecast.make_target(run0, X0, P, keep=keep, X_repeat=X0_repeat, sample_seconds=seconds0)
makers = {f: forecast.family_maker(f, tg, X0, run0.trained)
          for f in ["white", "smooth", "spectral", "neighbour", "denoise"]}
synthetic = plots.read_table("kernel_agreement")
held = forecast.synthetic_localities(synthetic)

other = other_job()          # trained on U[lo_o, hi), lo_o = lo + 0.25 (hi - lo) (top)
o_idx = rng(0, "maze", "other-conditions").choice(len(other.dataset), P.n_samples)
_, o_cond = TASK.conditions(other.dataset.X, o_idx)
X_o = drift.samples(other, P.n_samples, seed=0, inpaint=(keep, o_cond))[0]
t_best = forecast.fit_t_star(other, X_o, P, keep=keep)
held["denoise"] = (kernels.denoise(other.trained, t_best, keep=keep),
                   f"planner trained on U[{lo_o:g}, {TASK.hi:g}), t* fitted there")
agree, sweep, shown, *_ = forecast.forecast(tg, makers, P, held)
print(f"planner nn_ratio {tg.nn_ratio:.2f} data spacings; drift to explain "
      f"TV(p_data, p_model) = {metrics.tv(tg.p_data, tg.p_model):.3f}")

# %%
# NBVAL_CHECK_OUTPUT
print(agree.drop(columns=["source", "cost_fraction"]).round(2).to_string(index=False))  # no timings

# %%
plots.update_table(agree, "kernel_agreement", ["task", "model", "kernel", "mode"])
d = []
for (family, mode), p_hat in shown.items():
    d.append(pd.DataFrame({"kernel": family, "mode": mode, "center": bins.centers,
                           "p_hat": p_hat, "p_model": tg.p_model, "p_data": tg.p_data}))
d = pd.concat(d, ignore_index=True)
base = alt.Chart().encode(x=alt.X("center:Q", title="travel distance (cells)"))
chart = alt.layer(
    base.mark_bar(color=plots.COLORS["model"], opacity=0.35, width=6).encode(
        y=alt.Y("p_model:Q", title="probability per bin", stack=None), detail="kernel:N"),
    base.mark_line(color=plots.COLORS["prior"], strokeDash=[4, 3], interpolate="step")
    .encode(y="p_data:Q", detail="kernel:N"),
    base.mark_line(strokeWidth=1.6).encode(y="p_hat:Q", color=alt.Color(
        "kernel:N", sort=list(makers))),
    data=d).properties(width=220, height=140).facet(
    column=alt.Column("mode:N", sort=["calibrated", "matched", "held-out"], title=None),
    title="Kernel forecasts (lines) against the planner (bars) and the curated prior (dashed)")
plots.save(chart, "04_forecast", data=d)
chart

# %% [markdown]
# Locality decides what a forecast means (notebook 03): EDF against locality for each kernel,
# the grey band marking localities up to 1.5× the planner's own `nn_ratio`.

# %%
chart = plots.edf_locality(sweep, tg.nn_ratio, "maze: EDF against locality", 360, 200,
                           sort=list(makers))
plots.save(chart, "04_edf_locality", data=sweep.drop(columns="predict_seconds"))  # no timings
chart

# %% [markdown]
# The verdict, with the target of notebook 03 (TV(p̂, p_model) ≤ 0.10 and EDF ≥ 0.5 with a
# kernel no less local than 1.5× `nn_ratio`), and the Jensen check: the mean distance change the
# matched `white` kernel predicts against the planner's mean change.

# %%
local = agree[agree.locality <= 1.5 * tg.nn_ratio]
verdict = []
for modes, label in [(["calibrated", "matched", "held-out"], "any mode"), (["held-out"], "held-out")]:
    dd = local[local["mode"].isin(modes)]
    if dd.empty:
        verdict.append({"modes": label})
        continue
    b = dd.loc[dd.edf.idxmax()]
    verdict.append({"modes": label, "kernel": b.kernel, "mode": b["mode"],
                    "locality": b.locality, "edf": b.edf, "tv_pred_model": b.tv_pred_model,
                    "meets_target": bool(b.tv_pred_model <= 0.10 and b.edf >= 0.5)})
w = agree[(agree.kernel == "white") & (agree["mode"] == "matched")].iloc[0]
Xw = makers["white"](w.scale).sample(tg.data.X, rng(0, "maze", "jensen"))
dq_white = TASK.measure(Xw) - TASK.measure(tg.data.X)
dq_model = q_plan[P.seeds[0]] - data.q[idx]

ab = models.alpha_bar(run0.trained)
dn = agree[agree.kernel == "denoise"]

# %%
# NBVAL_CHECK_OUTPUT
print(pd.DataFrame(verdict).round(3).to_string(index=False))
print("denoise rows: t* and the fraction of signal power kept there, ᾱ(t*):",
      [(r["mode"], int(r.scale), round(float(ab[int(r.scale)]), 3)) for _, r in dn.iterrows()])
print(f"Jensen: matched white noise (locality {w.locality:.2f}) lengthens paths by "
      f"{dq_white.mean():+.3f} ± {dq_white.std(ddof=1) / np.sqrt(len(dq_white)):.3f} cells; "
      f"the planner by {dq_model.mean():+.3f} ± {dq_model.std(ddof=1) / np.sqrt(len(dq_model)):.3f}")

# %% [markdown]
# ### Before training
#
# Notebook 03 also forecasts this planner's drift *before training*, with no model of this task:
# the patch-mosaic surrogate of the U-Net (its two parameters chosen on the four other tasks)
# and a pilot planner at a tenth of the training steps and half the width. Each row carries the
# planner's `edf_ceiling` (the EDF a second sample bank of the same model scores) and the
# forecast's `cost_fraction` (its seconds over those of training and sampling the planner).

# %%
bt = plots.read_table("kernel_agreement")
bt = bt[(bt.task == TASK.name) & (bt["mode"] == "before-training")]
print(bt[["model", "kernel", "source", "rho", "edf", "edf_ceiling", "cost_fraction"]]
      .round(3).to_string(index=False))

# %% [markdown]
# ### What this says (default profile: `medium`, 3 seeds, 1,200 training steps)
#
# * **Plans look right, mostly.** About three quarters to four fifths of plans are plausible (no
#   wall entered or crossed, no jump faster than the point mass, end at the goal); most of the
#   others touch or cross a wall (`no_wall_crossed` is within 1–5 points of `plausible`). The drift
#   below is the same on the plausible plans alone (`tv_plausible_only`), so it is not carried by
#   the broken ones.
# * **The distance histogram drifts far beyond noise**: TV ≈ 0.3 to the curated prior against a
#   noise floor of ≈ 0.04, in every seed. Short trips (under ~2.8 cells) almost vanish and the
#   middle of the range (4.6–8.2 cells) gains in every seed. Plans are longer than the
#   demonstration with the same start and goal in 55–85% of pairs (mean +0.3 to +1.2 cells,
#   depending on the seed). Almost no plan exceeds the curated maximum (≈ 1%): here "too long
#   too often" means short trips planned as medium ones, not plans beyond the range.
# * **Why, from the split at the arrival frame:** every plan keeps moving after the moment its
#   demonstration has arrived and stands still — 1–2 cells of extra length, most for short trips,
#   where the standing-still part is longest — while the moving part is *shorter* than the
#   demonstration (corners cut, more so for long trips). Zero-mean jitter around a point adds
#   length (Jensen); smoothing a path with corners removes it. The two push the short end up and
#   the long end down.
# * **The kernel:** the planner's own denoiser at t\* = 3 (ᾱ ≈ 1: the plan is barely noised; its
#   displacement equals the planner's own `nn_ratio`) forecasts the drift almost entirely (EDF ≈
#   0.9, TV(p̂, p_model) ≈ 0.02): the target is met by a *local* kernel, as for the logistic map in
#   notebook 03. Because the planner's plans are nearly determined by their ends, even t\* = 60
#   stays local here (locality ≈ 3). Data-only kernels explain at most ≈ 25% (calibrated), and
#   white noise at the planner's own scale overshoots the lengthening ~40-fold: the planner's
#   errors are smooth, not white, so the Jensen argument gives the direction for short trips but
#   not the size.
# * **Held-out forecasts fail** again (EDF ≤ 0.13): data-only localities carried over from the
#   synthetic tasks, and the denoiser of a planner trained on the longer 75% of the range, do not
#   forecast this planner's drift. Forecasting *before training* is not supported here; explaining
#   the drift by the trained planner's local error is.
