"""The mistakes a learner makes at the command line, as a table: each gets a message, no traceback.

Each row: what the learner typed, the state their workspace was in, words the message must
hold, and the exit code. The states are the ones a learner is in: a fresh workspace (nothing
yet), one before the first pipeline run (`mlops-lab init`), one with a champion, a port that
something else holds, a workspace that cannot be written, corrupt files. Every command appears
at least once. Each row runs the real `mlops-lab` in a process of its own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.fault]

CLI = str(Path(sys.executable).parent / "mlops-lab")
ROOT = Path(__file__).resolve().parents[2]
NEEDS_PIPELINE = "run `mlops-lab pipeline` first"

# (id, state, argv, words the output must hold, exit code)
MISTAKES = [
    # --- a fresh workspace: nothing has run yet
    ("status-fresh", "fresh", ["status"], ["no version of flight-delay registered yet"], 0),
    ("gate-report-fresh", "fresh", ["gate-report"], ["no gate decision yet", NEEDS_PIPELINE], 1),
    ("serve-fresh", "fresh", ["serve"], ["no champion to serve yet", NEEDS_PIPELINE], 2),
    ("watch-fresh", "fresh", ["watch", "--minutes", "1"], ["no champion to serve yet"], 2),
    ("predict-no-server", "fresh", ["predict"],
     ["no model server answers at http://127.0.0.1:", "mlops-lab serve"], 2),
    ("register-out-of-order", "fresh", ["register"],
     ["is missing: an earlier stage writes it", "mlops-lab pipeline"], 2),
    ("gate-out-of-order", "fresh", ["gate"], ["registry/candidate.json is missing"], 2),
    ("tag-out-of-order", "fresh", ["tag-data-version", "abc1234"],
     ["registry/candidate.json is missing"], 2),
    ("train-out-of-order", "fresh", ["train"], ["run `mlops-lab ingest` first"], 2),
    ("validate-out-of-order", "fresh", ["validate"], ["run `mlops-lab ingest` first"], 2),
    ("transform-out-of-order", "fresh", ["transform"], ["run `mlops-lab ingest` first"], 2),
    ("evaluate-out-of-order", "fresh", ["evaluate"], ["was the model trained?"], 2),
    ("timeline-fresh", "fresh", ["timeline"], ["no Level 2 run", "run `mlops-lab loop` first"], 1),
    ("rollback-model-fresh", "fresh", ["rollback", "model"], ["no champion to roll back"], 1),
    ("rollback-data-fresh", "fresh", ["rollback", "data"], ["no champion", "--to"], 1),
    ("rollback-both-fresh", "fresh", ["rollback", "both"], ["no champion to roll back"], 1),
    ("gameday-status-fresh", "fresh", ["gameday", "status"],
     ["no game day in this workspace yet", "mlops-lab gameday start"], 2),
    ("gameday-answer-fresh", "fresh", ["gameday", "answer", "celsius"], ["no game day"], 2),
    ("gameday-fix-fresh", "fresh", ["gameday", "fix", "contract"], ["no game day"], 2),
    ("gameday-score-fresh", "fresh", ["gameday", "score"], ["no game day"], 2),
    ("gameday-answer-typo", "fresh", ["gameday", "answer", "celcius"],
     ["'celcius' is not an incident", "celsius"], 2),
    ("gameday-fix-typo", "fresh", ["gameday", "fix", "rollback"], ["is not a fix", "rollback-model"], 2),
    # --- before the first pipeline run: params and options
    ("set-word-for-number", "init", ["pipeline", "--set", "train.epochs=abc"],
     ["train.epochs = 'abc': should be a whole number"], 2),
    ("set-zero-epochs", "init", ["pipeline", "--set", "train.epochs=0"],
     ["train.epochs = 0: should be at least 1"], 2),
    ("set-zero-lr", "init", ["pipeline", "--set", "train.lr=0"], ["should be greater than 0"], 2),
    ("set-zero-batch", "init", ["pipeline", "--set", "train.batch_size=0"], ["at least 1"], 2),
    ("set-layer-width", "init", ["pipeline", "--set", "train.hidden=[64,0]"], ["layer widths"], 2),
    ("set-month-13", "init", ["pipeline", "--set", "split.train_end=13"], ["between 1 and 12"], 2),
    ("set-split-too-long", "init", ["pipeline", "--set", "split.train_end=11"],
     ["split leaves an empty window"], 2),
    ("set-threshold-1", "init", ["pipeline", "--set", "evaluate.threshold=1"], ["between 0 and 1"], 2),
    ("set-unknown-key", "init", ["pipeline", "--set", "train.epoch=3"],
     ["unknown key(s) ['epoch']", "epochs"], 2),
    ("set-unknown-section", "init", ["pipeline", "--set", "nosuch.key=1"], ["unknown key(s)"], 2),
    ("set-no-equals", "init", ["pipeline", "--set", "train.epochs"], ["section.key=value"], 2),
    ("set-device", "init", ["pipeline", "--set", "train.device=gpu"], ["auto, cpu, cuda"], 2),
    ("set-fault-typo", "init", ["pipeline", "--set", "ingest.inject_fault=celcius"],
     ["ingest.inject_fault = 'celcius'", "celsius, null_carrier"], 2),
    ("level0-zero-epochs", "init", ["level0", "--epochs", "0"], ["'--epochs'", "1"], 2),
    ("level0-word-epochs", "init", ["level0", "--epochs", "three"], ["'--epochs'"], 2),
    ("predict-month-13", "init", ["predict", "--month", "13"], ["'--month'", "12"], 2),
    ("predict-rows-0", "init", ["predict", "--rows", "0"], ["'--rows'"], 2),
    ("predict-protocol", "init", ["predict", "--protocol", "v3"], ["'v3' is not one of: v1, v2"], 2),
    ("watch-minutes-0", "init", ["watch", "--minutes", "0"], ["'--minutes'"], 2),
    ("watch-fault-typo", "init", ["watch", "--fault", "constnat"], ["is not one of", "constant"], 2),
    ("serve-port-range", "init", ["serve", "--port", "70000"], ["'--port'"], 2),
    ("serve-fault-typo", "init", ["serve", "--fault", "x"], ["is not one of"], 2),
    ("serve-bundle-missing", "init", ["serve", "--bundle", "/nonexistent/bundle"],
     ["is not a model bundle"], 2),
    ("loop-scenario-typo", "init", ["loop", "--scenario", "natual"],
     ["unknown scenario 'natual'", "natural"], 2),
    ("loop-start-not-a-date", "init", ["loop", "--start", "2013-13-01"], ["YYYY-MM-DD"], 2),
    ("loop-start-other-year", "init", ["loop", "--start", "2014-08-01"], ["the replay is of 2013"], 2),
    ("loop-days-0", "init", ["loop", "--days", "0"], ["'--days'"], 2),
    ("lab-start-unknown", "init", ["lab", "start", "42"], ["no notebook is lab '42'", "00"], 2),
    ("assess-missing-file", "init", ["assess", "--answers", "/nonexistent/answers.yaml"],
     ["no such file", "assess_sample.yaml"], 2),
    ("no-such-command", "init", ["pipline"], ["No such command", "pipline"], 2),
    # --- no cluster here
    ("deploy-no-cluster", "init", ["deploy", "--target", "kind"],
     ["no kubeconfig context kind-mlops-lab", "make cluster-up"], 2),
    ("deploy-target-typo", "init", ["deploy", "--target", "knd"], ["unknown target 'knd'"], 1),
    ("deploy-canary-range", "init", ["deploy", "--target", "kind", "--canary", "150", "--dry-run"],
     ["canary percent must be 0-100"], 2),
    ("deploy-promote-and-rollback", "init",
     ["deploy", "--target", "kind", "--promote", "--rollback", "--dry-run"], ["not both"], 1),
    # --- a champion, and the mistakes that need one
    ("serve-busy-port", "busy_port", ["serve", "--port", "{port}"],
     ["port {port} on 127.0.0.1 is already in use", "--port"], 2),
    ("ui-busy-port", "busy_port", ["ui", "--port", "{port}"], ["already in use (another `mlops-lab ui`?)"], 2),
    ("serve-no-such-version", "champion", ["serve", "--model-uri", "models:/flight-delay/99"],
     ["MLflow:", "99"], 2),
    ("pipeline-while-fine", "champion", ["pipeline", "--set", "train.dropout=1"],
     ["train.dropout = 1: should be at least 0 and below 1"], 2),
    # --- a workspace that cannot be written
    ("pipeline-unwritable", "unwritable", ["pipeline"], ["cannot create the workspace", "--workspace"], 2),
    ("status-unwritable", "unwritable", ["status"], ["cannot create the MLflow store", "--workspace"], 2),
    ("init-unwritable", "unwritable", ["init"], ["cannot create the workspace"], 2),
    # --- corrupt files
    ("params-truncated", "corrupt_params", ["pipeline"], ["params.yaml", "delete it"], 2),
    ("ingest-params-truncated", "corrupt_params", ["ingest"], ["params.yaml", "delete it"], 2),
    ("loop-state-truncated", "corrupt_state", ["loop", "--days", "1"],
     ["state.json is unreadable", "mlops-lab loop --fresh"], 2),
]  # fmt: skip


def _env(workspace: Path) -> dict[str, str]:
    env = dict(os.environ, MLOPS_LAB_WORKSPACE=str(workspace), COLUMNS="200")
    for name in ("MLFLOW_TRACKING_URI", "MLOPS_LAB_MODEL_NAME", "MLOPS_LAB_DEBUG"):
        env.pop(name, None)
    return env


def _cli(workspace: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLI, *args],
        cwd=ROOT,
        env=_env(workspace),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def champion(champion_settings):
    """A workspace with a champion: the labs' checkpoint (one pipeline run per test session)."""
    return champion_settings


def _prepare(kind: str, folder: Path, initialised: Path, champion: Path):
    """The workspace a row starts from, in ``folder``; and the values its argv may use."""
    from reference.labkit.checkpoint import relocate

    ws = folder / "ws"
    extra = {}
    if kind in ("init", "corrupt_params", "corrupt_state"):
        relocate(initialised, ws)  # a copy of one `mlops-lab init`: a row may change its copy
    if kind == "corrupt_params":
        params = ws / "project" / "params.yaml"
        text = params.read_text()
        params.write_text(text[: text.index("train:") + 20] + "\n  - [")  # cut mid-write
    if kind == "corrupt_state":
        state_file = ws / "level2" / "loop" / "state.json"
        state_file.parent.mkdir(parents=True)
        state_file.write_text('{"day": "2013-08-0')
    if kind == "unwritable":  # a file where a folder must go: fails for root too
        (folder / "a-file").write_text("")
        ws = folder / "a-file" / "ws"
    if kind in ("champion", "busy_port"):
        ws = champion
    holder = None
    if kind == "busy_port":
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        extra["port"] = str(holder.getsockname()[1])
    return ws, extra, holder


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, champion):
    """Every row of the table, run two at a time (each is a process of its own)."""
    from concurrent.futures import ThreadPoolExecutor

    initialised = tmp_path_factory.mktemp("initialised") / "ws"
    assert _cli(initialised, "init").returncode == 0

    def run(row):
        name, kind, argv, _, _ = row
        ws, extra, holder = _prepare(
            kind, tmp_path_factory.mktemp(name), initialised, champion.workspace
        )
        try:
            params = ws / "project" / "params.yaml"
            before = params.read_text() if params.exists() else None
            done = _cli(ws, *[a.format(**extra) for a in argv])
            after = params.read_text() if params.exists() else None
        finally:
            if holder:
                holder.close()
        return name, (done, extra, before == after)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, MISTAKES))


@pytest.mark.parametrize(
    ("name", "argv", "words", "code"),
    [pytest.param(i, a, w, c, id=i) for i, _, a, w, c in MISTAKES],
)
def test_a_learner_mistake_gets_a_message_not_a_traceback(outcomes, name, argv, words, code):
    """What the learner typed in that state: the words they should read, the exit code."""
    done, extra, params_unchanged = outcomes[name]
    out = done.stdout + done.stderr
    assert "Traceback" not in out, out
    for word in words:
        assert word.format(**extra) in out, (argv, out)
    assert done.returncode == code, (argv, done.returncode, out)
    if argv[0] == "pipeline" and code:
        # a refused override is not written: the next run does not trip on it again
        assert params_unchanged, out


def test_every_command_has_a_row():
    """The table covers every command and sub-command `mlops-lab --help` lists."""
    from typer.main import get_command

    from reference.cli import app

    def names(group, prefix=""):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from names(cmd, f"{prefix}{name} ")
            else:
                yield f"{prefix}{name}"

    covered = {" ".join(a[:2]) if a[0] in GROUPS else a[0] for _, _, a, _, _ in MISTAKES}
    covered |= set(COVERED_ELSEWHERE)
    missing = sorted(set(names(get_command(app))) - covered)
    assert missing == [], f"commands without a mistake row: {missing}"


GROUPS = ("rollback", "gameday", "lab")
# commands whose mistakes are tested where the command is: (command, the test that does)
COVERED_ELSEWHERE = {
    "demo": "takes only on/off flags: nothing to get wrong but the state, which it makes itself",
    "doctor": "tests/unit/test_doctor.py (every missing tool has a fix)",
    "lab list": "takes no input",
    "lab map": "tests/unit/test_labkit.py (maps out of step)",
    "gameday start": "tests/integration/test_gameday.py (seeds, a game in progress)",
}


def test_debug_brings_the_traceback_back(tmp_path):
    """`--debug` (for a bug report) shows the traceback the message replaced."""
    ws = tmp_path / "a-file"
    ws.write_text("")
    done = _cli(ws / "ws", "--debug", "status")
    assert done.returncode != 0
    assert "Traceback" in done.stderr, done.stderr


def test_library_info_lines_stay_out_of_the_terminal(tmp_path):
    """MLflow's INFO lines (a new store's tables) go to the workspace's log, not the terminal."""
    done = _cli(tmp_path / "ws", "status")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "INFO" not in out and "Creating initial MLflow database tables" not in out, out
    log = (tmp_path / "ws" / "logs" / "libraries.log").read_text()
    assert "Creating initial MLflow database tables" in log


def test_doctor_prints_a_block_to_paste_into_a_bug_report(tmp_path):
    """The doctor ends with a fenced block: versions, OS, the workspace's state."""
    done = _cli(tmp_path / "ws", "doctor")
    out = done.stdout
    block = out[out.index("```text") :]
    for word in ("mlops-lab", "python", "platform", "torch", "mlflow", "workspace"):
        assert word in block, block
    assert block.rstrip().endswith("```"), block


def test_an_unexpected_error_says_it_is_a_bug_and_where_the_traceback_is(tmp_path):
    """Anything the table does not foresee: no traceback, but where it is and how to report it."""
    ws = tmp_path / "ws"
    gate = ws / "project" / "reports" / "gate.json"
    gate.parent.mkdir(parents=True)
    gate.write_text("[1, 2]\n")  # JSON, but not a gate decision: the report's code trips on it
    done = _cli(ws, "gate-report")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out, out
    assert "unexpected error: " in out and "looks like a bug" in out, out
    saved = ws / "logs" / "last-error.txt"
    assert str(saved) in out, out
    assert saved.read_text().startswith("Traceback"), saved.read_text()
    assert "mlops-lab --debug" in out and "mlops-lab doctor" in out, out
