"""The upstream-churn canary: every test and every lab against the newest releases.

The lock (requirements/constraints.txt) keeps the labs green today, and hides the day the next
release breaks one. This tool builds a second environment, ``.venv-latest``, from pyproject.toml's
declared ranges *without* the lock (so pip takes the newest release each range allows; torch stays
at its exact pin), runs the unit and integration tests and every lab under nbval in it, and writes

    reports/churn/report.md     what moved (locked -> latest), what broke, the first error of each,
                                and what it could not test: newer releases of a declared dependency
                                that its range caps, or that the resolver held back (and why)
    reports/churn/report.json   the same, for tools
    reports/churn/install.log, freeze.txt, held.json, pytest.log, junit.xml   the evidence

It never touches ``.venv``. A broken test is a finding, not a crash of the tool: it exits 0 once
the report is written, unless ``--strict`` (then 1 when anything broke). docs/churn.md says how to
turn a finding into a pin bump or a fix.

    make test-latest                        # build, run, report (a few minutes install + tests)
    python3 tools/churn.py --reuse          # run again in the existing .venv-latest
    python3 tools/churn.py --report-only    # rebuild the report from the files in reports/churn
    python3 tools/churn.py --reuse -- -k evaluate tests   # pytest arguments after --

Standard library only (plus tools/deps.py), so it runs with any Python 3.11+.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from deps import (
    LOCK,
    ROOT,
    Declared,
    build_unlocked,
    declared,
    freeze,
    norm,
    parse_pins,
    project_name,
    release,
    strip_local,
    venv_python,
)

VENV = ROOT / ".venv-latest"
OUT = ROOT / "reports" / "churn"
# What `make test` runs, minus lint (style is not churn): unit, integration, every lab.
PYTEST_ARGS = ["-p", "nbval", "--nbval-lax", "--nbval-current-env", "tests", "labs"]
# The Makefile's exports: only the plugins we name, no analytics, no telemetry.
TEST_ENV = {
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
KSERVE_CRDS = ROOT.parent / "shared" / "upstream" / "kserve-crds"  # as .ci/run finds them
_ANSI = re.compile(r"(?:\x1b|#x1B)\[[0-9;]*[A-Za-z]")  # junit XML spells ESC as "#x1B"
_EXCEPTION = re.compile(
    r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Failure|Failed))(?::\s.*)?$"
)


@dataclass(frozen=True)
class Moved:
    """A package whose latest release differs from the lock (``locked`` None: new; ``latest``
    None: gone). ``declared`` is pyproject's range for a direct dependency, else ``""``."""

    name: str
    locked: str | None
    latest: str | None
    declared: str = ""
    bump: str = ""  # major, minor, patch, older, new, gone, build

    @property
    def direct(self) -> bool:
        return bool(self.declared)


@dataclass(frozen=True)
class Broken:
    """One test or lab cell that failed or errored, with the first line of its error."""

    nodeid: str
    file: str
    kind: str  # "lab" or "test"
    outcome: str  # "failed" or "error"
    error: str


@dataclass(frozen=True)
class Held:
    """A declared dependency with a newer release on the index than the one the run tested."""

    name: str
    declared: str
    tested: str
    newest: str
    why: str


@dataclass
class Counts:
    total: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0


@dataclass
class Report:
    generated: str
    python: str
    lock: str
    install_ok: bool
    install_seconds: float | None = None
    install_error: str = ""
    tests_seconds: float | None = None
    pytest_exit: int | None = None
    tests_error: str = ""
    counts: Counts = field(default_factory=Counts)
    moved: list[Moved] = field(default_factory=list)
    broken: list[Broken] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.install_ok and self.pytest_exit == 0 and not self.broken


# ---- what moved ---------------------------------------------------------------------------------


def _bump(locked: str, latest: str) -> str:
    old, new = release(locked), release(latest)
    if old == new:
        return "build"  # a pre/post/dev release or a local tag of the same release
    if new < old:
        return "older"
    for position, (a, b) in enumerate(zip(old, new, strict=False)):
        if a != b:
            return ("major", "minor", "patch")[min(position, 2)]
    return "patch"  # 1.2.3 -> 1.2.3.1


def diff_pins(
    locked: dict[str, tuple[str, str]],
    latest: dict[str, tuple[str, str]],
    direct: Sequence[Declared] = (),
) -> list[Moved]:
    """Every package whose version differs between the lock and the latest environment.

    Both maps come from :func:`deps.parse_pins`. Local build tags (torch's ``+cpu``) are not a
    move. Direct dependencies come first, then the rest, each by name.
    """
    ranges = {d.key: d.spec for d in direct}
    moved = []
    for key in sorted(locked.keys() | latest.keys()):
        name, old = locked.get(key, (None, None))
        latest_name, new = latest.get(key, (None, None))
        name = latest_name or name
        if old is not None and new is not None and strip_local(old) == strip_local(new):
            continue
        bump = "new" if old is None else "gone" if new is None else _bump(old, new)
        moved.append(Moved(name, old, new, ranges.get(key, ""), bump))
    return sorted(moved, key=lambda m: (not m.direct, norm(m.name)))


# ---- what it could not test --------------------------------------------------------------------


def capped_by(spec: str, version: str) -> str | None:
    """The clause of a declared range that ``version`` falls outside of, or None.

    Only the clauses that cap a range from above matter here (``<``, ``<=``, ``==``, ``~=``):
    a release newer than the tested one can only be ruled out by those.
    """
    for clause in spec.split(";", 1)[0].split(","):
        match = re.match(r"\s*(===|==|<=|<|~=)\s*(\S+)", clause)
        if not match:
            continue
        op, bound = match.groups()
        new, limit = release(version), release(bound.removesuffix(".*"))
        if op == "<" and new >= limit:
            return clause.strip()
        if op == "<=" and new > limit:
            return clause.strip()
        if op in ("==", "===") and (
            new[: len(limit)] != limit
            if bound.endswith(".*")
            else strip_local(version) != strip_local(bound)
        ):
            return clause.strip()
        if op == "~=" and new[: len(limit) - 1] != limit[:-1]:
            return clause.strip()
    return None


def _pip(venv: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("PIP_CONSTRAINT", None)
    return subprocess.run(
        [str(venv_python(venv)), "-m", "pip", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


def newest_release(venv: Path, name: str) -> str | None:
    """The newest final release of ``name`` on the package index (``pip index versions``)."""
    try:
        proc = _pip(venv, "index", "versions", name, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"^\S+ \(([^)]+)\)", proc.stdout, re.MULTILINE)
    return match.group(1) if proc.returncode == 0 and match else None


def _resolver_reason(venv: Path, name: str, version: str) -> str:
    """Why pip did not take ``name==version``: a dry-run install of the project with it."""
    try:
        proc = _pip(
            venv,
            "install",
            "--dry-run",
            "--no-input",
            "-e",
            ".[dev]",
            f"{name}=={version}",
            timeout=600,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"the resolver held it back (a dry run to say why failed: {e})"
    if proc.returncode == 0:
        return "the resolver preferred another combination (a dry run with it succeeds)"
    return f"the resolver held it back: {pip_refusal(proc.stdout + proc.stderr)}"


def pip_refusal(output: str) -> str:
    """The sentence in pip's output that says why it would not install: the conflicting
    requirements, or the distribution that does not exist (yet), or its first error."""
    lines = [line.strip() for line in output.splitlines()]
    if "The conflict is caused by:" in lines:
        cause = lines[lines.index("The conflict is caused by:") + 1 :]
        cause = cause[: cause.index("")] if "" in cause else cause
        project = project_name()
        others = [
            line
            for line in cause
            if "depends on" in line and not line.startswith((project, norm(project)))
        ]
        return "; ".join(others[:2]) or "conflicting versions"
    errors = [
        line.removeprefix("ERROR:").strip()
        for line in lines
        if line.startswith("ERROR:") and "yanked" not in line
    ]
    missing = [e for e in errors if e.startswith("No matching distribution found")]
    reason = (missing or errors or ["see pip's output"])[0]
    return re.sub(r"\s*\(from versions:.*\)$", "", reason)


def held_back(
    venv: Path, freeze_text: str, direct: Sequence[Declared], max_dry_runs: int = 5
) -> list[Held]:
    """Declared dependencies whose newest release on the index is not the one tested, and why:
    the declared range caps it, or the resolver could not take it (say, one of its own
    requirements is not released yet). One ``pip index versions`` look-up per declared
    dependency; a dry-run install for each one the resolver held back (at most ``max_dry_runs``).
    """
    installed = parse_pins(freeze_text)
    held = []
    for dep in direct:
        tested = installed.get(dep.key, ("", ""))[1]
        newest = newest_release(venv, dep.name)
        if not tested or not newest or release(newest) <= release(strip_local(tested)):
            continue
        cap = capped_by(dep.spec, newest)
        if cap:
            why = f"the range caps it ({cap})"
        elif max_dry_runs > 0:
            max_dry_runs -= 1
            why = _resolver_reason(venv, dep.name, newest)
        else:
            why = "the resolver held it back"
        held.append(Held(dep.name, dep.spec, strip_local(tested), newest, why))
    return held


# ---- what broke ---------------------------------------------------------------------------------


def first_error(message: str, text: str) -> str:
    """The line that says what went wrong, from a junit failure's message and text.

    pytest marks its error lines with ``E``: take the first. nbval prints the notebook's own
    traceback: take its last exception line (the one that was raised). An output mismatch has
    neither: say which cell differs and in what.
    """
    message, text = _ANSI.sub("", message or ""), _ANSI.sub("", text or "")
    lines = [line.strip() for line in f"{text}\n{message}".splitlines()]
    pytest_lines = [line[1:].strip() for line in lines if line.startswith("E ")]
    if pytest_lines:
        return pytest_lines[0]
    raised = [line for line in lines if _EXCEPTION.match(line)]
    if raised:
        return raised[-1]
    useful = [
        line
        for line in lines
        if line and line != "Notebook cell execution failed" and not line.startswith("Input:")
    ]
    differs = next((line for line in useful if "outputs differ" in line), None)
    mismatch = next((line for line in useful if line.startswith("mismatch")), None)
    if differs:
        return f"{differs} ({mismatch})" if mismatch else differs
    return useful[0] if useful else "(no message)"


def _nodeid(case: ET.Element) -> tuple[str, str]:
    """(nodeid, file) of a junit testcase written with pytest's xunit1 family (it has ``file``)."""
    file = case.get("file") or ""
    name = case.get("name", "")
    classname = case.get("classname", "")
    module = file.removesuffix(".py").replace("/", ".")
    if file and classname.startswith(module + "."):
        return f"{file}::{classname[len(module) + 1 :].replace('.', '::')}::{name}", file
    if file:
        return f"{file}::{name}", file
    return (f"{classname}::{name}" if classname else name), classname.replace(".", "/")


def parse_junit(path: Path) -> tuple[Counts, list[Broken]]:
    """Totals and every failed or errored case in a pytest junit XML file."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    counts = Counts()
    for suite in suites:
        counts.total += int(suite.get("tests", 0))
        counts.failed += int(suite.get("failures", 0))
        counts.errors += int(suite.get("errors", 0))
        counts.skipped += int(suite.get("skipped", 0))
    counts.passed = counts.total - counts.failed - counts.errors - counts.skipped
    broken = []
    for case in root.iter("testcase"):
        for outcome, tag in (("failed", "failure"), ("error", "error")):
            for problem in case.findall(tag):
                nodeid, file = _nodeid(case)
                kind = "lab" if file.endswith(".ipynb") else "test"
                error = first_error(problem.get("message", ""), problem.text or "")
                broken.append(Broken(nodeid, file, kind, outcome, error))
    return counts, broken


# ---- running it ---------------------------------------------------------------------------------


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_tests(venv: Path, out: Path, pytest_args: Sequence[str]) -> int:
    """Run pytest in ``venv`` with junit XML; its output goes to the terminal and pytest.log."""
    env = dict(os.environ) | TEST_ENV
    env["PATH"] = f"{venv_python(venv).parent}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env.pop("PYTHONHOME", None)
    if KSERVE_CRDS.is_dir():
        env.setdefault("KSERVE_CRDS_DIR", str(KSERVE_CRDS))
    cmd = [
        str(venv_python(venv)),
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",  # leave .pytest_cache (the pinned run's last failures) alone
        "-o",
        "junit_family=xunit1",  # keeps each case's file
        f"--junitxml={out / 'junit.xml'}",
        *pytest_args,
    ]
    with tempfile.TemporaryDirectory(prefix="churn-") as workspace:
        env.setdefault("MLOPS_LAB_WORKSPACE", str(Path(workspace) / "workspace"))  # as .ci/run
        with (out / "pytest.log").open("w") as log:
            log.write(f"$ {' '.join(cmd)}\n")
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                log.write(line)
            return proc.wait()


def build_report(
    out: Path,
    lock_text: str,
    freeze_text: str | None,
    install_ok: bool,
    pytest_exit: int | None,
    timings: dict[str, float],
    python: str = "",
) -> Report:
    """Read the evidence in ``out`` (junit.xml, the logs) and say what moved and what broke."""
    project = [project_name()]
    report = Report(
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        python=python or platform.python_version(),
        lock=str(LOCK.relative_to(ROOT)),
        install_ok=install_ok,
        install_seconds=timings.get("install"),
        tests_seconds=timings.get("tests"),
        pytest_exit=pytest_exit,
    )
    if freeze_text is not None:
        report.moved = diff_pins(
            parse_pins(lock_text, skip=project), parse_pins(freeze_text, skip=project), declared()
        )
    with contextlib.suppress(OSError, ValueError, TypeError):  # not looked up: no section
        report.held = [Held(**h) for h in json.loads((out / "held.json").read_text())]
    if not install_ok:
        report.install_error = _tail(out / "install.log") or "the install failed (no log)"
        return report
    junit = out / "junit.xml"
    if junit.exists():
        report.counts, report.broken = parse_junit(junit)
    if pytest_exit not in (0, 1) or not junit.exists():
        report.tests_error = (
            f"pytest exited {pytest_exit} (2: interrupted, 3: internal error, 4: usage, "
            f"5: no tests)\n" + _tail(out / "pytest.log")
        )
    return report


# ---- writing it ---------------------------------------------------------------------------------


def _cell(text: str, width: int = 220) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value / 60:.1f} min" if value >= 120 else f"{value:.0f} s"


def render_markdown(report: Report) -> str:
    """The report as Markdown: the verdict, what moved, what broke, the first error of each."""
    counts = report.counts
    labs = [b for b in report.broken if b.kind == "lab"]
    tests = [b for b in report.broken if b.kind == "test"]
    direct = [m for m in report.moved if m.direct]
    transitive = [m for m in report.moved if not m.direct]
    lines = [
        "# Upstream churn report",
        "",
        f"Generated {report.generated} with Python {report.python}: the newest releases that "
        f"pyproject.toml's ranges allow, in `.venv-latest`, against the lock `{report.lock}`.",
        "",
        "## Verdict",
        "",
    ]
    if not report.install_ok:
        lines += [
            "**The environment did not build**: pip could not install the declared ranges "
            "without the lock. Nothing was tested. The end of `install.log`:",
            "",
            "```",
            report.install_error,
            "```",
        ]
    else:
        broken_labs = sorted({b.file for b in labs})
        verdict = (
            "**Nothing broke.**"
            if not report.broken and not report.tests_error
            else f"**{len(tests)} test(s) and {len(broken_labs)} lab(s) broke.**"
        )
        lines += [
            f"{verdict} {counts.passed} passed, {counts.failed} failed, {counts.errors} errors, "
            f"{counts.skipped} skipped, of {counts.total} (tests and lab cells). "
            f"{len(report.moved)} package(s) moved, {len(direct)} of them declared in "
            f"pyproject.toml."
            + (
                f" {len(report.held)} newer release(s) of declared dependencies were not tested "
                "(see *Held back*)."
                if report.held
                else ""
            ),
        ]
        if report.tests_error:
            lines += ["", "```", report.tests_error, "```"]
    lines += [
        "",
        f"Time: install {_seconds(report.install_seconds)}, "
        f"tests and labs {_seconds(report.tests_seconds)}.",
        "",
        "## What broke",
        "",
    ]
    if labs:
        lines += [
            "### Labs",
            "",
            "| lab | cells failed | first failing cell | first error |",
            "|---|---|---|---|",
        ]
        for file in sorted({b.file for b in labs}):
            cells = [b for b in labs if b.file == file]
            first = cells[0]
            lines.append(
                f"| `{file}` | {len(cells)} | {_cell(first.nodeid.split('::')[-1])} "
                f"| {_cell(first.error)} |"
            )
        lines.append("")
    if tests:
        lines += ["### Tests", "", "| test | outcome | first error |", "|---|---|---|"]
        lines += [f"| `{_cell(b.nodeid, 160)}` | {b.outcome} | {_cell(b.error)} |" for b in tests]
        lines.append("")
    if not labs and not tests:
        lines += ["Nothing." if report.install_ok else "Not tested: the install failed.", ""]
    lines += ["## What moved", ""]
    if not report.moved:
        lines += ["Nothing: the newest releases are the locked ones.", ""]
    if direct:
        lines += [
            "### Declared in pyproject.toml",
            "",
            "| package | range | locked | latest | bump |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {m.name} | `{m.declared}` | {m.locked or '-'} | {m.latest or '-'} | {m.bump} |"
            for m in direct
        ]
        lines.append("")
    if transitive:
        lines += [
            "<details>",
            f"<summary>{len(transitive)} transitive package(s)</summary>",
            "",
            "| package | locked | latest | bump |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {m.name} | {m.locked or '-'} | {m.latest or '-'} | {m.bump} |" for m in transitive
        ]
        lines += ["", "</details>", ""]
    if report.held:
        lines += [
            "## Held back: newer releases this run did not test",
            "",
            "A cap in a range, or a release the resolver could not take, hides churn from this "
            "canary as well as from the lock. Each one is a decision to revisit.",
            "",
            "| package | range | tested | newest | why |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {h.name} | `{h.declared}` | {h.tested} | {h.newest} | {_cell(h.why)} |"
            for h in report.held
        ]
        lines.append("")
    lines += [
        "## What to do",
        "",
        "See docs/churn.md: a release that breaks nothing becomes a lock refresh (`make lock`, "
        "then `make test`); one that breaks a test or a lab becomes a fix in `reference/` or the "
        "lab, or an upper bound in pyproject.toml with a note saying why. The evidence is beside "
        "this file: install.log, freeze.txt, pytest.log, junit.xml.",
        "",
    ]
    return "\n".join(lines)


def write_report(report: Report, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = asdict(report) | {"ok": report.ok}
    (out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "report.md").write_text(render_markdown(report))


# ---- the command line ---------------------------------------------------------------------------


def _python_version(venv: Path) -> str:
    try:
        return subprocess.run(
            [str(venv_python(venv)), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tools/churn.py",
        description=__doc__.split("\n\n")[0],
        epilog="Arguments after -- go to pytest instead of the default: " + " ".join(PYTEST_ARGS),
    )
    parser.add_argument(
        "--venv", type=Path, default=VENV, help="the environment to build (default .venv-latest)"
    )
    parser.add_argument(
        "--out", type=Path, default=OUT, help="where the report goes (default reports/churn)"
    )
    parser.add_argument(
        "--python", default=sys.executable, help="the interpreter that creates the venv"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--reuse", action="store_true", help="test in the existing venv, no install")
    mode.add_argument(
        "--report-only", action="store_true", help="only rebuild the report from --out's files"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when anything broke (for a scheduled job)"
    )
    parser.add_argument(
        "--no-index",
        action="store_true",
        help="skip looking up newer releases than the tested ones (the 'held back' section)",
    )
    parser.add_argument("pytest_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    venv, out = args.venv.absolute(), args.out.absolute()
    if venv == (ROOT / ".venv").absolute():
        parser.error("the churn canary never touches .venv: pick another --venv")
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    install_ok = True
    pytest_exit: int | None = None

    if not args.report_only:
        if args.reuse:
            if not venv_python(venv).exists():
                parser.error(f"--reuse: {venv} has no environment yet; run without --reuse")
        else:
            print(f"churn: building {venv.name} from pyproject.toml's ranges, no lock ...")
            started = time.monotonic()
            try:
                build_unlocked(venv, args.python, out / "install.log")
            except subprocess.CalledProcessError as e:
                install_ok = False
                print(f"churn: the install failed ({e}); see {out / 'install.log'}")
            timings["install"] = time.monotonic() - started
        if install_ok:
            frozen = freeze(venv)
            (out / "freeze.txt").write_text(frozen)
            if args.no_index:
                (out / "held.json").unlink(missing_ok=True)
            else:
                print("churn: looking up the newest release of each declared dependency ...")
                held = held_back(venv, frozen, declared())
                (out / "held.json").write_text(json.dumps([asdict(h) for h in held], indent=2))
            (out / "junit.xml").unlink(missing_ok=True)
            print(f"churn: running the tests and labs in {venv.name} ...")
            started = time.monotonic()
            pytest_exit = run_tests(venv, out, args.pytest_args or PYTEST_ARGS)
            timings["tests"] = time.monotonic() - started
        (out / "run.json").write_text(
            json.dumps({"install_ok": install_ok, "pytest_exit": pytest_exit, "timings": timings})
        )
    else:
        try:
            run = json.loads((out / "run.json").read_text())
        except (OSError, json.JSONDecodeError):
            parser.error(f"--report-only: no run recorded in {out}; run without it first")
        install_ok, pytest_exit, timings = run["install_ok"], run["pytest_exit"], run["timings"]

    freeze_path = out / "freeze.txt"
    report = build_report(
        out,
        LOCK.read_text(),
        freeze_path.read_text() if install_ok and freeze_path.exists() else None,
        install_ok,
        pytest_exit,
        timings,
        python=_python_version(venv),
    )
    write_report(report, out)
    print(
        f"churn: {len(report.moved)} package(s) moved, {len(report.broken)} test(s) or lab "
        f"cell(s) broke; report: {out / 'report.md'}"
    )
    return 1 if args.strict and not report.ok else 0


if __name__ == "__main__":
    sys.exit(main())
