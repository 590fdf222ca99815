"""One altair theme and saving: every figure is written as SVG, PNG and the tidy CSV behind it.

``save(chart, name)`` renders offline through vl-convert into temporary files and renames them
into place only when all three succeeded, so a failure leaves no partial figure behind. Renders
are cached by a hash of the Vega-Lite spec (data included), the scale and vl-convert's version:
a rerun that draws the same chart does not render it again.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import altair as alt
import pandas as pd

from . import cache
from .cache import atomic_write_bytes

__all__ = ["theme", "output_dir", "set_output_dir", "save", "save_table", "update_table",
           "save_html", "embed_html", "read_table", "edf_locality", "COLORS"]

ROOT = Path(__file__).resolve().parents[1]
_OUTPUT: Path | None = None

# Colour-blind safe (Okabe–Ito); one colour per role, used by every chart.
COLORS = {"data": "#000000", "prior": "#999999", "model": "#0072B2", "kernel": "#D55E00",
          "alt1": "#009E73", "alt2": "#CC79A7", "alt3": "#E69F00", "alt4": "#56B4E9"}


def theme() -> dict:
    """The companion's altair theme (plain, readable at 100% in a paper or a slide)."""
    return {"config": {
        "view": {"stroke": None, "continuousWidth": 260, "continuousHeight": 180},
        "font": "DejaVu Sans",
        "axis": {"labelFontSize": 11, "titleFontSize": 12, "grid": True, "gridOpacity": 0.4,
                 "titleFontWeight": "normal"},
        "legend": {"labelFontSize": 11, "titleFontSize": 12},
        "header": {"labelFontSize": 12, "titleFontSize": 12},
        "title": {"fontSize": 13, "anchor": "start", "fontWeight": "normal"},
        "range": {"category": list(COLORS.values())},
    }}


# Figures embed their (modest) data inline; the 5,000-row guard is for notebooks, not figure files.
alt.data_transformers.disable_max_rows()
# Charts shown in a notebook are rendered offline to SVG by vl-convert: altair's default HTML output
# loads vega from a CDN, which an offline reader (the book, a laptop on a train) cannot reach.
# Interactive charts are shown with :func:`embed_html`, which inlines vega instead.
alt.renderers.enable("svg")

try:  # altair >= 5.5
    alt.theme.register("paper_lib", enable=True)(theme)
except AttributeError:  # pragma: no cover - older altair
    alt.themes.register("paper_lib", theme)
    alt.themes.enable("paper_lib")


def output_dir() -> Path:
    """Where figures go: set by :func:`set_output_dir` (profiles do), else ``$PAPER_LIB_FIGURES``
    or ``<repo>/figures``."""
    if _OUTPUT is not None:
        return _OUTPUT
    return Path(os.environ.get("PAPER_LIB_FIGURES", ROOT / "figures"))


def set_output_dir(path: str | Path | None) -> None:
    global _OUTPUT
    _OUTPUT = None if path is None else Path(path)


def _check_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"bad figure name {name!r}: use a plain name such as '01_examples'")


def _chart_data(chart: alt.TopLevelMixin) -> pd.DataFrame | None:
    data = getattr(chart, "data", alt.Undefined)
    if isinstance(data, pd.DataFrame):
        return data
    frames = [_chart_data(c) for attr in ("layer", "hconcat", "vconcat", "concat")
              for c in (getattr(chart, attr, None) or [])]
    frames = [f for f in frames if f is not None]
    return pd.concat(frames, ignore_index=True) if frames else None


def save(chart: alt.TopLevelMixin, name: str, data: pd.DataFrame | None = None,
         scale: float = 2.0) -> dict[str, Path]:
    """Write ``NAME.svg``, ``NAME.png`` and ``NAME.csv`` under :func:`output_dir`.

    ``data`` is the tidy table behind the chart; by default the chart's own DataFrame (for
    compound charts, its parts' frames concatenated). Returns the three paths.
    """
    _check_name(name)
    table = data if data is not None else _chart_data(chart)
    if table is None:
        raise ValueError(f"figure {name!r}: pass data= (the chart has no DataFrame of its own)")
    spec = chart.to_json()
    svg, png = _render(spec, scale)  # render everything first: no file is touched yet
    buf = io.StringIO()
    table.to_csv(buf, index=False, float_format="%.6g", lineterminator="\n")
    out = output_dir()
    paths = {ext: out / f"{name}.{ext}" for ext in ("svg", "png", "csv")}
    for ext, blob in (("csv", buf.getvalue().encode()), ("svg", svg), ("png", png)):
        atomic_write_bytes(paths[ext], blob)
    return paths


def _render(spec: str, scale: float) -> tuple[bytes, bytes]:
    """(SVG, PNG) of a Vega-Lite JSON spec, from the cache when this spec was rendered before."""
    import hashlib

    import vl_convert as vlc

    key = {"spec": hashlib.sha256(spec.encode()).hexdigest(), "scale": float(scale),
           "vl_convert": getattr(vlc, "__version__", "unknown")}
    out = cache.memo("render", key, lambda: {"svg": vlc.vegalite_to_svg(spec).encode(),
                                             "png": vlc.vegalite_to_png(spec, scale=scale)})
    return out["svg"], out["png"]


def save_table(df: pd.DataFrame, name: str) -> Path:
    """Write a results table as ``tables/NAME.csv`` under :func:`output_dir` (atomically)."""
    _check_name(name)
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.6g", lineterminator="\n")
    path = output_dir() / "tables" / f"{name}.csv"
    atomic_write_bytes(path, buf.getvalue().encode())
    return path


def save_html(chart: alt.TopLevelMixin, name: str) -> Path:
    """Write an interactive chart as a self-contained ``NAME.html`` (vega bundled inline)."""
    import vl_convert as vlc

    _check_name(name)
    html = vlc.vegalite_to_html(chart.to_json(), bundle=True)
    path = output_dir() / f"{name}.html"
    atomic_write_bytes(path, html.encode())
    return path


def embed_html(path: str | Path, height: int):
    """Show a self-contained HTML file (one that :func:`save_html` wrote) in the notebook's output,
    inside an ``<iframe srcdoc>`` ``height`` pixels tall, so its scripts run offline and apart
    from the page (a book page, JupyterLab) that shows it. Returns an ``IPython.display.HTML``."""
    import html
    import warnings

    from IPython.display import HTML

    if int(height) <= 0:
        raise ValueError(f"embed_html: height must be a positive number of pixels, got {height!r}")
    doc = html.escape(Path(path).read_text(), quote=True)
    with warnings.catch_warnings():  # IPython suggests its IFrame, which needs a URL, not srcdoc
        warnings.simplefilter("ignore", UserWarning)
        return HTML(f'<iframe srcdoc="{doc}" title="{Path(path).stem}" width="100%" '
                    f'height="{int(height)}" style="border: none;"></iframe>')


def update_table(df: pd.DataFrame, name: str, keys: list[str]) -> pd.DataFrame:
    """Merge rows into ``tables/NAME.csv``: rows of the existing table with the same ``keys`` as a
    new row are replaced, others are kept (so several notebooks can each own some rows). The
    result is sorted by ``keys`` and written atomically; it is returned. A lock file serialises
    concurrent updates (notebooks run with ``make -j``).

    An existing table that cannot be read completely (0 bytes, a header or last row cut short by
    a killed run, a row with the wrong number of fields) is reported with a ``UserWarning`` naming
    the file and rebuilt from its complete rows plus the rows being written; the key columns of
    those rows take the types of ``df``'s (an int ``seed`` stays int), so a key is matched and
    replaced, not duplicated. A complete table whose columns differ from ``df``'s raises
    ``ValueError``."""
    import csv
    import fcntl
    import warnings

    path = output_dir() / "tables" / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            text = path.read_bytes().decode("utf-8", errors="replace")
            complete = text.endswith("\n")
            if not complete:                      # the last line was cut short: drop it
                text = text[:text.rfind("\n") + 1]
            rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
            header, body = (rows[0], rows[1:]) if rows else (None, [])
            good = [r for r in body if header is not None and len(r) == len(header)]
            bad = len(body) - len(good) + (not complete)
            if header is None:
                old = None
                warnings.warn(f"table {name}: {path} is empty or its header is incomplete; "
                              f"rebuilding it from the {len(df)} rows being written",
                              UserWarning, stacklevel=2)
            elif bad:
                buf = io.StringIO()
                csv.writer(buf, lineterminator="\n").writerows([header, *good])
                old = pd.read_csv(io.StringIO(buf.getvalue()))
                warnings.warn(f"table {name}: {path} has {bad} incomplete row(s); rebuilding it "
                              f"from its {len(good)} complete rows and the {len(df)} rows being "
                              f"written", UserWarning, stacklevel=2)
            else:
                old = pd.read_csv(path)
            if old is not None and list(old.columns) != list(df.columns):
                raise ValueError(f"table {name}: columns {list(df.columns)} differ from the "
                                 f"existing {list(old.columns)}")
            if old is not None and bad:
                for k in keys:                    # key columns take df's types when lossless
                    if old[k].dtype != df[k].dtype and not old[k].isna().any():
                        try:
                            cast = old[k].astype(df[k].dtype)
                        except (TypeError, ValueError):
                            continue
                        if (cast == old[k]).all():
                            old[k] = cast
            if old is not None:
                new_keys = set(map(tuple, df[keys].astype(str).values))
                keep = [tuple(r) not in new_keys for r in old[keys].astype(str).values]
                df = pd.concat([old[keep], df], ignore_index=True)
        df = df.sort_values(keys, kind="stable").reset_index(drop=True)
        save_table(df, name)
    return df


def read_table(name: str) -> pd.DataFrame:
    """``tables/NAME.csv`` of the current output folder (the profile's: :func:`output_dir`).
    A missing table raises ``FileNotFoundError`` saying which notebook to run first; there is
    no fallback to another profile's table, so a smoke or paper run never mixes in the
    committed default-profile numbers."""
    path = output_dir() / "tables" / f"{name}.csv"
    if not path.exists():
        writer = {"kernel_agreement": "03_kernel", "kernel_cost": "03_kernel",
                  "drift": "02_mechanism"}.get(name, "the notebook that writes it")
        raise FileNotFoundError(f"table {name!r} not found at {path}: run {writer} under the "
                                f"same profile first (make orders it so)")
    return pd.read_csv(path)


def edf_locality(sweep: pd.DataFrame, nn_ratio: float, title: str, width: int, height: int,
                 sort=None) -> alt.LayerChart:
    """EDF against locality, one line per kernel (``sweep``: columns kernel, locality, edf), over
    a grey band of localities up to 1.5 × the model's ``nn_ratio`` and a rule at ``nn_ratio``:
    a kernel explains a drift *locally* only where it reaches a high EDF inside the band."""
    band = alt.Chart(pd.DataFrame({"x": [0.0], "x2": [1.5 * nn_ratio]})).mark_rect(
        color="#dddddd", opacity=0.6).encode(x="x:Q", x2="x2:Q")
    rule = alt.Chart(pd.DataFrame({"x": [nn_ratio]})).mark_rule(color="black").encode(x="x:Q")
    curves = alt.Chart(sweep).mark_line(point=True).encode(
        x=alt.X("locality:Q", title="locality (data spacings)", scale=alt.Scale(type="symlog")),
        y=alt.Y("edf:Q", title="EDF", scale=alt.Scale(domain=[-1, 1], clamp=True)),
        color=alt.Color("kernel:N", sort=sort) if sort is not None else "kernel:N")
    return alt.layer(band, rule, curves).properties(title=title, width=width, height=height)
