"""The result numbers the README quotes are the committed tables' numbers (issue 13, §5: prose
that cannot go stale). Each claim is a sentence of the README with ``{}`` where a number stands,
and the values the tables give for those places; a number passes when it is the table's value
rounded to the digits the README shows (a value half-way between two roundings passes either).
A regenerated table that moves a quoted number past its printed precision fails here, naming
the sentence and the value to write."""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import spearmanr

from paper_lib import driftcheck, forecast

ROOT = Path(__file__).resolve().parents[1]
NUMBER = r"([−-]?\d[\d,]*(?:\.\d+)?%?)"


@cache
def csv(path: str) -> pd.DataFrame:
    """A committed CSV, ``path`` relative to the repository."""
    return pd.read_csv(ROOT / path)


def table(name: str) -> pd.DataFrame:
    """The result table ``figures/tables/NAME.csv``."""
    return csv(f"figures/tables/{name}.csv")


def ref(task: str, col: str) -> float:
    t = table("reference_ddpm")
    return float(t.loc[t.task == task, col].iloc[0])


def plaus(task: str, steps: int, col: str = "plausible_frac", training: str = "own run") -> float:
    t = table("plausibility")
    row = t[(t.task == task) & (t.steps == steps) & (t.training == training)]
    assert len(row) == 1, (task, steps, training)
    return float(row[col].iloc[0])


def before(task: str, kernel: str, col: str, model: str = "diffusion-unet") -> float:
    t = table("kernel_agreement")
    row = t[(t.task == task) & (t.model == model) & (t.kernel == kernel)
            & (t["mode"] == "before-training")]
    assert len(row) == 1, (task, model, kernel)
    row = row.iloc[0]
    return float(row.edf / row.edf_ceiling if col == "edf/ceiling" else row[col])


def meets_goal(kernel: str) -> int:
    """Tasks on which the U-Net's before-training forecast ``kernel`` meets the accuracy goal
    (``forecast.meets_goal``)."""
    t = table("kernel_agreement")
    t = t[(t.model == "diffusion-unet") & (t.kernel == kernel) & (t["mode"] == "before-training")]
    return int(forecast.meets_goal(t.rho, t.edf, t.edf_ceiling).sum())


def cost_range(kernel: str, model: str = "diffusion-unet") -> tuple[float, float]:
    t = table("kernel_agreement")
    c = t[(t.model == model) & (t.kernel == kernel) & (t["mode"] == "before-training")]
    return float(c.cost_fraction.min()), float(c.cost_fraction.max())


def mitig(task: str, method: str, col: str = "tv_model_prior") -> float:
    t = table("mitigation")
    row = t[(t.task == task) & (t.method == method)]
    assert len(row) == 1, (task, method)
    return float(row[col].iloc[0])


def representations() -> pd.DataFrame:
    """Notebook 06's candidates: the forecasts before training beside the trained TV."""
    m = table("mitigation")
    m = m[m.method.str.startswith("represent-")].assign(
        representation=lambda d: d.method.str.removeprefix("represent-"))
    f = csv("figures/06_representation_forecast.csv")
    out = f.merge(m[["task", "representation", "tv_model_prior"]], on=["task", "representation"])
    assert len(out) == len(f) == len(m), "forecast and trained candidates differ"
    return out


def ranking(col: str) -> tuple[float, int]:
    """Spearman of forecast ``col`` against the trained TVs over every candidate, and on how
    many tasks its least-drift candidate is the trained best."""
    r = representations()
    best = sum(g.loc[g[col].idxmin(), "representation"]
               == g.loc[g.tv_model_prior.idxmin(), "representation"] for _, g in r.groupby("task"))
    return float(spearmanr(r[col], r.tv_model_prior).statistic), int(best)


def unet_seeds(task: str) -> pd.Series:
    t = table("drift")
    return t[(t.task == task) & (t.model == "diffusion-unet")].set_index("seed").tv_model_prior


def data_only_speedup() -> pd.Series:
    """Train + sample seconds over a data-only kernel's prediction seconds, every row."""
    t = table("kernel_cost")
    return t[t.kernel.isin(driftcheck.DATA_KERNELS)].speedup


def pilot_check(kernel: str) -> pd.DataFrame:
    """bench/driftcheck_pilot.csv's rows of ``kernel``, indexed by task in the README's order."""
    t = csv("bench/driftcheck_pilot.csv").set_index("task")
    return t[t.kernel == kernel].loc[["sine", "cone", "logistic", "maze", "pendulum"]]


def pilot_size_on_cone_only() -> list[float]:
    """EDF and ceiling of the drift check's pilot (the U-Nets' units) on ``cone``, the one task
    where it meets the accuracy goal."""
    t = pilot_check("pilot-task-units")
    assert list(t.index[t.meets_goal]) == ["cone"], list(t.index[t.meets_goal])
    return [t.edf["cone"], t.edf_ceiling["cone"]]


def pilot_row(kernel: str) -> list[float]:
    """The README's row of the drift check's kernel: ρ and EDF per task, seconds and cost."""
    t = pilot_check(kernel)
    return [*t.rho, *t.edf, t.seconds.min(), t.seconds.max(), t.cost.min(), t.cost.max()]


# (README sentence with {} for each number, the values from the tables)
CLAIMS = [
    ("its drift vector correlates with ours at ρ {} on `cone` and {} on `logistic` (90% "
     "intervals {}–{} and {}–{}; two seeds of ours: {} and {}), with a somewhat smaller TV ({} "
     "and {} against {} and {}; noise ≈ 0.05). On `logistic` {} of its samples are plausible",
     lambda: [ref("cone", "rho"), ref("logistic", "rho"), ref("cone", "rho_lo"),
              ref("cone", "rho_hi"), ref("logistic", "rho_lo"), ref("logistic", "rho_hi"),
              ref("cone", "rho_seed"), ref("logistic", "rho_seed"), ref("cone", "tv_ref"),
              ref("logistic", "tv_ref"), ref("cone", "tv_unet"), ref("logistic", "tv_unet"),
              ref("logistic", "plausible_ref")]),
    ("at the default 1,200 steps the U-Net's `logistic` orbits pass the task's check {} of the "
     "time. Trained longer on its own schedule (only that task needs it), {} pass at 2,400 steps "
     "and {} at 4,800, and the drift does not go: TV to the prior {} for all samples and {} for "
     "the plausible ones alone",
     lambda: [plaus("logistic", 1200), plaus("logistic", 2400), plaus("logistic", 4800),
              plaus("logistic", 4800, "tv_model_prior"),
              plaus("logistic", 4800, "tv_plausible_only")]),
    ("it meets the accuracy goal (ρ ≥ 0.7, EDF ≥ 0.5 × ceiling) on `logistic` only, {} of 5 "
     "tasks (sampled: ρ {}, EDF / ceiling {}; as a kernel at t* = {}: ρ {}, {})",
     lambda: [max(meets_goal("mosaic"), meets_goal("mosaic-denoise")),
              before("logistic", "mosaic", "rho"),
              before("logistic", "mosaic", "edf/ceiling"),
              before("logistic", "mosaic-denoise", "scale"),
              before("logistic", "mosaic-denoise", "rho"),
              before("logistic", "mosaic-denoise", "edf/ceiling")]),
    ("Their cost fractions (counted in FLOPs, so the same on every machine) are {}–{} "
     "sampled (above a tenth on the cone, the maze and the pendulum) and {}–{} as a kernel",
     lambda: [*cost_range("mosaic"), *cost_range("mosaic-denoise")]),
    ("It meets the goal on `cone` (ρ {}, EDF / ceiling {}, cost {}, the same on every task)",
     lambda: [before("cone", "pilot-denoise", "rho"),
              before("cone", "pilot-denoise", "edf/ceiling"),
              before("cone", "pilot-denoise", "cost_fraction")]),
    ("(`pendulum` comes closest: ρ {}, EDF / ceiling {})",
     lambda: [before("pendulum", "pilot-denoise", "rho"),
              before("pendulum", "pilot-denoise", "edf/ceiling")]),
    ("its pilots cost up to {} of that small model's training and sampling arithmetic",
     lambda: [max(cost_range(k, "diffusion-mlp")[1] for k in ("pilot", "pilot-denoise"))]),
    ("{} of the default planner's plans are plausible (they reach the goal without crossing a "
     "wall or jumping); trained twice as long on its own schedule, {} are, and the distances "
     "still drift (TV to the curated prior {} → {}, noise floor {};",
     lambda: [plaus("maze", 1200), plaus("maze", 2400), plaus("maze", 1200, "tv_model_prior"),
              plaus("maze", 2400, "tv_model_prior"),
              table("drift").query("task == 'maze' and model == 'diffusion-unet' and seed == 0")
              .tv_noise_floor.iloc[0]]),
    ("{}, {}, {} and **{}** pass every check, the last at 16× the default training (19,200 "
     "steps).",
     lambda: [plaus("pendulum", s, training="own run, projected")
              for s in (1200, 2400, 4800, 19200)]),
    ("TV to the prior {} for all motions of that run and {} for its {} plausible ones",
     lambda: [plaus("pendulum", 19200, "tv_model_prior", "own run, projected"),
              plaus("pendulum", 19200, "tv_plausible_only", "own run, projected"),
              plaus("pendulum", 19200, training="own run, projected")
              * plaus("pendulum", 19200, "n_samples", "own run, projected")]),
    ("it chooses the best trained candidate on {} of 5 tasks (the data-only drift check would "
     "have on {}) and ranks the 15 candidates with Spearman {} against the trained TVs (the "
     "drift check {}; goal 0.8)",
     lambda: [ranking("predicted_tv")[1], ranking("drift_check_tv")[1],
              ranking("predicted_tv")[0], ranking("drift_check_tv")[0]]),
    ("ranks them with Spearman {} and would have chosen the best on {} of 5",
     lambda: [*ranking("pilot_kernel_tv")]),
    ("W1 to the prior {} → {}), yet its TV does not fall ({} → {}; the baseline's three seeds "
     "alone span {}–{})",
     lambda: [mitig("cone", "represent-positions", "w1_model_prior"),
              mitig("cone", "represent-steps", "w1_model_prior"),
              mitig("cone", "represent-positions"), mitig("cone", "represent-steps"),
              unet_seeds("cone").min(), unet_seeds("cone").max()]),
    ("heading errors summed along the path cost plausibility ({} → {})",
     lambda: [mitig("cone", "represent-positions", "plausible_frac"),
              mitig("cone", "represent-steps", "plausible_frac")]),
    ("it cuts TV from {} to {}:",
     lambda: [mitig("cone", "baseline"), mitig("cone", "condition-w0")]),
    ("| kernel | ρ (sine, cone, logistic, maze, pendulum) | EDF (ceiling {}, {}, {}, {}, {}) |",
     lambda: list(pilot_check("smooth").edf_ceiling)),
    ("| `smooth`, default scale | {}, {}, {}, {}, {} | {}, {}, {}, {}, {} | {}–{} s ({}–{}) |",
     lambda: pilot_row("smooth")),
    ("| `pilot`, standardised | {}, {}, {}, {}, {} | {}, {}, {}, {}, {} | {}–{} s ({}–{}) |",
     lambda: pilot_row("pilot")),
    ("| `pilot`, the U-Nets' units | {}, {}, {}, {}, {} | {}, {}, {}, {}, {} | {}–{} s ({}–{}) |",
     lambda: pilot_row("pilot-task-units")),
    ("Its size is right only on `cone` (EDF {} against a ceiling of {}, the one task where it "
     "meets notebook 03's accuracy goal)",
     pilot_size_on_cone_only),
    ("the RMS spread of the data in the U-Nets' units is {} (sine), {} (cone), {} (logistic), {} "
     "(maze) and {} (pendulum)",
     lambda: list(pilot_check("pilot-task-units").spread)),
    ("A data-only kernel forecast is {}× to {}× cheaper than training and sampling the model it "
     "forecasts (`kernel_cost.csv`",
     lambda: [data_only_speedup().min(), data_only_speedup().max()]),
]


def _shown(text: str) -> tuple[float, int]:
    """A number as the README prints it -> (value, decimals), percentages as fractions."""
    pct = text.endswith("%")
    body = text.rstrip("%").replace(",", "").replace("−", "-")
    decimals = len(body.partition(".")[2]) + (2 if pct else 0)
    return float(body) / (100 if pct else 1), decimals


def _rounds_to(shown: float, decimals: int, value: float) -> bool:
    """Whether ``shown`` (``decimals`` digits) is a rounding of ``value``; half-way either way."""
    return abs(shown - value) <= 0.5 * 10.0 ** -decimals * (1 + 1e-9) + 1e-12


def _readme() -> str:
    """The README on one line; a range of percentages written ``3–11%`` reads ``3%–11%``."""
    text = re.sub(r"\s+", " ", (ROOT / "README.md").read_text())
    return re.sub(r"(?<![\d.,])(\d+(?:\.\d+)?)–(\d+(?:\.\d+)?%)", r"\1%–\2", text)


def _numbers(sentence: str) -> tuple[str, ...]:
    """The numbers the README prints where ``sentence`` has ``{}``."""
    match = re.search(NUMBER.join(re.escape(part) for part in sentence.split("{}")), _readme())
    assert match, f"README no longer has the sentence (numbers aside): {sentence!r}"
    return match.groups()


@pytest.mark.parametrize("sentence,values", CLAIMS, ids=[c[0][:40] for c in CLAIMS])
def test_readme_quotes_the_tables(sentence, values):
    numbers, expected = _numbers(sentence), values()
    assert len(expected) == len(numbers)
    wrong = [f"{text} (table: {value:.6g})" for text, value in zip(numbers, expected)
             if not _rounds_to(*_shown(text), value)]
    assert not wrong, f"README quotes numbers the tables no longer give: {wrong} in {sentence!r}"


def test_a_stale_number_fails():
    """The check can fail: the README's first reference-DDPM ρ, changed by one in its last
    digit, is not a rounding of the table's value."""
    sentence, values = CLAIMS[0]
    shown, decimals = _shown(_numbers(sentence)[0])
    assert _rounds_to(shown, decimals, values()[0])
    assert not _rounds_to(shown + 10.0 ** -decimals, decimals, values()[0])


def test_the_readmes_words_on_forecast_costs():
    """Two statements of the README's before-training paragraph that are words, not numbers: the
    sampled mosaic costs more than a tenth of its target exactly on the cone, the maze and the
    pendulum; the kernel pilot costs the same on every task."""
    t = table("kernel_agreement")
    bt = t[(t.model == "diffusion-unet") & (t["mode"] == "before-training")]
    mosaic = bt[bt.kernel == "mosaic"]
    assert set(mosaic.task[mosaic.cost_fraction > 0.1]) == {"cone", "maze", "pendulum"}
    low, high = cost_range("pilot-denoise")
    assert round(low, 3) == round(high, 3)
