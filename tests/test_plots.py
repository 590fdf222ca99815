import altair as alt
import pandas as pd
import pytest

from paper_lib import plots


def chart():
    df = pd.DataFrame({"a": [1, 2, 3], "b": [3.0, 1.0, 2.0]})
    return alt.Chart(df).mark_line().encode(x="a:Q", y="b:Q")


def test_save_writes_svg_png_csv(tmp_path):
    paths = plots.save(chart(), "01_test")
    assert {p.name for p in paths.values()} == {"01_test.svg", "01_test.png", "01_test.csv"}
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths["svg"].read_bytes()[:400]
    assert pd.read_csv(paths["csv"]).shape == (3, 2)


def test_save_of_layered_chart_collects_data():
    c = chart() + chart().mark_point()
    paths = plots.save(c, "layered")
    assert pd.read_csv(paths["csv"]).shape == (6, 2)


def test_failed_render_leaves_no_partial_file(monkeypatch):
    import vl_convert

    def fail(*args, **kwargs):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(vl_convert, "vegalite_to_png", fail)  # the SVG renders, the PNG fails
    with pytest.raises(RuntimeError, match="renderer crashed"):
        plots.save(chart(), "broken")
    out = plots.output_dir()
    assert not out.exists() or not list(out.iterdir())


def test_renders_are_cached_by_spec(monkeypatch):
    import vl_convert

    first = plots.save(chart(), "cached")
    svg, png = first["svg"].read_bytes(), first["png"].read_bytes()

    def fail(*args, **kwargs):
        raise RuntimeError("rendered again")

    monkeypatch.setattr(vl_convert, "vegalite_to_svg", fail)
    monkeypatch.setattr(vl_convert, "vegalite_to_png", fail)
    again = plots.save(chart(), "cached_again")            # same spec: from the cache
    assert again["svg"].read_bytes() == svg and again["png"].read_bytes() == png
    other = chart().properties(title="another chart")
    with pytest.raises(RuntimeError, match="rendered again"):
        plots.save(other, "other")


def test_chart_without_data_needs_data_argument():
    c = alt.Chart(alt.UrlData("x.csv")).mark_point().encode(x="a:Q")
    with pytest.raises(ValueError, match="pass data="):
        plots.save(c, "nodata")


def test_bad_names_are_rejected():
    for name in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="bad figure name"):
            plots.save(chart(), name)


def test_save_table(tmp_path):
    path = plots.save_table(pd.DataFrame({"x": [0.123456789]}), "demo")
    assert path.parent.name == "tables" and path.read_text() == "x\n0.123457\n"


def test_update_table_replaces_rows_with_same_keys():
    a = pd.DataFrame({"task": ["sine", "cone"], "model": ["m", "m"], "tv": [0.1, 0.2]})
    plots.update_table(a, "drift_demo", ["task", "model"])
    b = pd.DataFrame({"task": ["maze", "cone"], "model": ["m", "m"], "tv": [0.5, 0.3]})
    out = plots.update_table(b, "drift_demo", ["task", "model"])
    assert out.task.tolist() == ["cone", "maze", "sine"] and out.tv.tolist() == [0.3, 0.5, 0.1]
    with pytest.raises(ValueError, match="columns"):
        plots.update_table(pd.DataFrame({"task": ["x"]}), "drift_demo", ["task"])


def test_read_table_reads_the_current_output_folder_only():
    import pandas as pd

    from paper_lib import ROOT, plots

    assert (ROOT / "figures" / "tables" / "kernel_agreement.csv").exists()
    # the committed default-profile table is never a fallback for another output folder
    with pytest.raises(FileNotFoundError, match="kernel_agreement.*run 03_kernel"):
        plots.read_table("kernel_agreement")
    with pytest.raises(FileNotFoundError, match="no_such_table"):
        plots.read_table("no_such_table")
    plots.update_table(pd.DataFrame({"task": ["a"], "v": [1.0]}), "t_read", ["task"])
    plots.update_table(pd.DataFrame({"task": ["b"], "v": [2.0]}), "t_read", ["task"])
    assert plots.read_table("t_read").task.tolist() == ["a", "b"]


def test_interactive_chart_is_embedded_offline(tmp_path):
    """save_html inlines vega (no CDN), and embed_html shows that file in an iframe's srcdoc."""
    import html
    import warnings

    plots.set_output_dir(tmp_path)
    try:
        slider = alt.param(name="k", value=1, bind=alt.binding_range(min=0, max=2, step=1))
        c = chart().add_params(slider)
        path = plots.save_html(c, "explorer")
    finally:
        plots.set_output_dir(None)
    text = path.read_text()
    assert "cdn.jsdelivr" not in text and "<script" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # no IPython warning either
        shown = plots.embed_html(path, height=300)
    assert shown.data.startswith('<iframe srcdoc="') and 'title="explorer"' in shown.data
    assert html.unescape(shown.data.split('srcdoc="')[1].split('" title=')[0]) == text
    with pytest.raises(ValueError, match="height must be a positive"):
        plots.embed_html(path, height=0)


def test_notebook_charts_render_offline():
    """Charts shown in a notebook carry SVG, not HTML that loads vega from a CDN."""
    bundle = chart()._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "image/svg+xml" in data and "text/html" not in data
