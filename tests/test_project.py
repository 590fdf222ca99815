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
