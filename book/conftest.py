"""pytest options of the book's browser test (book/test_site.py)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser):
    parser.addoption("--site", default=str(ROOT / "build" / "book"),
                     help="the built book to test (default: build/book)")
