"""Sphinx configuration of the companion's book (``make book``; sources staged by book/build.py).

The notebooks arrive executed (``build/<profile>/*.ipynb``): myst-nb renders their stored outputs
and never runs them. Everything the pages load is local, so the site reads offline.
"""
project = "Mechanisms of Misgeneralization in Physical Sequence Modeling — companion"
author = "the companion's authors"
copyright = "2026, the companion's authors"

extensions = ["myst_nb"]
nb_execution_mode = "off"
nb_merge_streams = True
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence"]
# pages are the staged README (index), the notebooks and docs/; nothing else is a source
exclude_patterns = ["_build", "**.ipynb_checkpoints", "figures/**"]
suppress_warnings = ["mystnb.unknown_mime_type"]

html_theme = "sphinx_book_theme"
html_title = "Misgeneralization companion"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
}
# pydata-sphinx-theme logs a console error on a first visit when no colour mode is set
html_context = {"default_mode": "light"}
html_show_sourcelink = False
html_copy_source = False
