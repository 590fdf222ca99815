"""The built book, opened in a real headless browser (Chromium through Playwright).

    python -m pytest book/test_site.py --site build/book-smoke      (what ``make booktest`` runs)

Every page must load without a console error, a page error or a failed request; every image
must have loaded (non-zero natural size); every internal link must point at an existing file and,
with a ``#fragment``, at an existing id there; and the kernel explorer's slider must change the
chart. Playwright drives the system's Chromium (``$BOOK_BROWSER``, else ``chromium``,
``chromium-browser``, ``google-chrome`` on the PATH): its own browser download is not needed. With
no browser the tests are skipped with a message saying how to get one.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
EXPLORER = "03_kernel_explorer"


def _browser_path() -> str | None:
    if os.environ.get("BOOK_BROWSER"):
        return os.environ["BOOK_BROWSER"]
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


@pytest.fixture(scope="session")
def site(request) -> Path:
    site = Path(request.config.getoption("--site")).resolve()
    if not (site / "index.html").exists():
        pytest.fail(f"--site {site}: no index.html there; build it with `make book` "
                    f"(or `make booktest`, which builds the smoke book)")
    return site


@pytest.fixture(scope="session")
def browser():
    path = _browser_path()
    if path is None:
        pytest.skip("no Chromium found (looked for $BOOK_BROWSER, then "
                    f"{', '.join(BROWSERS)} on the PATH): install one, e.g. "
                    "`apt-get install chromium`, to run the book's browser tests")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, headless=True,
                                     args=["--no-sandbox", "--allow-file-access-from-files"])
        yield browser
        browser.close()


def _pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html")
                  if not p.relative_to(site).parts[0].startswith(("_static", "_sources")))


def _ids(path: Path) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', path.read_text(errors="replace")))


def test_site_has_every_page(site):
    names = {p.relative_to(site).as_posix() for p in _pages(site)}
    for need in ("index.html", "docs/glossary.html", "notebooks/03_kernel.html"):
        assert need in names, f"{need} missing from the book; pages: {sorted(names)}"
    notebooks = [n for n in names if re.match(r"notebooks/\d\d_", n)]
    assert len(notebooks) >= 6, notebooks


def test_pages_load_cleanly(site, browser):
    """Console errors, page errors, failed requests, images not loaded, broken internal links."""
    problems: list[str] = []
    ids: dict[Path, set[str]] = {}
    page = browser.new_page()
    events: list[str] = []
    page.on("console", lambda m: events.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: events.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: events.append(f"request failed: {r.url}"))
    for path in _pages(site):
        name = path.relative_to(site).as_posix()
        events.clear()
        page.goto(path.as_uri(), wait_until="load")
        # lazy images load only when scrolled to: ask for all of them, then wait
        page.evaluate("""() => Promise.all(Array.from(document.images).map(i => {
            i.loading = 'eager'; return i.complete ? null :
              new Promise(r => { i.onload = r; i.onerror = r; setTimeout(r, 5000); }); }))""")
        problems += [f"{name}: {e}" for e in events]
        bad = page.evaluate("""() => Array.from(document.images)
            .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)""")
        problems += [f"{name}: image not loaded: {src}" for src in bad]
        for href in page.evaluate("() => Array.from(document.links).map(a => a.href)"):
            url = urlparse(href)
            if url.scheme != "file":
                continue
            target = Path(unquote(url.path))
            if not target.exists():
                problems.append(f"{name}: link to a missing file: {href}")
            elif url.fragment and target.suffix == ".html":
                if url.fragment not in ids.setdefault(target, _ids(target)):
                    problems.append(f"{name}: link to a missing anchor: {href}")
    page.close()
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])


def test_explorer_slider_changes_chart(site, browser):
    page = browser.new_page()
    page.goto((site / "notebooks" / "03_kernel.html").as_uri(), wait_until="load")
    frame_el = page.locator(f'iframe[title="{EXPLORER}"]')
    assert frame_el.count() == 1, "the kernel explorer is not embedded in notebook 03's page"
    frame_el.scroll_into_view_if_needed()
    frame = frame_el.content_frame
    slider = frame.locator('input[type="range"]')
    slider.wait_for(timeout=20_000)
    assert "locality" in frame.locator(".vega-bind-name").inner_text()
    lo, hi = float(slider.get_attribute("min")), float(slider.get_attribute("max"))
    view = frame.locator(".vega-embed")

    def set_and_shoot(value: float) -> bytes:
        slider.evaluate("(el, v) => { el.value = v; "
                        "el.dispatchEvent(new Event('input', {bubbles: true})); }", str(value))
        page.wait_for_timeout(500)
        return view.screenshot()

    first, last = set_and_shoot(lo), set_and_shoot(hi)
    assert first != last, "moving the slider from its minimum to its maximum left the chart as is"
    shown = frame.locator(".vega-bind label > span").last.inner_text()  # vega's value readout
    assert abs(float(shown) - hi) < 1e-9, f"the slider shows {shown!r}, expected the locality {hi}"
    page.close()
