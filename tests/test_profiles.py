import pytest

import paper_lib
from paper_lib.profiles import PROFILES, get_profile


def test_known_profiles():
    assert set(PROFILES) == {"smoke", "default", "paper"}
    assert get_profile("default").name == "default"


def test_unknown_profile_lists_valid_names():
    with pytest.raises(ValueError, match="valid profiles: default, paper, smoke"):
        get_profile("fast")
    with pytest.raises(ValueError, match="valid profiles"):
        paper_lib.setup("Default")


def test_smoke_is_smaller_than_default_which_is_smaller_than_paper():
    s, d, p = (get_profile(n) for n in ("smoke", "default", "paper"))
    for field in ("n_train", "n_samples", "train_steps", "width"):
        assert getattr(s, field) < getattr(d, field) < getattr(p, field)


def test_default_meets_design_sample_count():
    assert get_profile("default").n_samples >= 2000


def test_setup_routes_non_default_figures_to_build(tmp_path):
    paper_lib.setup("smoke")
    assert paper_lib.plots.output_dir() == paper_lib.ROOT / "build" / "smoke" / "figures"
    paper_lib.setup("default")
    assert paper_lib.plots.output_dir() == tmp_path / "figures"  # the env override of conftest


def test_library_functions_take_a_resolved_profile():
    from paper_lib import drift, models

    for call in (lambda: drift.task_for("cone", "smoke"),
                 lambda: models.make_spec("vae", "default"),
                 lambda: drift.train("cone", "vae", "smoke")):
        with pytest.raises(TypeError, match="profile must be a Profile.*paper_lib.setup"):
            call()


def test_profile_fields_are_all_used():
    # Profile.extra was unused and is gone; every field is read somewhere in the project
    import dataclasses
    import re

    text = "\n".join(p.read_text() for p in [*paper_lib.ROOT.glob("paper_lib/**/*.py"),
                                             *paper_lib.ROOT.glob("notebooks/*.py")]
                     if p.name != "profiles.py")
    unused = [f.name for f in dataclasses.fields(get_profile("default"))
              if not re.search(rf"\.{f.name}\b", text)]
    assert unused == []
