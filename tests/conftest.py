"""Every test gets its own cache and figure folders, so tests never touch the real ones."""
import pytest


@pytest.fixture(autouse=True)
def isolated_outputs(tmp_path, monkeypatch):
    import paper_lib

    monkeypatch.setenv("PAPER_LIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PAPER_LIB_FIGURES", str(tmp_path / "figures"))
    paper_lib.plots.set_output_dir(None)
    yield tmp_path
    paper_lib.plots.set_output_dir(None)
