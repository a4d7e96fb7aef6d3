"""The docs site: built strictly, then looked at in a real browser.

The build is the one `make docs` runs (sphinx-build -W --keep-going -n): a broken link, a page
outside every toctree, an unresolved cross-reference or a docstring that does not parse fails it.
It goes to a temporary folder, so a `make docs` of your own is left alone.

The built site is served on a loopback port (the standard library's http.server, as
`make docs-serve` does) and opened in the system's headless Chromium (the ``browser`` fixture of
tests/integration/conftest.py): the home page, the learning path, one lab and one module's API
page, each with its title, every image loaded, and no request beyond the site. Screenshots (the
artifacts) go to reports/docs/ (or $MLOPS_LAB_ARTIFACTS/docs/).

    .venv/bin/python -m pytest tests/integration/test_docs_site.py -q
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ARTIFACTS = Path(os.environ.get("MLOPS_LAB_ARTIFACTS") or ROOT / "reports") / "docs"
STRICT = ["-W", "--keep-going", "-n", "-q", "-b", "html"]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    pytest.importorskip(
        "myst_nb", reason="the docs toolchain is not installed (a dev dependency: make setup)"
    )
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", *STRICT, "-d", str(out / "doctrees"), str(DOCS),
         str(out / "html")],
        capture_output=True, text=True, cwd=ROOT, timeout=900,
    )  # fmt: skip
    return proc, out / "html"


def test_the_site_builds_strictly(built):
    proc, html = built
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert proc.returncode == 0, "the strict build failed:\n" + "\n".join(
        warnings or proc.stderr.splitlines()[-30:]
    )
    assert (html / "index.html").exists()


@pytest.fixture(scope="module")
def site(built):
    proc, html = built
    if proc.returncode != 0:
        pytest.fail("the site did not build (see test_the_site_builds_strictly)")
    handler = functools.partial(QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # one line per file on stderr otherwise
        pass


# page, the words its title must have, and the one thing on it that says the content is there
PAGES = [
    ("index.html", "mlops-lab", "Where to go"),
    ("learning-path.html", "learning path", "Game day"),
    ("labs/05_serving.html", "Serving with KServe", "ModelServer"),
    ("modules/train.html", "reference.train", "Contract of"),
]


@pytest.mark.parametrize("path,title,text", PAGES, ids=[p for p, _, _ in PAGES])
def test_a_page_in_a_real_browser(browser, site, path, title, text):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    offsite: list[str] = []
    page.on(
        "request", lambda r: r.url.startswith((site, "data:", "blob:")) or offsite.append(r.url)
    )
    failed: list[str] = []
    page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
    try:
        page.goto(f"{site}/{path}", wait_until="load")
        page.wait_for_load_state("networkidle")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{path.replace('/', '-')}.png"), full_page=False)
        assert title.lower() in page.title().lower(), f"{path}: title is {page.title()!r}"
        assert text in page.inner_text("article"), f"{path}: {text!r} is not on the page"
        broken = page.evaluate(
            "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
            ".map(i => i.src)"
        )
        assert broken == [], f"{path}: images that did not load: {broken}"
        assert failed == [], f"{path}: requests that failed: {failed}"
        assert offsite == [], f"{path}: the page reached beyond the site: {offsite}"
    finally:
        context.close()


def test_every_lab_page_shows_its_committed_outputs(built):
    proc, html = built
    if proc.returncode != 0:
        pytest.fail("the site did not build")
    for lab in sorted((ROOT / "labs").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(lab.read_text())["cells"]
        with_output = sum(1 for c in cells if c["cell_type"] == "code" and c.get("outputs"))
        pngs = sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))
        page = (html / "labs" / f"{lab.stem}.html").read_text()
        # as committed, not re-executed: one output block per code cell that printed something
        assert page.count('class="cell_output') == with_output, f"{lab.name}: outputs differ"
        assert page.count("<img") >= pngs, f"{lab.name}: its committed figures are missing"


# From the README, any lab, module page or concept is at most two clicks away: the README links
# it, or links a page that links it (a markdown link or a toctree entry).
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
TOCTREE = re.compile(r"```\{toctree\}\n(.*?)```", re.S)


def _links(page: Path) -> set[Path]:
    text = page.read_text()
    out = {(page.parent / m).resolve() for m in LINK.findall(text) if "://" not in m}
    for block in TOCTREE.findall(text):
        entries = [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.startswith(":")]
        for entry in entries:
            for suffix in (".md", ".ipynb"):
                out |= {p.resolve() for p in page.parent.glob(entry + suffix)}
    return out


def test_every_lab_module_and_concept_is_two_clicks_from_the_readme():
    first = _links(ROOT / "README.md")
    second = set().union(*(_links(p) for p in first if p.suffix == ".md" and p.exists()))
    reached = first | second
    # labs are pages of the site under docs/labs/ and notebooks under labs/: either counts
    reached_labs = {p.name for p in reached if p.suffix == ".ipynb"}
    targets = [p for p in sorted((DOCS / "modules").glob("*.md"))]
    targets += sorted((DOCS / "concepts").glob("*.md"))
    missing = [str(p.relative_to(ROOT)) for p in targets if p.resolve() not in reached]
    missing += [p.name for p in sorted((ROOT / "labs").glob("[0-9][0-9]_*.ipynb"))
                if p.name not in reached_labs]  # fmt: skip
    assert not missing, f"more than two clicks from README.md: {missing}"
