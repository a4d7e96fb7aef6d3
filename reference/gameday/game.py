"""A game day: one hidden incident, a shift of real traffic, a diagnosis, a fix, a score.

::

    start   restore the game's champion, draw an incident (seeded), inject it, run a shift
    status  the on-call page of the last shift (alerts, traffic, inputs, drift, labels, canary,
            the incoming batch, what changed)
    answer  name the incident; right or not, the game says so (and counts the tries)
    fix     take a runbook action; the game runs the next shift and says whether the system is
            healthy again (no finding left), and ends the game when it is
    score   points, and what was missed; ``reveal`` ends the game and names the incident

The state is ``<workspace>/gameday/game.json``. The answer key in it is encoded, not hidden: a
glance at the file does not give it away, which is all an honest game needs.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reference.gameday.evidence import Evidence
from reference.gameday.incidents import FIXES, INCIDENTS, Incident, incident
from reference.gameday.shift import Deployment, run_shift

SHIFT_DAYS = (dt.date(2013, 12, 3), dt.date(2013, 12, 4))  # a Tuesday and a Wednesday
NEXT_DAYS = (dt.date(2013, 12, 12), dt.date(2013, 12, 13))  # after a fix (Dec 5-10 lack pressure)
INCOMING_MONTH = 11  # the monthly batch that arrives on December 2, with its labels
CANARY_PERCENT = 50.0  # the game's canary is half the traffic, so two days can decide
CHAMPION_OVERRIDES = ["split.train_end=6"]  # the lab checkpoint's champion: Jan-Jun
RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks"


class GameError(RuntimeError):
    """A mistake the player can correct: the message says what to do."""


@dataclass
class Game:
    """The state of one game day: the hidden incident, the deployment, answers and fixes."""

    seed: int
    incident: str
    base: str  # the champion every game starts from
    deployment: Deployment
    answers: list[str] = field(default_factory=list)
    fixes: list[dict] = field(default_factory=list)  # {"action", "note", "healthy", "findings"}
    shifts: int = 1
    over: bool = False
    revealed: bool = False

    @property
    def truth(self) -> Incident:
        return incident(self.incident)


# ------------------------------------------------------------------------------------ storage
def game_dir(settings) -> Path:
    return settings.workspace / "gameday"


def _encode(value: dict) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def save(settings, game: Game) -> None:
    data = asdict(game)
    secret = {"incident": data.pop("incident"), "deployment": data.pop("deployment")}
    data["key"] = _encode(secret)  # encoded, so the file does not show the answer at a glance
    (game_dir(settings) / "game.json").write_text(json.dumps(data, indent=2) + "\n")


def load(settings) -> Game:
    path = game_dir(settings) / "game.json"
    if not path.exists():
        raise GameError(
            "no game day in this workspace yet: start one with `mlops-lab gameday start`"
        )
    data = json.loads(path.read_text())
    secret = json.loads(base64.b64decode(data.pop("key")))
    return Game(incident=secret["incident"], deployment=Deployment(**secret["deployment"]), **data)


def _event(settings, day: str, kind: str, text: str) -> None:
    with (game_dir(settings) / "events.jsonl").open("a") as f:
        f.write(json.dumps({"day": day, "kind": kind, "text": text}) + "\n")


def events(settings) -> list[dict]:
    path = game_dir(settings) / "events.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def last_evidence(settings, game: Game | None = None) -> Evidence:
    game = game or load(settings)
    data = json.loads((game_dir(settings) / f"shift-{game.shifts}" / "evidence.json").read_text())
    return Evidence(**data)


# --------------------------------------------------------------------------------------- start
def _champion(settings, log) -> str:
    """The game's champion: the one recorded by the first game here, else today's, else a new one."""
    from reference import registry
    from reference.pipeline import run_pipeline

    base_file = settings.workspace / "gameday.base.json"
    c = registry.client(settings)
    if base_file.exists():
        base = json.loads(base_file.read_text())["champion"]
        current = registry.version_by_alias(settings, registry.CHAMPION)
        if current is None or str(current.version) != base:
            c.set_registered_model_alias(settings.model_name, registry.CHAMPION, base)
            log(f"a new game starts from the same champion: @champion -> v{base}")
        return base
    current = registry.version_by_alias(settings, registry.CHAMPION)
    if current is None:
        log_file = settings.workspace / "gameday.pipeline.log"
        log(f"no champion here yet: training one on January-June (about a minute; {log_file.name})")
        result = run_pipeline(settings, CHAMPION_OVERRIDES, log=log_file)
        current = registry.version_by_alias(settings, registry.CHAMPION)
        if not result.ok or current is None:
            raise GameError(f"the pipeline did not produce a champion: read {log_file}")
    base_file.write_text(json.dumps({"champion": str(current.version)}) + "\n")
    return str(current.version)


def _release(settings, base: str, why: str) -> str:
    """Register the base champion's model again as a new version (a new release of it)."""
    from reference import registry

    c = registry.client(settings)
    mv = c.get_model_version(settings.model_name, base)
    new = c.create_model_version(settings.model_name, mv.source, run_id=mv.run_id, tags=mv.tags)
    c.set_model_version_tag(settings.model_name, new.version, "previous_champion", base)
    c.set_model_version_tag(settings.model_name, new.version, "release", why)
    return str(new.version)


def _inject(settings, truth: Incident, base: str) -> Deployment:
    """Set the incident up in the real components, and write what changed to the event log."""
    from reference import faults, ingest, registry

    dep = Deployment(
        champion=base, traffic_fault=truth.traffic_fault, labels_stop=truth.labels_stop
    )
    c = registry.client(settings)
    if truth.serving_fault != "none":
        v = _release(settings, base, "serving image 2.4.1 (a dependency bump)")
        c.set_registered_model_alias(settings.model_name, registry.CHAMPION, v)
        dep.champion, dep.faults, dep.image_fault = v, {v: truth.serving_fault}, truth.serving_fault
        _event(settings, "2013-12-02", "deploy", f"@champion v{base} -> v{v}: serving image 2.4.1")
    if truth.canary_fault or truth.canary_hang:
        v = _release(settings, base, "retrained candidate")
        c.set_registered_model_alias(settings.model_name, registry.CHALLENGER, v)
        dep.canary = {"version": v, "percent": CANARY_PERCENT, "hang": truth.canary_hang}
        dep.faults = {v: truth.canary_fault or "none"}
        _event(
            settings,
            "2013-12-02",
            "canary",
            f"v{v} passed the gate; canary at {CANARY_PERCENT:.0f}%",
        )
    if truth.batch_fault is not None:
        batch = ingest.read_months([INCOMING_MONTH], settings.project / ingest.BATCH_DIR)
        path = game_dir(settings) / "incoming" / f"2013-{INCOMING_MONTH:02d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        faults.inject(batch, truth.batch_fault).to_parquet(path)
        dep.incoming, dep.incoming_fault = str(path), truth.batch_fault
        _event(
            settings,
            "2013-12-02",
            "batch",
            f"{path.name} arrived in gameday/incoming/ with its labels",
        )
    return dep


def draw(seed: int) -> str:
    """The incident a seed draws: the same on every machine."""
    return random.Random(seed).choice(sorted(INCIDENTS))


def start(settings, seed: int | None = None, name: str | None = None, log=print) -> Evidence:
    """A new game: a seeded draw (or ``name``, for facilitators and tests), and the first shift."""
    from reference import registry

    if name is not None and name not in INCIDENTS:  # before anything changes
        raise GameError(f"unknown incident {name!r}; one of: {', '.join(INCIDENTS)}")
    folder = game_dir(settings)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    base = _champion(settings, log)
    with contextlib.suppress(Exception):  # a canary left by the last game (none: fine)
        registry.client(settings).delete_registered_model_alias(
            settings.model_name, registry.CHALLENGER
        )
    seed = random.SystemRandom().randrange(1000) if seed is None else seed
    truth = incident(name or draw(seed))
    deployment = _inject(settings, truth, base)
    game = Game(seed=seed, incident=truth.name, base=base, deployment=deployment)
    _event(settings, SHIFT_DAYS[0].isoformat(), "shift", "your shift starts: you are on call")
    log(f"game day (seed {seed}): replaying {SHIFT_DAYS[0]}..{SHIFT_DAYS[1]} through the servers")
    evidence = run_shift(settings, deployment, list(SHIFT_DAYS), folder / "shift-1", log)
    save(settings, game)
    return evidence


# ------------------------------------------------------------------------------- answer, fix
def answer(settings, name: str) -> tuple[bool, str]:
    if name not in INCIDENTS:
        raise GameError(
            f"{name!r} is not an incident of the game; name one of: {', '.join(INCIDENTS)}"
        )
    game = load(settings)
    if game.over:
        raise GameError("this game is over: `mlops-lab gameday score`, or start a new one")
    game.answers.append(name)
    save(settings, game)
    right = name == game.incident
    _event(
        settings, SHIFT_DAYS[1].isoformat(), "answer", f"{name}: {'right' if right else 'not it'}"
    )
    if right:
        return (
            True,
            f"right: {game.truth.title}. Now fix it: `mlops-lab gameday fix <action>` ({game.truth.runbook})",
        )
    return False, (
        f"not {name}: that one would show differently (try {len(game.answers)}). Look again at "
        "the status, the evidence files and the event log"
    )


def _apply(settings, game: Game, action: str, log) -> tuple[bool, str]:
    """Do what ``action`` does to the real components. Returns (changed anything, what it did)."""
    from reference import registry
    from reference.loop.rollback import rollback_data, rollback_model

    dep = game.deployment
    c = registry.client(settings)
    if action in ("rollback-model", "rollback-both"):
        if dep.canary:
            v = dep.canary["version"]
            c.delete_registered_model_alias(settings.model_name, registry.CHALLENGER)
            c.set_model_version_tag(settings.model_name, v, "rollback", "model")
            dep.canary = None
            note = f"canary v{v} ended: the candidate gets no traffic, the champion answers all"
        else:
            try:
                was, now = rollback_model(settings)
            except RuntimeError as e:
                return False, f"nothing rolled back: {e}"
            dep.champion = now
            note = f"@champion v{was} -> v{now}"
        if action == "rollback-model":
            return True, note
        changed, more = _apply(settings, game, "rollback-data", log)
        return True, f"{note}; {more}"
    if action == "rollback-data":
        from reference.loop.rollback import _git, data_commit

        commit = data_commit(settings, dep.champion)
        if commit and not _git(settings, "diff", commit, "--", "params.yaml", "dvc.lock"):
            return False, f"the data is already the champion's ({commit}): nothing to roll back"
        restored = rollback_data(settings, retrain=False)
        return True, f"the project's data and params restored to {restored.commit} (the champion's)"
    if action == "refuse-batch":
        if not dep.incoming:
            return False, "no batch is waiting: nothing to refuse"
        src = Path(dep.incoming)
        from reference.gameday.evidence import validate_batch

        if validate_batch(settings, src, game_dir(settings))["passed"]:
            return False, (
                f"the sender points out that {src.name} passed validation: refusing a valid batch "
                "leaves the model a month behind; nothing refused"
            )
        dest = game_dir(settings) / "quarantine" / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        src.rename(dest)
        dep.incoming = None
        dep.traffic_fault = (
            "none"  # the breach is filed with the refusal: the sender fixes the feed
        )
        return True, f"{src.name} quarantined (gameday/quarantine/); the sender was told why"
    if action == "contract":
        if dep.traffic_fault == "none" and not dep.labels_stop:
            return False, "the sender checked: what they send matches the contract"
        dep.traffic_fault, dep.labels_stop = "none", False
        return True, "the sender fixed the feed"
    if action == "retrain":
        return _retrain(settings, dep, log)
    raise GameError(f"{action!r} is not a fix; one of: {', '.join(FIXES)}")


def _retrain(settings, dep: Deployment, log) -> tuple[bool, str]:
    from reference import registry
    from reference.gameday.evidence import validate_batch
    from reference.loop.policy import training_split
    from reference.pipeline import run_pipeline

    if dep.incoming:
        checked = validate_batch(settings, Path(dep.incoming), game_dir(settings))
        if not checked["passed"]:
            # the pipeline's validate stage runs these same checks on the batch: it would stop here
            return False, f"the retrain stopped at validate: {'; '.join(checked['failing'])}"
    split = {k: v for k, v in training_split(INCOMING_MONTH).items() if not k.startswith("ingest.")}
    log_file = game_dir(settings) / "retrain.log"
    log(f"retraining on months 1-{split['split.train_end']} (about a minute; {log_file.name})")
    result = run_pipeline(settings, [f"{k}={v}" for k, v in split.items()], log=log_file)
    if not result.ok:
        return False, f"the retrain stopped at {result.failed_stage}: read {log_file}"
    champion = registry.version_by_alias(settings, registry.CHAMPION)
    if str(champion.version) == dep.champion:
        return True, "the retrain's candidate did not pass the gate: the champion stays"
    if dep.incoming:
        landed = game_dir(settings) / "landed" / Path(dep.incoming).name
        landed.parent.mkdir(parents=True, exist_ok=True)
        Path(dep.incoming).rename(landed)
        dep.incoming = None
    was, dep.champion = dep.champion, str(champion.version)
    if dep.image_fault != "none":  # the new version ships on the same (broken) serving image
        dep.faults[dep.champion] = dep.image_fault
    return True, f"retrained and promoted by the gate: @champion v{was} -> v{dep.champion}"


def fix(settings, action: str, log=print) -> tuple[bool, str, Evidence | None]:
    """Apply a runbook action, then run the next shift: (healthy, what happened, its evidence)."""
    if action not in FIXES:
        raise GameError(f"{action!r} is not a fix; one of: {', '.join(FIXES)}")
    game = load(settings)
    if game.over:
        raise GameError("this game is over: `mlops-lab gameday score`, or start a new one")
    changed, note = _apply(settings, game, action, log)
    _event(settings, NEXT_DAYS[0].isoformat(), "fix", f"{action}: {note}")
    entry = {"action": action, "note": note, "healthy": False, "findings": []}
    game.fixes.append(entry)
    if not changed:
        save(settings, game)
        return False, note, None
    game.shifts += 1
    log(f"{note}; replaying {NEXT_DAYS[0]}..{NEXT_DAYS[1]} to see whether it healed")
    evidence = run_shift(
        settings,
        game.deployment,
        list(NEXT_DAYS),
        game_dir(settings) / f"shift-{game.shifts}",
        log,
        drift=False,
    )
    entry["healthy"], entry["findings"] = not evidence.findings, list(evidence.findings)
    if not evidence.findings:
        game.over = True
    save(settings, game)
    return not evidence.findings, note, evidence


# --------------------------------------------------------------------------------------- score
@dataclass(frozen=True)
class Score:
    """The points of a game (out of 5), how each was earned or lost, and what was missed."""

    points: int
    out_of: int
    lines: tuple[str, ...]  # how each point was earned or lost
    missed: tuple[str, ...]


def score(settings, reveal: bool = False) -> tuple[Game, Score]:
    game = load(settings)
    if reveal and not game.revealed:
        game.revealed = game.over = True
        save(settings, game)
    truth, lines, missed = game.truth, [], []
    if game.answers[:1] == [truth.name]:
        diag = 2
        lines.append(f"diagnosis: {truth.name} on the first try (2/2)")
    elif truth.name in game.answers:
        diag = 1
        lines.append(f"diagnosis: {truth.name} after {game.answers.index(truth.name)} wrong (1/2)")
    else:
        diag = 0
        lines.append("diagnosis: not named (0/2)")
    if diag < 2 and (game.over or game.revealed):
        missed += [f"the clue: {c}" for c in truth.clues]
    healed = next((i for i, f in enumerate(game.fixes) if f["healthy"]), None)
    if healed is None:
        fixed = 0
        lines.append(
            f"fix: not healed yet ({truth.fix} is the runbook's) (0/2)"
            if game.over or game.revealed
            else "fix: not healed yet (0/2)"
        )
    else:
        fixed = 2 if healed == 0 and game.fixes[0]["action"] == truth.fix else 1
        lines.append(
            f"fix: healed by {game.fixes[healed]['action']} (try {healed + 1}) ({fixed}/2)"
        )
    for f in game.fixes:
        if not f["healthy"] and (game.over or game.revealed):
            missed.append(f"{f['action']} did not heal it: {f['note']}")
    healthy = 1 if healed is not None else 0
    lines.append(f"healthy after the fix: {'yes' if healthy else 'no'} ({healthy}/1)")
    return game, Score(diag + fixed + healthy, 5, tuple(lines), tuple(missed))
