"""The labs in a real browser: lab 00 runs from JupyterLab's menus, every lab renders, the terminal
has the project's command line.

JupyterLab starts here the way `make lab` starts it: `jupyter lab` from this environment on the
real labs/ folder (the notebooks find the repository from their working directory, so a copy
elsewhere would not run), on loopback with a token (a random one, on a free port), with the
project's settings (tools/jupyterlab/overrides.json: no news feed, no update check), the Makefile's
flags (LAB_FLAGS; a test below keeps the two in step) and this environment's bin/ first on PATH.
Jupyter's config, data and runtime dirs are fresh temporary ones, so your own JupyterLab settings
and workspaces neither leak in nor change.

The browser is the system's headless Chromium (Debian's `chromium` package, or the binary named by
MLOPS_LAB_CHROMIUM), driven by Playwright's Python package: no browser download, never
`playwright install` (the ``browser`` fixture of tests/integration/conftest.py). Without either,
the tests skip and say how to get it.

Nothing under labs/ changes: this server also has autosave off and keeps the checkpoint it makes
of each notebook it opens in a temporary folder, the tests never save, and each test fails if
JupyterLab saved a file or a file under labs/ appeared or changed (.ipynb_checkpoints, a saved
notebook). Lab 00 writes only what it writes under nbval too.

Screenshots (the artifacts) go to reports/browser/ at the repository root (reports/ is
git-ignored), or to $MLOPS_LAB_ARTIFACTS/browser/ when that is set: lab00-run-all.png after the
run, <lab>.png for each lab opened, terminal.png; a failing test leaves <test>-failed.png, taken
as it failed.

    .venv/bin/python -m pytest tests/integration/test_lab_browser.py -q
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LABS = ROOT / "labs"
LAB00 = LABS / "00_start_here.ipynb"
OTHER_LABS = sorted(p for p in LABS.glob("[0-9][0-9]_*.ipynb") if p != LAB00)
SETTINGS = ROOT / "tools" / "jupyterlab" / "overrides.json"
ARTIFACTS = Path(os.environ.get("MLOPS_LAB_ARTIFACTS") or ROOT / "reports") / "browser"

# What `make lab` gives JupyterLab beyond its defaults, minus what only a person at a desk needs
# (a browser tab, port 8888); test_make_lab_starts_jupyterlab_with_these_flags checks the Makefile.
LAB_FLAGS = [
    "--ip=127.0.0.1",
    "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
]
# This server's settings on top of the project's: it never writes a notebook back.
TEST_SETTINGS = {"@jupyterlab/docmanager-extension:plugin": {"autosave": False}}
START_TIMEOUT_S = 120  # two shared cores: the server, a kernel and Chromium all start at once
RUN_ALL_TIMEOUT_S = 300  # lab 00 runs in 3-6 s here from the menu, about 30 s on a slow laptop
OPEN_TIMEOUT_S = 90
LOCAL = ("data:", "blob:", "about:")  # what a page loads without a request out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder``: a hash for a file, "dir" for a folder."""
    return {
        str(p.relative_to(folder)): "dir"
        if p.is_dir()
        else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
    }


def _makefile_recipe(target: str) -> str:
    makefile = (ROOT / "Makefile").read_text()
    return makefile.split(f"\n{target}:")[1].split("\n\n")[0]


# ---- the Makefile and this test start the same JupyterLab (no browser needed) ------------------


def test_make_lab_starts_jupyterlab_with_these_flags():
    recipe = " ".join(_makefile_recipe("lab").replace("\\\n", " ").split())
    for flag in LAB_FLAGS:
        assert flag in recipe, f"make lab lacks {flag}, which this test starts JupyterLab with"
    assert 'PATH="$(CURDIR)/$(BIN):$$PATH"' in recipe  # the venv's bin first: `mlops-lab` works
    # the terminal: the user's shell, not a login shell (whose /etc/profile resets PATH)
    assert "--ServerApp.terminado_settings=shell_command=" in recipe
    assert "--notebook-dir=labs" in recipe and recipe.endswith("labs/00_start_here.ipynb")
    assert "0.0.0.0" not in recipe and "token=" not in recipe and "password" not in recipe
    assert "--allow-root" in recipe  # as root only: the recipe says $(if ... id -u ...)
    # make setup installs the same settings file into the venv, for every .venv/bin/jupyter lab
    makefile = (ROOT / "Makefile").read_text()
    assert "LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json" in makefile
    assert "$(LAB_SETTINGS): tools/jupyterlab/overrides.json" in makefile
    assert re.search(r"^setup: .*\$\(LAB_SETTINGS\)", makefile, re.M)


def test_the_settings_turn_off_the_news_and_the_update_check():
    settings = json.loads(SETTINGS.read_text())
    notification = settings["@jupyterlab/apputils-extension:notification"]
    assert notification == {"fetchNews": "false", "checkForUpdates": False}
    # the names are the installed JupyterLab's, where it has them
    schemas = Path(sys.prefix) / "share/jupyter/lab/schemas"
    for plugin, values in settings.items():
        package, _, name = plugin.partition(":")
        schema_file = schemas / package / f"{name}.json"
        if schema_file.is_file():
            assert set(values) <= set(json.loads(schema_file.read_text())["properties"]), plugin


# ---- the server and the browser ----------------------------------------------------------------


@dataclass
class Lab:
    """A running JupyterLab: its base URL, token, log, and REST calls to it."""

    url: str
    token: str
    log: Path
    proc: subprocess.Popen

    def api(self, path: str, method: str = "GET") -> object:
        request = urllib.request.Request(f"{self.url}{path}", method=method)
        request.add_header("Authorization", f"token {self.token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop_kernels_and_terminals(self) -> None:
        for session in self.api("/api/sessions"):
            self.api(f"/api/sessions/{session['id']}", "DELETE")
        for kernel in self.api("/api/kernels"):
            self.api(f"/api/kernels/{kernel['id']}", "DELETE")
        for terminal in self.api("/api/terminals"):
            self.api(f"/api/terminals/{terminal['name']}", "DELETE")


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Lab]:
    """JupyterLab on the real labs/, as `make lab` starts it; stopped (kernels too) afterwards."""
    home = tmp_path_factory.mktemp("jupyter")
    settings = home / "settings"
    settings.mkdir()
    overrides = json.loads(SETTINGS.read_text())
    for plugin, values in TEST_SETTINGS.items():
        overrides.setdefault(plugin, {}).update(values)
    (settings / "overrides.json").write_text(json.dumps(overrides, indent=2))
    token = secrets.token_hex(24)
    port = _free_port()
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        JUPYTER_TOKEN=token,  # in the environment, not on the command line: ps shows that
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
    )
    argv = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        *LAB_FLAGS,
        f"--ServerApp.root_dir={LABS}",
        f"--ServerApp.terminado_settings=shell_command={os.environ.get('SHELL') or '/bin/sh'}",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--no-browser",
        f"--LabApp.app_settings_dir={settings}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: read the cells' models
        # JupyterLab checkpoints a notebook when it opens it: here, not in labs/.ipynb_checkpoints
        f"--FileCheckpoints.checkpoint_dir={home / 'checkpoints'}",
    ]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    log = home / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Lab(f"http://127.0.0.1:{port}", token, log, proc)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                server.api("/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer in {START_TIMEOUT_S} s")
                time.sleep(0.5)
        yield server
    finally:
        with contextlib.suppress(urllib.error.URLError, OSError):
            server.stop_kernels_and_terminals()
        proc.terminate()  # SIGTERM: JupyterLab shuts its kernels down and exits
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def context(browser):
    """One browser context for the module: JupyterLab's static files load once, from its cache."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(OPEN_TIMEOUT_S * 1000)
    yield context
    context.close()


@pytest.fixture
def page(context, lab, request):
    """A fresh page, and afterwards the checks every test shares.

    Every request the page makes must stay on the lab's server, the page must ask for no news and
    pop nothing up, JupyterLab must have saved nothing, and labs/ must be as it was;
    <test>-failed.png when the test failed.
    """
    before = _snapshot(LABS)
    saves_before = lab.log.read_text(errors="replace").count("Saving file at")
    failures_before = request.session.testsfailed
    page = context.new_page()
    offsite, asked = [], []
    page.on("request", lambda r: r.url.startswith(LOCAL + (lab.url,)) or offsite.append(r.url))
    # the page never asks its server for the news or for an update (the settings say so)
    quiet = (f"{lab.url}/lab/api/news", f"{lab.url}/lab/api/update")
    page.on("request", lambda r: r.url.startswith(quiet) and asked.append(r.url))
    try:
        yield page
    finally:
        # the call's report is logged before teardown starts: a failure has been counted
        if request.session.testsfailed > failures_before:
            _screenshot(page, f"{request.node.name}-failed")
        # no pop-up: without the settings, "Would you like to get notified about ... news?"
        toasts = page.locator(".Toastify__toast").all_inner_texts()
        page.close()  # without saving: JupyterLab's "unsaved changes?" never asks
        lab.stop_kernels_and_terminals()
    assert offsite == [], f"the page reached beyond JupyterLab: {offsite}"
    assert asked == [], f"the page asked for news or updates: {asked}"
    assert toasts == [], f"JupyterLab popped up: {toasts}"
    saves = lab.log.read_text(errors="replace").count("Saving file at") - saves_before
    assert saves == 0, f"JupyterLab saved a file:\n{lab.log_tail()}"
    after = _snapshot(LABS)
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    assert changed == [], (
        f"labs/ changed during the test (or someone edited it meanwhile): {changed}"
    )


def _screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# ---- in the page ------------------------------------------------------------------------------

# The notebook panel that shows `path`: its kernel's state and every cell, from JupyterLab's own
# models (window.jupyterapp) and from what the page shows (the prompts, the rendered outputs).
_CELLS_JS = """(path) => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!w || !w.context || w.context.path !== path || !w.content.model) return null;
  const session = w.sessionContext.session;
  const cells = [];
  w.content.widgets.forEach((cell, i) => {
    const m = cell.model;
    const outputs = m.type === 'code' ? Array.from({length: m.outputs.length}, (_, j) => m.outputs.get(j)) : [];
    const stderr = Array.from(cell.node.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'));
    const prompt = cell.node.querySelector('.jp-InputPrompt');
    cells.push({
      index: i,
      type: m.type,
      source: m.sharedModel.getSource(),
      tags: m.getMetadata('tags') || [],
      count: m.type === 'code' ? m.executionCount : null,
      prompt: prompt ? prompt.textContent.trim() : '',
      errors: outputs.filter(o => o.type === 'error').map(o => {
        const j = o.toJSON(); return `${j.ename}: ${j.evalue}`; }),
      tracebacks: stderr.filter(e => e.textContent.includes('Traceback')).length,
      headings: Array.from(cell.node.querySelectorAll(
        '.jp-RenderedMarkdown h1, .jp-RenderedMarkdown h2, .jp-RenderedMarkdown h3')).map(
        h => h.textContent.replace(/\\u00b6$/, '').trim()),
    });
  });
  const indicator = w.node.querySelector('.jp-Notebook-ExecutionIndicator');
  return {
    kernel: session && session.kernel ? {name: session.kernel.name, status: session.kernel.status} : null,
    kernelDisplayName: w.sessionContext.kernelDisplayName,
    indicator: indicator ? indicator.dataset.status : null,
    dialogs: Array.from(document.querySelectorAll('.jp-Dialog')).map(d => d.textContent.trim()),
    cells: cells,
  };
}"""


def _cells(page, path: str) -> dict | None:
    return page.evaluate(_CELLS_JS, path)


def _wait(page, what: str, done: Callable[[], object], timeout_s: float) -> object:
    """Poll ``done()`` until it returns something truthy; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = done()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen in {timeout_s:g} s")
        page.wait_for_timeout(250)


def _open(page, lab: Lab, notebook: Path) -> dict:
    """Open ``notebook`` in a fresh JupyterLab workspace; wait for its cells and its kernel.

    Fails when a dialog opens instead (a kernel to select, a file that does not load).
    """
    name = notebook.name
    page.goto(f"{lab.url}/lab/workspaces/{notebook.stem}/tree/{name}?reset&token={lab.token}")

    def ready() -> dict | None:
        state = _cells(page, name)
        if state is None:
            dialogs = page.locator(".jp-Dialog").all_inner_texts()
            return {"dialogs": dialogs, "cells": []} if dialogs else None
        if state["dialogs"]:
            return state
        kernel = state["kernel"]
        if state["cells"] and kernel and kernel["status"] == "idle":
            return state
        return None

    state = _wait(page, f"{name}: cells shown and the kernel idle", ready, OPEN_TIMEOUT_S)
    try:
        spec = json.loads(notebook.read_text())["metadata"].get("kernelspec", {})
    except ValueError:
        spec = {}  # JupyterLab says what is wrong with the file: the dialog below
    for dialog in state["dialogs"]:
        if "Select Kernel" in dialog:
            pytest.fail(
                f"{name} asks to select a kernel: its kernelspec {spec.get('name')!r} "
                f"({spec.get('display_name')!r}) is not one this environment has "
                f"(make setup installs 'mlops-lab'). The dialog: {dialog[:300]!r}"
            )
        pytest.fail(f"{name}: JupyterLab shows a dialog instead of the notebook: {dialog[:300]!r}")
    # the project's kernel: the one the notebook names, started from this environment
    assert state["kernel"]["name"] == spec.get("name"), (name, state["kernel"], spec)
    kernelspec = lab.api("/api/kernelspecs")["kernelspecs"][spec["name"]]["spec"]
    interpreter = kernelspec["argv"][0]
    # "python" is the interpreter that runs the server (this one); an absolute path, one in this env
    assert interpreter == "python" or Path(interpreter).parent == Path(sys.executable).parent, (
        f"{name}: kernel {spec['name']!r} runs {interpreter}, not this environment's Python"
    )
    return state


def _assert_renders(notebook: Path, state: dict) -> None:
    cells = json.loads(notebook.read_text())["cells"]
    assert len(state["cells"]) == len(cells), f"{notebook.name}: not every cell is shown"
    first = state["cells"][0]
    assert first["type"] == "markdown" and first["headings"], (
        f"{notebook.name}: the first cell shows no heading: {first['source'][:80]!r}"
    )
    title = next(line for line in first["source"].splitlines() if line.startswith("#"))
    assert first["headings"][0] == title.lstrip("#").strip(), (first["headings"], title)


def _click_menu(page, *path: str) -> None:
    """Click through the main menu, e.g. ("Run", "Run All Cells")."""
    top, *items = path
    page.locator(".lm-MenuBar-item").filter(
        has=page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(top)}$"))
    ).click()
    for item in items:
        page.locator(".lm-Menu-item").filter(
            has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$"))
        ).first.click()


# ---- the tests --------------------------------------------------------------------------------


def test_lab_00_runs_every_cell_from_the_menu_without_an_error(page, lab):
    name = LAB00.name
    state = _open(page, lab, LAB00)
    _assert_renders(LAB00, state)
    # clear the committed outputs first: every output and count checked below is this run's
    _click_menu(page, "Edit", "Clear Outputs of All Cells")
    _wait(
        page,
        "clearing the outputs",
        lambda: all(c["count"] is None for c in _cells(page, name)["cells"]),
        30,
    )
    started = time.monotonic()
    _click_menu(page, "Run", "Run All Cells")
    code = [c["index"] for c in state["cells"] if c["type"] == "code" and c["source"].strip()]

    def finished() -> dict | None:
        state = _cells(page, name)
        cells, kernel = state["cells"], state["kernel"]
        if not kernel or kernel["status"] != "idle" or any(c["prompt"] == "[*]:" for c in cells):
            return None
        stopped = any(c["errors"] and "raises-exception" not in c["tags"] for c in cells)
        return state if stopped or all(cells[i]["count"] for i in code) else None

    state = _wait(page, f"{name}: Run All Cells to finish", finished, RUN_ALL_TIMEOUT_S)
    took = time.monotonic() - started
    shot = _screenshot(page, "lab00-run-all")
    print(f"\n{name}: Run All Cells took {took:.1f} s; screenshot {shot}")
    cells = state["cells"]
    unexpected = {
        c["index"]: c["errors"] or f"{c['tracebacks']} traceback(s) on stderr"
        for c in cells
        if (c["errors"] or c["tracebacks"]) and "raises-exception" not in c["tags"]
    }
    assert unexpected == {}, f"{name}: error outputs in cells (index: error): {unexpected}"
    not_run = [i for i in code if not cells[i]["count"]]
    assert not_run == [], f"{name}: cells without an execution count: {not_run}"
    counts = [cells[i]["count"] for i in code]
    assert counts == sorted(set(counts)), f"{name}: cells ran out of order: {counts}"
    assert all(cells[i]["prompt"] == f"[{cells[i]['count']}]:" for i in code)  # as the page shows


@pytest.mark.parametrize("notebook", OTHER_LABS, ids=[p.stem for p in OTHER_LABS])
def test_every_lab_opens_with_its_cells_and_the_project_kernel(page, lab, notebook):
    state = _open(page, lab, notebook)
    _assert_renders(notebook, state)
    _screenshot(page, notebook.stem)


def test_the_terminal_has_the_project_cli_and_opens_at_the_repository_root(page, lab, tmp_path):
    """File > New > Terminal, from the file browser's top (labs/): the shell starts in the server's
    working directory (jupyter_server_terminals resolves the browser's "" against it), which for
    `make lab` is the repository root, and finds this environment's `mlops-lab` on PATH."""
    out = tmp_path / "terminal.txt"
    page.goto(f"{lab.url}/lab/workspaces/terminal?reset&token={lab.token}")
    page.locator(".jp-Launcher").first.wait_for()
    _click_menu(page, "File", "New", "Terminal")
    terminal = page.locator(".jp-Terminal")
    terminal.wait_for()
    _wait(page, "the terminal to connect", lambda: lab.api("/api/terminals"), 30)
    terminal.click()
    # the shell writes where it is and which mlops-lab it finds to a file: no screen scraping
    page.keyboard.type(f'printf "%s\\n" "$PWD" "$(command -v mlops-lab)" > {out}')
    page.keyboard.press("Enter")
    _wait(page, "the terminal to run a command", lambda: out.exists() and out.read_text(), 30)
    _screenshot(page, "terminal")
    cwd, cli = out.read_text().splitlines()
    assert Path(cwd).resolve() == ROOT.resolve(), f"the terminal opened in {cwd}"
    assert Path(cli) == Path(sys.executable).parent / "mlops-lab", (
        f"the terminal's mlops-lab is {cli!r}, not this environment's"
    )
