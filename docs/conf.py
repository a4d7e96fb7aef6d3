"""The mlops-lab site: Sphinx with MyST-NB and the book theme (`make docs`).

Strict by design: `make docs` passes -W --keep-going -n, so a broken link, a missing page, an
unresolved cross-reference or a docstring that does not parse fails the build. The labs come in
with their committed outputs (never executed here), and the API pages come from the docstrings.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(DOCS / "_ext"), str(ROOT)]

project = "mlops-lab"
author = "the mlops-lab authors"
copyright = "the mlops-lab authors, Apache-2.0"
html_title = "mlops-lab"

extensions = [
    "myst_nb",  # markdown pages and the labs' notebooks (it brings myst_parser)
    "sphinx.ext.autodoc",
    "mlops_docs",  # docs/_ext/mlops_docs.py: the labs, the maps, module contracts
]

exclude_patterns = [
    "_build",
    "_generated",
    "Thumbs.db",
    ".DS_Store",
    "**.ipynb_checkpoints",
    "README.md",
]
root_doc = "index"
templates_path: list[str] = []
html_static_path = ["_static"]
html_css_files = ["site.css"]

# The labs show what they printed when they were committed; a docs build runs no kernel.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "deflist", "attrs_inline"]
myst_heading_anchors = 3
# A link to a page that does not exist is an error under -W, not a dead link in the site.
myst_all_links_external = False

# The book theme: a sidebar of the whole site, a page outline, light and dark; no launch buttons
# and no repository buttons (a workshop room may be offline, and nothing here calls out).
html_theme = "sphinx_book_theme"
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
}
html_show_sourcelink = False
html_last_updated_fmt = None

# API pages: the signature with its types, members in source order, and no import side effects
# (every module of reference/ does nothing on import).
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}

# Cross-references: every name in reference/ must resolve (nitpicky). Names from other packages
# have no inventory offline (no intersphinx at build time), so they are named, not linked.
nitpicky = True
_STDLIB = "|".join(sorted(m for m in sys.stdlib_module_names if not m.startswith("_")))
nitpick_ignore_regex = [
    (r"py:.*", rf"({_STDLIB})\..*"),
    (
        r"py:.*",
        r"(np|numpy|pd|pandas|torch|mlflow|typer|rich|yaml|kserve|prometheus_client|"
        r"psutil|evidently|sklearn|matplotlib|pyarrow|fastapi|starlette|uvicorn|httpx|requests|"
        r"pydantic|dvc|git|jinja2|docutils|sphinx)(\..*)?",
    ),
    (
        r"py:.*",
        r"(Path|Console|Table|DataFrame|Series|ndarray|Tensor|Module|Figure|Axes|"
        r"NDArray|ArrayLike|Callable|Iterable|Iterator|Mapping|Sequence|Any)",
    ),
]
