"""Build the companion's book: a static site of the executed notebooks, the docs and the README.

    python book/build.py --profile default --out build/book      (what ``make book`` runs)

It stages the sources under ``build/book-src/<profile>/`` and runs Sphinx (myst-nb, the
sphinx-book-theme; configuration in ``book/conf.py``) on them:

* ``index.md``: the README, its links to ``notebooks/NN_name.py`` pointed at the executed pages;
* ``notebooks/NN_name.ipynb``: the notebooks as executed by ``make figures`` (``build/default``)
  or ``make smoke`` (``build/smoke``): nothing is re-executed. Cells tagged ``solution`` are
  folded: code cells get myst-nb's ``hide-cell`` tag, markdown cells a ``<details>`` block;
* ``docs/*.md`` (the glossary among them) and the profile's figures.

The site is written to ``OUT.tmp`` and renamed to ``OUT`` only when Sphinx succeeded (warnings
are errors, so a broken link or a missing image fails the build), so an interrupted or failed
build leaves the previous site in place.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = "solution"


def executed_notebooks(profile: str) -> list[Path]:
    """The executed notebooks of ``profile``, one per ``notebooks/NN_name.py``; raise naming the
    missing ones and the command that makes them."""
    names = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    paths = [ROOT / "build" / profile / f"{n}.ipynb" for n in names]
    missing = [str(p.relative_to(ROOT)) for p in paths if not p.exists()]
    if missing:
        make = "make figures" if profile == "default" else f"make {profile}"
        raise SystemExit(f"book: the executed notebooks {', '.join(missing)} are missing; run "
                         f"`{make}` first (the book shows executed notebooks, it runs none)")
    return paths


def fold_solutions(nb: nbformat.NotebookNode) -> int:
    """Fold the cells tagged ``solution`` in place; returns how many were folded."""
    folded = 0
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if SOLUTION not in tags:
            continue
        folded += 1
        if cell.cell_type == "code":
            cell.metadata["tags"] = [*tags, "hide-cell"]
        else:
            cell.source = (f"<details class=\"solution\">\n<summary>Solution (explanation)"
                           f"</summary>\n\n{cell.source}\n\n</details>")
    return folded


def readme_as_index(text: str, pages: list[str], docs: list[str]) -> str:
    """The README as the front page: notebook links point at the executed pages, and a hidden
    table of contents lists every page."""
    text = re.sub(r"\]\(notebooks/(\d\d_[A-Za-z0-9_]+)\.py\)", r"](notebooks/\1.ipynb)", text)
    toc = ["", "```{toctree}", ":hidden:", ":caption: Notebooks", "",
           *[f"notebooks/{p}" for p in pages], "```", "",
           "```{toctree}", ":hidden:", ":caption: Reference", "",
           *[f"docs/{d}" for d in docs], "```", ""]
    return text + "\n".join(toc)


def stage(profile: str, src: Path) -> None:
    """Write the book's sources for ``profile`` into ``src`` (emptied first)."""
    notebooks = executed_notebooks(profile)
    if src.exists():
        shutil.rmtree(src)
    (src / "notebooks").mkdir(parents=True)
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        fold_solutions(nb)
        nbformat.write(nb, src / "notebooks" / path.name)
    shutil.copytree(ROOT / "docs", src / "docs")
    figures = ROOT / "figures" if profile == "default" else ROOT / "build" / profile / "figures"
    shutil.copytree(figures, src / "figures")
    docs = ["glossary", *sorted(p.stem for p in (ROOT / "docs").glob("*.md")
                                if p.stem != "glossary")]
    index = readme_as_index((ROOT / "README.md").read_text(), [p.stem for p in notebooks], docs)
    (src / "index.md").write_text(index)


def build(profile: str, out: Path) -> Path:
    """Stage and build the site into ``out``; returns ``out``."""
    src = ROOT / "build" / "book-src" / profile
    stage(profile, src)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going",
           "-c", str(ROOT / "book"), "-d", str(src.parent / f"{profile}.doctrees"),
           str(src), str(tmp)]
    if subprocess.run(cmd).returncode != 0:
        raise SystemExit(f"book: sphinx failed for profile {profile!r} (its messages are above)")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="default",
                    help="whose executed notebooks: build/<profile>/*.ipynb (default: default)")
    ap.add_argument("--out", type=Path, default=None, help="site folder (default: build/book)")
    args = ap.parse_args(argv)
    out = build(args.profile, (args.out or ROOT / "build" / "book").resolve())
    print(f"book: {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
