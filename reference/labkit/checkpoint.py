"""Start any lab from scratch: a fresh workspace with the state the lab begins from.

::

    lab = start("05")               # in a notebook: workspace/lab05 with a registered champion
    mlops-lab lab start 05          # the same from a terminal

The state is built by running the real pipeline (and, for ``traffic``, the real model server),
never by copying committed artifacts, so a facilitator can start a room at any lab::

    | checkpoint  | what the lab starts from                                                  |
    |-------------|---------------------------------------------------------------------------|
    | none        | nothing: the lab writes no workspace                                      |
    | workspace   | an empty workspace folder of its own                                      |
    | champion    | a pipeline run on January-June: @champion -> v1                           |
    | traffic     | a champion, and a month of real flights served by it (the payload log)   |

A workspace is deleted only when it carries the marker file a workspace gets when it is created,
so a lab never removes a folder it did not make.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reference.config import MARKER, _find_upwards, _is_repo_root, get_settings
from reference.labkit import meta as labmeta
from reference.labkit.selfcheck import SelfCheckFailed, run_exercise

CHAMPION_OVERRIDES = ("split.train_end=6",)  # train Jan-Jun, stop early on Jul, judge Aug-Oct
RUN_RECORD = "checkpoint-run.json"  # the champion's pipeline run: its overrides and its result
TRAFFIC_MONTH = 11  # a month outside every window of the champion: live traffic


@dataclass
class Lab:
    """What a lab's cells use: where things are, and the state the checkpoint built."""

    meta: labmeta.LabMeta
    root: Path
    workspace: Path | None
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self):
        if self.workspace is None:
            raise SelfCheckFailed(
                f"lab {self.meta.lab} has no workspace", "this lab does not run the pipeline"
            )
        return get_settings(self.workspace)

    def rel(self, path: str | Path) -> str:
        """A path as the README shows it: relative to the repository root."""
        path = Path(path).resolve()
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    @property
    def solutions(self) -> Path:
        return self.root / "labs" / "solutions" / f"{self.meta.lab}.py"

    def exercise(self, number: int, attempt, check) -> None:
        """Run the learner's attempt (or, under the test suite, the solution) through ``check``.
        Returns nothing, so the answer isn't echoed under the cell; it prints the verdict."""
        run_exercise(
            number, attempt, check, self, self.solutions, f"labs/solutions/{self.meta.lab}.py"
        )


def repo_root(start: Path | None = None) -> Path:
    """The repository root, from a notebook in labs/ or any folder inside the repository."""
    here = (start or Path.cwd()).resolve()
    root = _find_upwards(here, _is_repo_root)
    if root is None:
        raise SelfCheckFailed(
            f"{here} is not inside the mlops-lab repository",
            "open the labs with `make lab` from the repository root",
        )
    return root


def fresh_workspace(folder: Path) -> Path:
    """Delete ``folder`` if a lab made it (the marker says so), then create it with the marker."""
    if folder.exists():
        if not (folder / MARKER).is_file():
            raise SelfCheckFailed(
                f"{folder} exists but was not made by a lab (no {MARKER} file in it)",
                "move it away or delete it yourself; a lab only deletes folders it created",
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text('{"created_by": "mlops-lab"}\n')
    return folder


CACHE_ENV = "MLOPS_LAB_CHECKPOINT_CACHE"


def relocate(src: Path, dst: Path) -> None:
    """Copy a built workspace to ``dst`` and point what it records at its new place.

    MLflow's sqlite store and the MLmodel files hold absolute artifact paths, and DVC's config
    the absolute path of its remote: each is rewritten. Everything else (git, the DVC cache, the
    data, the models) moves as it is."""
    import sqlite3

    old, new = str(src.resolve()), str(dst.resolve())
    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
    skip = {"objects", "cache", "files"}  # git objects, the DVC cache, the DVC remote: content only
    for path in dst.rglob("*"):
        if (
            not path.is_file()
            or skip & set(path.relative_to(dst).parts)
            or path.suffix in (".parquet", ".pt", ".pkl", ".db")
        ):
            continue
        if path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if old in text:
            path.write_text(text.replace(old, new), encoding="utf-8")
    for db in dst.rglob("*.db"):
        con = sqlite3.connect(db)
        try:
            tables = [
                r[0] for r in con.execute("select name from sqlite_master where type='table'")
            ]
            for table in tables:
                for _, col, kind, *_ in con.execute(f'pragma table_info("{table}")'):
                    if any(t in (kind or "").upper() for t in ("CHAR", "TEXT", "CLOB")):
                        con.execute(
                            f'update "{table}" set "{col}" = replace("{col}", ?, ?) '
                            f'where "{col}" like ?',
                            (old, new, f"%{old}%"),
                        )
            con.commit()
        finally:
            con.close()


def _champion(lab: Lab, log) -> None:
    """The champion checkpoint. Under the test suite (``MLOPS_LAB_CHECKPOINT_CACHE`` set) it is
    built once per session and copied into each lab's workspace: the same state, one pipeline run."""
    import json
    import os

    cache = os.environ.get(CACHE_ENV)
    if not cache:
        _build_champion(lab, log)
        return
    built = Path(cache) / "champion"
    done = built / "checkpoint.json"
    if not done.exists():
        builder = Lab(meta=lab.meta, root=lab.root, workspace=fresh_workspace(built))
        _build_champion(builder, log)
        done.write_text(json.dumps(builder.facts))
    else:
        log("building the checkpoint: copying the champion this test session built once")
    relocate(built, lab.workspace)
    (lab.workspace / "checkpoint.json").unlink()
    lab.facts.update(json.loads(done.read_text()))


def _build_champion(lab: Lab, log) -> None:
    import json

    from reference import registry
    from reference.pipeline import run_pipeline

    settings = lab.settings
    logfile = lab.workspace / "checkpoint.log"
    log(
        "building the checkpoint: a pipeline run on January-June "
        f"(about a minute; its output goes to {lab.rel(logfile)})"
    )
    started = time.monotonic()
    result = run_pipeline(settings, list(CHAMPION_OVERRIDES), log=logfile)
    champion = registry.version_by_alias(settings, registry.CHAMPION)
    if not result.ok:
        raise SelfCheckFailed(
            f"the checkpoint's pipeline run stopped at {result.failed_stage or 'a stage'}",
            f"read {lab.rel(logfile)}; `mlops-lab doctor` checks the machine",
        )
    if champion is None:
        failed = [r for r in (result.gate or {}).get("rules", []) if r["verdict"] == "fail"]
        why = "; ".join(
            f"{r['name']} {r['value']:.4g} {r['op']} {r['threshold']:.4g} failed" for r in failed
        )
        raise SelfCheckFailed(
            f"the gate rejected the checkpoint's model ({why or 'see the log'})",
            "a busy machine slows the latency rule: close what else runs and run this cell again"
            if any(r["name"] == "latency_ms_p95" for r in failed)
            else f"read {lab.rel(logfile)}",
        )
    lab.facts.update(champion=str(champion.version), data_commit=result.commit)
    # What the run returned, next to what it built: a copy of the checkpoint carries the record
    # of the first run that made it (tests/integration/test_pipeline.py reads it).
    record = {"overrides": list(CHAMPION_OVERRIDES), **asdict(result)}
    (lab.workspace / RUN_RECORD).write_text(json.dumps(record, indent=1))
    log(f"  @champion -> v{champion.version} in {time.monotonic() - started:.0f} s")


def _traffic(lab: Lab, log, month: int = TRAFFIC_MONTH) -> None:
    from reference import ingest
    from reference.serve import client
    from reference.watch import replay

    _champion(lab, log)
    settings = lab.settings
    payload = lab.workspace / "serving" / "payload"
    frame = ingest.read_months([month], settings.project / ingest.BATCH_DIR).sort_values(
        "sched_dep"
    )
    log(f"  serving it and replaying 2013-{month:02d} ({len(frame):,} flights) as live traffic")
    started = time.monotonic()
    server = client.start(settings, name=settings.model_name, args=["--payload-dir", str(payload)])
    try:
        replay(server.url, frame, settings.model_name, minutes=5, batch=256)
    finally:
        client.stop(server)
    lab.facts.update(traffic_month=month, payload=payload, flights=len(frame))
    log(f"  {len(frame):,} predictions in {lab.rel(payload)} in {time.monotonic() - started:.0f} s")


BUILDERS = {"champion": _champion, "traffic": _traffic}


def champion_workspace(workspace: Path, log=print) -> Lab:
    """A fresh workspace at ``workspace`` holding the champion checkpoint (built, or copied from
    the test session's cache): for tests and tools that need the state lab 04 starts from."""
    root = repo_root(Path(__file__).parent)
    card = next(c for c in labmeta.all_labs(root / "labs") if c.checkpoint == "champion")
    lab = Lab(meta=card, root=root, workspace=fresh_workspace(Path(workspace)))
    _champion(lab, log)
    return lab


def start(lab_id: str, root: str | Path | None = None, log=print) -> Lab:
    """Build lab ``lab_id``'s starting state in ``workspace/lab<id>`` (fresh) and return it."""
    root = repo_root(Path(root) if root else None)
    card = labmeta.find(root / "labs", lab_id)
    log(
        f"lab {card.lab}: {card.title} ({card.day_range}; {card.teaching} min teaching, {card.exercises} min exercises)"
    )
    workspace = None
    if card.checkpoint != "none":
        workspace = fresh_workspace(root / "workspace" / f"lab{card.lab}")
        log(f"this lab writes to {workspace.relative_to(root)} (fresh)")
    lab = Lab(meta=card, root=root, workspace=workspace)
    builder = BUILDERS.get(card.checkpoint)
    if builder:
        builder(lab, log)
    return lab
