"""Project-level checks: dependency lists agree, notebooks only use names paper_lib has, every
notebook has a papermill parameters cell, and the README leads with the two commands."""
import ast
import importlib
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject_deps() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # the `bench` extra (reference U-Nets for `make bench`) is pip-only, not in environment.yml
    reqs = meta["dependencies"] + [r for name, group in meta["optional-dependencies"].items()
                                   if name != "bench" for r in group]
    return {_name(r) for r in reqs}


def environment_deps() -> set[str]:
    import yaml  # PyYAML comes with jupyter

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        for req in dep["pip"] if isinstance(dep, dict) else [dep]:
            names.add(_name(req.replace("=", "==", 1) if "==" not in req else req))
    return names - {"python", "pip"}


def test_environment_yml_and_pyproject_agree():
    assert pyproject_deps() == environment_deps()


def test_torch_is_pinned_to_the_cpu_wheel_version():
    text = (ROOT / "pyproject.toml").read_text() + (ROOT / "environment.yml").read_text()
    assert text.count("torch==2.13.0") == 2


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


def _paper_lib_references(tree: ast.AST) -> set[str]:
    """Dotted names under paper_lib that a script imports or reads as attributes."""
    aliases, refs = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("paper_lib"):
            for a in node.names:
                refs.add(f"{node.module}.{a.name}")
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("paper_lib"):
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else "paper_lib"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain, cur = [], node
            while isinstance(cur, ast.Attribute):
                chain.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name) and cur.id in aliases:
                refs.add(".".join([aliases[cur.id]] + chain[::-1]))
    return refs


def _resolve(dotted: str):
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[: i + 1]))
    return obj


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_uses_only_existing_paper_lib_names(path):
    refs = _paper_lib_references(ast.parse(path.read_text()))
    assert refs, f"{path.name} does not use paper_lib"
    missing = []
    for ref in sorted(refs):
        try:
            _resolve(ref)
        except (AttributeError, ModuleNotFoundError):
            missing.append(ref)
    assert not missing, f"{path.name} uses names paper_lib lacks: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_parameters_cell_with_profile(path):
    text = path.read_text()
    m = re.search(r'# %% tags=\["parameters"\]\n(.*?)\n# %%', text, re.S)
    assert m and re.search(r'^profile = "default"$', m.group(1), re.M)
    assert "paper_lib.setup(profile" in text
    assert "NBVAL_CHECK_OUTPUT" in text, "each notebook checks at least one summary table"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_cell_displays_a_whole_result_table(path):
    """``plots.update_table`` returns the merged table, rows of other notebooks included: as a
    cell's last expression it would be displayed, and what the notebook shows would depend on
    which notebooks ran before it. A notebook prints its own rows instead."""
    import jupytext

    shown = []
    for i, cell in enumerate(jupytext.read(path).cells):
        if cell.cell_type != "code" or "update_table" not in cell.source:
            continue
        body = ast.parse(re.sub(r"^[%!].*$", "", cell.source, flags=re.M)).body
        last = body[-1] if body else None
        if (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
                and ast.unparse(last.value.func).endswith("update_table")):
            shown.append(i)
    assert not shown, f"{path.name}: cells {shown} end with update_table(...) and display it"


# Numbers a notebook's prose may state: definitions, thresholds, goals, test levels and task
# constants. A result (a TV, a fraction, a count) belongs in a printed or rendered output, where
# it cannot go stale; to quote a new constant in prose, add it here.
PROSE_CONSTANTS = {
    "2605.20299",                                  # the paper
    "0.01", "0.02", "0.03", "0.05", "0.1", "0.10", "0.15", "0.5", "0.7", "0.8", "1.5",
    "1%", "3%", "5%", "10%", "30%", "75%", "90%", "95%", "100%",
    "3.2", "3.45", "3.57", "3.83", "3.9",          # the logistic map's regimes
    "4.4", "9.81",                                 # the pendulum's prior and flip energy (J)
    "5.6",                                         # a section of docs/design.md
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_prose_quotes_no_result(path):
    """Every decimal or percentage in a markdown cell (outside code and math) is a constant of
    ``PROSE_CONSTANTS``: the results a notebook discusses are printed by its code (issue 13,
    §5), so rerunning it on other data or another machine cannot leave its prose stale."""
    import jupytext

    found = set()
    for cell in jupytext.read(path).cells:
        if cell.cell_type == "markdown":
            text = re.sub(r"\$[^$]*\$|`[^`]*`|\]\([^)]*\)", "", cell.source)
            found |= set(re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])|\d+(?:\.\d+)?%", text))
    assert found <= PROSE_CONSTANTS, \
        f"{path.name} states numbers in prose that no code prints: {sorted(found - PROSE_CONSTANTS)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_teaches(path):
    """Objectives first, then what to remember, then exercises, each exercise followed by a worked
    solution in cells tagged ``solution`` (folded by the book, executed by the smoke run); the
    glossary is linked."""
    import jupytext

    cells = jupytext.read(path).cells
    md = [c.source for c in cells if c.cell_type == "markdown"]
    heads = [next((i for i, s in enumerate(md) if re.search(rf"^## {h}", s, re.M)), None)
             for h in ("You will learn", "What to remember", "Exercises")]
    assert None not in heads, f"{path.name}: missing one of the sections (index per section: {heads})"
    assert heads == sorted(heads), f"{path.name}: sections out of order: {heads}"
    assert "glossary.md" in path.read_text(), f"{path.name} does not link docs/glossary.md"
    tags = [c.metadata.get("tags", []) for c in cells]
    start = next(i for i, c in enumerate(cells) if c.cell_type == "markdown"
                 and re.search(r"^## Exercises", c.source, re.M))
    exercises = [i for i in range(start, len(cells)) if cells[i].cell_type == "markdown"
                 and "solution" not in tags[i] and re.search(r"^#+ *Exercise(?!s)|^\*\*Exercise",
                                                              cells[i].source, re.M)]
    assert exercises, f"{path.name}: no exercise cells after '## Exercises'"
    for k, i in enumerate(exercises):
        end = exercises[k + 1] if k + 1 < len(exercises) else len(cells)
        sol = [j for j in range(i + 1, end) if "solution" in tags[j]
               and cells[j].cell_type == "code"]
        assert sol, f"{path.name}: exercise cell {i} has no code cell tagged solution after it"
    hidden = [c.metadata.get("jupyter", {}).get("source_hidden") for c, t in zip(cells, tags)
              if "solution" in t]
    assert all(hidden), f"{path.name}: solution cells not collapsed in JupyterLab " \
                        f"(jupyter={{\"source_hidden\": true}}): {hidden}"


def test_glossary_defines_every_linked_term():
    """Every link into docs/glossary.md (from notebooks, docs, README) names a heading there."""
    gl = (ROOT / "docs" / "glossary.md").read_text()
    anchors = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", gl, re.M)}
    texts = [*NOTEBOOKS, ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    missing = {(p.name, a) for p in texts
               for a in re.findall(r"glossary\.md#([\w\-]+)", p.read_text()) if a not in anchors}
    missing |= {("glossary.md", a) for a in re.findall(r"\]\(#([\w\-]+)\)", gl)
                if a not in anchors}
    assert not missing, f"links to glossary entries that do not exist: {sorted(missing)}"


def test_readme_leads_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    assert [l for l in first_block.splitlines() if l.strip()] == ["make figures", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_readme_gallery_images_exist():
    readme = (ROOT / "README.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert images
    for img in images:
        assert (ROOT / img).exists(), img


# ----------------------------------------------------------------------------- set-up (issue 17)

def _header(path: Path) -> str:
    text = path.read_text()
    return text[:text.index("\n# %%") + 1]


def test_notebook_headers_are_identical_and_follow_jupytext_toml():
    config = tomllib.loads((ROOT / "jupytext.toml").read_text())
    assert config["formats"] == "py:percent"
    headers = {p.name: _header(p) for p in NOTEBOOKS}
    assert len(set(headers.values())) == 1, headers
    header = next(iter(headers.values()))
    assert "#     formats: py:percent\n" in header and "#     name: python3\n" in header
    assert f"#     notebook_metadata_filter: {config['notebook_metadata_filter']}\n" in header


def test_saving_from_jupyterlab_leaves_the_notebooks_unchanged(tmp_path):
    """What JupyterLab does on "Open With -> Jupytext Notebook" and save, after a kernel ran."""
    jupytext = pytest.importorskip("jupytext")
    pytest.importorskip("jupyter_server")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "jupytext.toml").write_text((ROOT / "jupytext.toml").read_text())
    for p in NOTEBOOKS:
        (tmp_path / "notebooks" / p.name).write_text(p.read_text())
    cm = jupytext.TextFileContentsManager(root_dir=str(tmp_path))
    for p in NOTEBOOKS:
        name = f"notebooks/{p.name}"
        model = cm.get(name, content=True, type="notebook")
        model["content"]["metadata"]["language_info"] = {"name": "python", "version": "3.11"}
        cm.save(model, name)
        assert (tmp_path / name).read_text() == p.read_text(), f"saving rewrote {p.name}"
    assert sorted(q.name for q in (tmp_path / "notebooks").iterdir()) == \
        sorted(p.name for p in NOTEBOOKS)


def test_readme_tables_have_no_blank_line_inside():
    lines = (ROOT / "README.md").read_text().splitlines()
    for i in range(1, len(lines) - 1):
        if not lines[i].strip() and lines[i - 1].startswith("|") and lines[i + 1].startswith("|"):
            starts_table = i + 2 < len(lines) and re.match(r"^\|(\s*:?-+:?\s*\|)+$", lines[i + 2])
            assert starts_table, f"README line {i + 1}: a blank line splits a table"


def test_readme_commands_name_files_that_exist():
    readme = (ROOT / "README.md").read_text()
    scripts = set(re.findall(r"notebooks/\d\d_\w+\.py", readme))
    assert scripts and all((ROOT / s).exists() for s in scripts), scripts
    assert "build/x.ipynb" not in readme
    assert "python -m paper_lib.runnb notebooks/" in readme


def test_the_repository_points_only_into_itself():
    files = [ROOT / "README.md", ROOT / "Makefile", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "paper_lib").rglob("*.py")), *NOTEBOOKS]
    outside = re.compile(r"DESIGN\.md|PAPER_NOTES|\.\./shared")
    bad = [f"{f.relative_to(ROOT)}:{n}" for f in files
           for n, line in enumerate(f.read_text().splitlines(), 1) if outside.search(line)]
    assert not bad, bad
    design = (ROOT / "docs" / "design.md").read_text()
    sections = set(re.findall(r"^## (\d+)\.", design, re.M))
    for f in files:
        for n in re.findall(r"docs/design\.md (?:section |§)(\d+)", f.read_text()):
            assert n in sections, f"{f.relative_to(ROOT)} refers to docs/design.md section {n}"


def _make_n(*args) -> str:
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make missing")
    return subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout


def test_make_lab_allows_root_only_for_root():
    import os

    lab = [l for l in _make_n("lab").splitlines() if "jupyter lab" in l]
    assert len(lab) == 1 and ("--allow-root" in lab[0]) == (os.geteuid() == 0)


def test_make_setup_takes_the_torch_index():
    stamp = ".venv/.installed"
    torch = [l for l in _make_n("-W", "pyproject.toml", stamp).splitlines() if "torch==" in l]
    assert torch and torch[0].split()[-1] == "torch==2.13.0"  # default: pip's own index
    cpu = "https://download.pytorch.org/whl/cpu"
    torch = [l for l in _make_n("-W", "pyproject.toml", stamp, f"TORCH_INDEX={cpu}").splitlines()
             if "torch==" in l]
    assert torch and torch[0].endswith(f"torch==2.13.0 --index-url {cpu}")
    assert f"make setup TORCH_INDEX={cpu}" in (ROOT / "README.md").read_text()
