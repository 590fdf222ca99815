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
# # 01 — Three synthetic tasks and their physical measurements
#
# *Companion to "Mechanisms of Misgeneralization in Physical Sequence Modeling" (Nishi, Tang,
# Kumar, Park, Tanaka, arXiv 2605.20299, 2026).*
#
# The paper's claim is about a **physical quantity** q that an engineer cares about (how far a
# robot travels, how much energy a motion carries, which parameter a dynamical system has). The
# engineer curates demonstrations so that q follows an intended prior, trains a generative model on
# the trajectories alone, and then measures q on what the model generates. To study that, each task
# here has three parts:
#
# 1. a [**prior**](../docs/glossary.md#prior) p(q) — here always uniform on a support [lo, hi];
# 2. a **generation rule** x = g(q, ξ) that turns a value of q (and nuisance randomness ξ such as a
#    phase) into a trajectory x of shape (T, C);
# 3. a [**measurement**](../docs/glossary.md#quantity-and-measurement) m(x) that recovers q from
#    the trajectory alone.
#
# The measurement must be *exact on clean data*: m(g(q, ξ)) = q. Otherwise a drift seen later
# could be an artefact of the ruler rather than of the model. This notebook shows the three
# synthetic tasks of the paper and proves, with numbers, that each ruler is exact.
#
# The paper names the tasks (sine, cone, logistic map) but not their exact rules; the rules below
# are this companion's own choices (see `docs/design.md` and `docs/paper.md`).

# %% [markdown]
# ## You will learn
#
# * what a task is made of: a prior over a physical quantity q, a rule that generates a
#   trajectory with a given q, and a measurement that reads q back from the trajectory alone;
# * the three synthetic tasks (`sine`, `cone`, `logistic`) and why each measurement is the
#   physical one rather than a convenient shortcut;
# * how every histogram of q in the companion is built: fixed bins with an underflow and an
#   overflow bin, and bootstrap bands;
# * why a measurement must be exact on clean data, and how to prove it with numbers.
#
# Terms are defined in the [glossary](../docs/glossary.md).

# %% tags=["parameters"]
profile = "default"

# %%
import altair as alt
import numpy as np
import pandas as pd

import paper_lib
from paper_lib import metrics, plots
from paper_lib.seeding import rng

P = paper_lib.setup(profile)
paper_lib.check_versions()
print(f"profile {P.name}: {P.n_train} trajectories per task, {P.n_bins} bins, "
      f"{P.n_boot} bootstrap resamples")

# %% [markdown]
# ## The tasks
#
# | task | quantity q | prior | trajectory | measurement m(x) |
# |---|---|---|---|---|
# | `sine` (smooth) | frequency f, cycles per window | U[1, 4] | x_t = sin(2π f t/T + φ), φ ~ U[0, 2π) | least-squares sinusoid fit |
# | `cone` (geometric) | travel distance | U[2, 6] | a planar spiral whose radius grows linearly in time: a cone in (x, y, t) | Σ‖p_{t+1} − p_t‖ |
# | `logistic` (chaotic) | growth rate r | U[3, 4] | x_{t+1} = r x_t (1 − x_t) after a burn-in | least-squares r̂ |
#
# Why these measurements are the *physical* ones:
#
# * **Frequency** is what a spectrum analyser reports for a tone; we fit a sinusoid by least
#   squares over a fine grid of frequencies (with a parabolic refinement of the best one). The
#   tempting shortcut, the peak of an FFT, is biased on a 64-sample window whenever f is not an
#   integer (the energy leaks into neighbouring bins), so it would report drift that is not there.
# * **Travel distance** is the arc length of the path: what an odometer integrates, and what
#   bounds a robot's energy use. It is a sum of norms, so it is *convex* in the positions — which
#   will matter a lot in notebooks 03 and 04.
# * **The growth rate** of a logistic map is what a population ecologist fits to a time series:
#   regress x_{t+1} on u_t = x_t(1 − x_t) through the origin, r̂ = Σ x_{t+1} u_t / Σ u_t².

# %%
TASKS = {name: paper_lib.get_task(name) for name in paper_lib.tasks.SYNTHETIC}
data = {name: paper_lib.make_dataset(name, P.n_train, seed=0) for name in TASKS}
for name, d in data.items():
    t = TASKS[name]
    print(f"{name:9s} X {d.X.shape} {d.X.dtype}  q = {t.quantity} on {t.support}")

# %% [markdown]
# ## Example trajectories
#
# A few trajectories per task, coloured by their value of q. For `sine` a higher frequency packs
# more cycles into the window; for `cone` a longer travel distance means a wider spiral (the shape
# is fixed, only the scale c = q / L(1) changes); for `logistic` small r settles into a period-2
# cycle while large r is chaotic.

# %%
def example_frame(name: str, n: int) -> pd.DataFrame:
    """Tidy rows (task, trajectory, t, x, y, q) for n examples spread over the support."""
    t = TASKS[name]
    q = np.linspace(t.lo, t.hi, n + 2)[1:-1]
    X = t.generate(q, rng(0, "examples", name))
    rows = []
    for i in range(n):
        y = X[i, :, 1] if t.C > 1 else np.full(t.T, np.nan)
        rows.append(pd.DataFrame({"task": name, "trajectory": i, "t": np.arange(t.T),
                                  "x": X[i, :, 0], "y": y, "q": round(float(q[i]), 2)}))
    return pd.concat(rows, ignore_index=True)


# three orbits over the first 32 steps keep the logistic panel readable
examples = pd.concat([example_frame(n, 3 if n == "logistic" else P.n_examples) for n in TASKS],
                     ignore_index=True)
examples = examples[(examples.task != "logistic") | (examples.t < 32)]


def example_chart(name: str) -> alt.Chart:
    t = TASKS[name]
    base = alt.Chart(examples[examples.task == name]).properties(
        title=f"{name}: q = {t.quantity}", width=230, height=200)
    colour = alt.Color("q:O", scale=alt.Scale(scheme="viridis"), title="q")
    if name == "cone":
        return base.mark_line(strokeWidth=1.5).encode(
            x=alt.X("x:Q", title="x"), y=alt.Y("y:Q", title="y"), order="t:Q", color=colour,
            detail="trajectory:N")
    mark = base.mark_line(strokeWidth=1.2, point=alt.OverlayMarkDef(size=10)) \
        if name == "logistic" else base.mark_line(strokeWidth=1.5)
    return mark.encode(x=alt.X("t:Q", title="time step t"), y=alt.Y("x:Q", title="x_t"),
                       color=colour, detail="trajectory:N")


chart = alt.hconcat(*[example_chart(n) for n in TASKS]).resolve_scale(color="independent")
plots.save(chart, "01_examples", data=examples)
chart

# %% [markdown]
# The logistic map deserves one more picture: the values an orbit visits, against r (the
# classic bifurcation diagram, drawn from our training set). Period 2 below r ≈ 3.45, period
# doubling up to r ≈ 3.57, then chaos interrupted by periodic windows (the widest near r ≈ 3.83).
# A measurement of r from a chaotic orbit sees a very different signal from one on a period-2
# cycle, which is why this task is the "chaotic" test bed.

# %%
d = data["logistic"]
keep = np.argsort(d.q)[:: max(1, len(d.q) // 400)]
orbit = pd.DataFrame({"r": np.repeat(d.q[keep], 16), "x": d.X[keep, -16:, 0].ravel()})
chart = alt.Chart(orbit).mark_circle(size=3, opacity=0.35, color=plots.COLORS["model"]).encode(
    x=alt.X("r:Q", scale=alt.Scale(domain=[3, 4]), title="growth rate r"),
    y=alt.Y("x:Q", title="orbit values x_t (last 16 steps)"),
).properties(width=520, height=220, title="logistic: where the orbit lives, per r")
plots.save(chart, "01_logistic_orbits", data=orbit)
chart

# %% [markdown]
# ## The prior
#
# Every dataset is drawn with q uniform on the support. Histograms in this companion always use
# the same fixed [bins](../docs/glossary.md#bins): `n_bins` equal bins over the support **plus an
# underflow and an overflow bin**, so that mass a model pushes outside the support is counted
# rather than silently dropped. Error bars are 90%
# [bootstrap bands](../docs/glossary.md#bootstrap-band) (multinomial resampling of the
# histogram); the grey line is the intended uniform density.

# %%
def prior_frame(name: str) -> pd.DataFrame:
    t, d = TASKS[name], data[name]
    bins = metrics.Bins(t.lo, t.hi, P.n_bins)
    p, lo, hi = metrics.bootstrap_histogram(d.q, bins, P.n_boot, rng(0, "boot", name))
    prior = np.r_[0.0, np.full(bins.n, 1 / bins.n), 0.0]
    return pd.DataFrame({"task": name, "bin": bins.labels, "center": bins.centers, "p": p,
                         "lo": lo, "hi": hi, "prior": prior})


prior_df = pd.concat([prior_frame(n) for n in TASKS], ignore_index=True)


def prior_chart(name: str) -> alt.LayerChart:
    t = TASKS[name]
    base = alt.Chart(prior_df[prior_df.task == name]).encode(
        x=alt.X("center:Q", title=f"{t.quantity}"))
    bars = base.mark_bar(opacity=0.6, color=plots.COLORS["data"], width=6).encode(
        y=alt.Y("p:Q", title="probability per bin"))
    band = base.mark_rule(color=plots.COLORS["model"]).encode(y="lo:Q", y2="hi:Q")
    prior = base.mark_line(color=plots.COLORS["prior"], strokeDash=[4, 3], interpolate="step")\
        .encode(y="prior:Q")
    return alt.layer(bars, band, prior).properties(title=f"{name}: prior over q", width=230,
                                                   height=180)


chart = alt.hconcat(*[prior_chart(n) for n in TASKS])
plots.save(chart, "01_prior", data=prior_df)
chart

# %% [markdown]
# ## The measurement is exact on clean data
#
# We draw fresh trajectories with known q, measure them, and compare. The bounds asserted here
# are also unit tests (`tests/test_tasks.py`): the sine fit must recover f to within 0.5% of the
# support width, the cone and logistic measurements to within 10⁻⁶ relative (the data are
# float32, so this is as exact as the storage allows).

# %%
BOUNDS = {"sine": ("abs / support width", 0.005), "cone": ("relative", 1e-6),
          "logistic": ("relative", 1e-6)}
rec_rows, scatter = [], []
for name, t in TASKS.items():
    g = rng(1, "recovery", name)
    q = t.sample_quantity(P.n_recovery, g)
    q_hat = t.measure(t.generate(q, g))
    kind, bound = BOUNDS[name]
    err = np.abs(q_hat - q) / ((t.hi - t.lo) if kind.startswith("abs") else np.abs(q))
    rec_rows.append({"task": name, "n": len(q), "error": kind, "max_error": err.max(),
                     "bound": bound, "exact": bool(err.max() < bound)})
    shown = slice(0, 400)  # a subset keeps the figure files small
    scatter.append(pd.DataFrame({"task": name, "q_true": q[shown], "q_measured": q_hat[shown],
                                 "error": (q_hat - q)[shown]}))
recovery = pd.DataFrame(rec_rows)
scatter = pd.concat(scatter, ignore_index=True)
assert recovery.exact.all(), recovery

# %% [markdown]
# The checked summary (compared by nbval between runs): every measurement meets its bound.

# %%
# NBVAL_CHECK_OUTPUT
print(recovery.assign(max_error=recovery.max_error.map(lambda v: f"{v:.0e}"))
      .to_string(index=False))

# %%
def recovery_chart(name: str) -> alt.Chart:
    t = TASKS[name]
    return alt.Chart(scatter[scatter.task == name]).mark_circle(size=6, opacity=0.5).encode(
        x=alt.X("q_true:Q", title=f"true {t.quantity}", scale=alt.Scale(zero=False)),
        y=alt.Y("error:Q", title="measured − true", axis=alt.Axis(format=".0e")),
        color=alt.value(plots.COLORS["model"]),
    ).properties(title=f"{name}: measurement error", width=230, height=180)


chart = alt.hconcat(*[recovery_chart(n) for n in TASKS])
plots.save(chart, "01_recovery", data=scatter)
chart

# %% [markdown]
# The errors are tiny and structureless for `cone` and `logistic` (float32 round-off). For `sine`
# the error is set by the fit's frequency grid (step 0.01 cycles, refined by a parabola) and is
# far below the histogram bin width used later ((4 − 1)/20 = 0.15 at the default profile).
#
# ## What comes next
#
# Notebook 02 trains generative models on these datasets and measures q on their samples with
# exactly these rulers. Because the rulers are exact, any difference between the histogram of
# m(samples) and the prior above is a property of the model — the
# [**drift**](../docs/glossary.md#drift) the paper explains.

# %% [markdown]
# ## What to remember
#
# * A task is a prior, a generation rule and a measurement; a model sees only the trajectories,
#   never q, and q is read back from what it generates with the same measurement.
# * A measurement must be exact on clean data, checked with numbers, so that a drift seen later
#   belongs to the model and not to the ruler.
# * The physical measurement is not always the obvious one: the peak of an FFT is a biased
#   frequency meter on a short window, a least-squares sinusoid fit is not (exercise 1).
# * Travel distance is a sum of norms, a convex function of the positions: small zero-mean errors
#   make paths longer on average, short paths most (exercise 2). Other measurements respond to
#   the same errors differently depending on where the trajectory lives (exercise 3).
# * Every histogram of q uses fixed bins with an underflow and an overflow bin, so mass that
#   leaves the support is counted, and carries a bootstrap band.
#
# ## Exercises
#
# Each exercise takes a few minutes on any profile; its worked solution (the cells tagged
# `solution`) uses a fixed, small number of trajectories and fixed seeds, whatever the profile.

# %% [markdown]
# ### Exercise 1 — An FFT is not a frequency meter
#
# Replace the sine measurement by the peak of `np.fft.rfft`, once on the 64 samples as they are
# and once zero-padded to 1024 points (`n=1024`); the peak's index k is k·T/n cycles per window.
# Plot the error of each against the true f over the support, next to the least-squares fit
# used here. Where is each biased, and why is the unpadded peak worst for half-integer f?
#
# Predict first: how large can the unpadded error get, and does zero padding make the peak
# exact, or does a bias remain — and if so, where in the support is it largest?

# %% tags=["solution"] jupyter={"source_hidden": true}
ex_sine = TASKS["sine"]
ex_f = np.repeat(np.linspace(ex_sine.lo, ex_sine.hi, 301), 16)   # 16 random phases per f
ex_X = ex_sine.generate(ex_f, rng(0, "exercise", "fft"))
ex_err = {f"FFT peak, n={n}": np.abs(np.fft.rfft(ex_X[..., 0], n=n, axis=1)).argmax(1)
          * ex_sine.T / n - ex_f for n in (ex_sine.T, 1024)}
ex_err["least-squares fit"] = ex_sine.measure(ex_X) - ex_f
ex_fft = pd.DataFrame({"f": ex_f, **{k: np.abs(v) for k, v in ex_err.items()}})
ex_off = np.abs(ex_f - np.round(ex_f))      # distance to the nearest whole number of cycles
ex_fft["where"] = np.select([ex_off < 0.1, ex_off > 0.4], ["near integer f", "near half-integer f"],
                            "in between")
print("mean |error| (cycles per window):")
print(ex_fft.groupby("where")[list(ex_err)].mean().round(4).to_string())
ex_fft["f range"] = pd.cut(ex_fft.f, np.arange(ex_sine.lo, ex_sine.hi + 1), include_lowest=True)
print("\nlargest |error| (cycles per window):")
print(ex_fft.groupby("f range", observed=True)[list(ex_err)].max().round(4).to_string())
ex_curve = ex_fft.groupby("f")[list(ex_err)].mean().reset_index().melt(
    id_vars="f", var_name="measurement", value_name="mean |error|")
alt.Chart(ex_curve).mark_line().encode(
    x=alt.X("f:Q", title="true frequency f"), y=alt.Y("mean |error|:Q"),
    color=alt.Color("measurement:N"),
).properties(width=520, height=200, title="sine: error of three frequency meters")

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# The FFT of 64 samples only has bins at whole numbers of cycles per window, so its peak snaps to
# the nearest integer: the error grows linearly away from each integer and is largest exactly
# halfway between two bins, at half-integer f (the "picket fence"). Zero padding evaluates the
# same spectrum on a 16 times finer grid, which shrinks that rounding error, but it adds no
# information: the peak is still biased. A real sinusoid is a tone at +f plus its mirror at −f,
# and the mirror's leakage through the 64-sample window tilts the peak by an amount that depends on
# the phase; the mirror is closest at low f, so the largest errors sit at the bottom of the
# support (the second table). The least-squares fit models the sinusoid as a whole (sine, cosine
# and offset), mirror included, and its error stays at the fit's own grid resolution.

# %% [markdown]
# ### Exercise 2 — Noise makes paths longer
#
# The cone's travel distance is linear in the scale c. Add white noise of standard deviation
# σ = 0.02 to every position of clean cone paths and measure again. Does the mean distance go up
# or down, and by roughly how much? Is the change the same for short and long paths? (Hint: each
# step's length is a norm, a convex function; for a step of length d much longer than σ, the
# noisy step is on average about √(d² + 2σ²) long: only the noise across the step counts, and the
# difference of two noisy positions has variance 2σ² per axis.) This is the mechanism in one line.
#
# Predict first: the sign of the change, whether the hint's formula over- or underestimates it
# here (compare the steps' length with σ), and which paths gain more, short or long.

# %% tags=["solution"] jupyter={"source_hidden": true}
from scipy import stats

ex_cone, ex_sigma = TASKS["cone"], 0.02
ex_g = rng(0, "exercise", "cone")
ex_q = ex_cone.sample_quantity(500, ex_g)
ex_clean = ex_cone.generate(ex_q, ex_g).astype(np.float64)
ex_noisy = ex_clean + ex_sigma * ex_g.standard_normal(ex_clean.shape)
ex_gain = ex_cone.measure(ex_noisy) - ex_cone.measure(ex_clean)
ex_d = np.sqrt((np.diff(ex_clean, axis=1) ** 2).sum(-1))        # clean step lengths (n, T − 1)
ex_s = ex_sigma * np.sqrt(2)                                     # std of a step's noise per axis
ex_rice = stats.rice.mean(ex_d / ex_s, scale=ex_s).sum(1) - ex_d.sum(1)   # exact expectation
ex_hint = np.sqrt(ex_d ** 2 + 2 * ex_sigma ** 2).sum(1) - ex_d.sum(1)      # the hint, d >> σ
ex_third = pd.qcut(ex_q, 3, labels=["short third", "middle third", "long third"])
ex_cone_df = pd.DataFrame({"paths": ex_third, "mean step d": ex_d.mean(1),
                           "gain (noisy − clean)": ex_gain, "exact expectation": ex_rice,
                           "hint √(d² + 2σ²)": ex_hint})
print(ex_cone_df.groupby("paths", observed=True).mean().round(3).to_string())
ex_bin = (ex_cone.hi - ex_cone.lo) / P.n_bins
print(f"\nall paths: mean distance {ex_cone.measure(ex_clean).mean():.3f} -> "
      f"{ex_cone.measure(ex_noisy).mean():.3f}, a gain of {ex_gain.mean():.3f} "
      f"({ex_gain.mean() / ex_bin:.1f} bins of this profile); every path longer: "
      f"{bool((ex_gain > 0).all())}; σ = {ex_sigma}, mean step {ex_d.mean():.3f}")

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# The distance goes up, for every path: a norm is convex, so by Jensen's inequality zero-mean
# noise lengthens a step on average, and the gains add up over the whole path. The hint's
# small-noise formula underestimates the gain because these steps are not much longer than the
# noise (compare the mean step with σ in the output); the exact expectation (the mean of a Rice
# distribution, a noisy step's length) matches the measured gain. Short paths have short steps,
# on which the same noise weighs more, so they gain more: the histogram of q does not just shift
# up, its lowest bins empty fastest. That is the `cone` drift of notebook 02 in miniature: local,
# zero-mean errors pushed through a convex measurement become a systematic drift.

# %% [markdown]
# ### Exercise 3 — Where the orbit lives sets the error
#
# For the logistic map, add the same small noise (σ = 0.02) to x_t and re-estimate r. Is the
# error the same for r = 3.2 (period 2) and r = 3.9 (chaos)? Look at Σ u_t² in each case.
#
# Predict first: which r is measured worse, and is the error only a spread around the true r or
# also a bias (in which direction)?

# %% tags=["solution"] jupyter={"source_hidden": true}
ex_log, ex_sigma = TASKS["logistic"], 0.02
ex_g = rng(0, "exercise", "logistic")
ex_rows = []
for ex_r in (3.2, 3.9):
    ex_orbit = ex_log.generate(np.full(500, ex_r), ex_g).astype(np.float64)
    ex_r_hat = ex_log.measure(ex_orbit + ex_sigma * ex_g.standard_normal(ex_orbit.shape))
    ex_x = ex_orbit[:, :-1, 0]
    ex_u = ex_x * (1 - ex_x)
    ex_rows.append({"r": ex_r, "bias": (ex_r_hat - ex_r).mean(), "spread (sd)": ex_r_hat.std(),
                    "rms error": np.sqrt(((ex_r_hat - ex_r) ** 2).mean()),
                    "mean Σ u_t²": (ex_u ** 2).sum(1).mean(),
                    "mean |du/dx| = |1 − 2x|": np.abs(1 - 2 * ex_x).mean()})
ex_log_df = pd.DataFrame(ex_rows)
print(ex_log_df.round(4).to_string(index=False))
print(f"\nrms error at r = 3.9 over r = 3.2: "
      f"{ex_log_df['rms error'].iloc[1] / ex_log_df['rms error'].iloc[0]:.2f}; "
      f"√(Σu² at 3.2 / Σu² at 3.9) = "
      f"{np.sqrt(ex_log_df['mean Σ u_t²'].iloc[0] / ex_log_df['mean Σ u_t²'].iloc[1]):.2f}")

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# r̂ is the slope of a regression of x_{t+1} on u_t through the origin, so its spread scales like
# σ / √(Σ u_t²): the more "lever" the orbit offers, the better r is pinned down. The period-2
# orbit sits where u = x(1 − x) is large, while the chaotic orbit also visits x near 0 and 1,
# where u is small, so Σ u_t² is smaller and the spread larger. The chaotic orbit is also biased
# low: noise in x enters the regressor u through du/dx = 1 − 2x, which is large near 0 and 1, and
# noise in a regressor flattens a fitted slope. The same small error moves r̂ by different amounts
# depending on where the orbit lives, and the orbit changes character with r (notebook 01's orbit
# diagram): that is how local errors can pile mass onto some growth rates and drain it from others
# in notebook 02.
