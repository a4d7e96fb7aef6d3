"""register: track the run in MLflow and register the candidate as the `challenger`.

Everything a reviewer needs to trust the model goes into one MLflow run: the params, the holdout
and baseline metrics, the validation report, the plots, the transform, the training history, and
the model itself (a pyfunc from code with signature, input example and pinned pip requirements).
The model is registered under one name; the aliases `champion` and `challenger` say which version
serves and which is on trial (aliases replace MLflow's deprecated stages).

::

    mlops-lab register      # inside a workspace project: registry/candidate.json
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path

from reference.config import Settings, make_dir
from reference.runlock import owner_alive, owner_token

OUT = Path("registry/candidate.json")
CHAMPION, CHALLENGER = "champion", "challenger"


def client(settings: Settings):
    """An MlflowClient on the settings' store, with the experiment created if needed."""
    import mlflow
    from mlflow import MlflowClient

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in stage logs
    if settings.tracking_uri.startswith("sqlite:///"):
        store = Path(settings.tracking_uri.removeprefix("sqlite:///")).parent
        make_dir(store, f"the MLflow store at {store}")
    # MLflow's set_tracking_uri also exports MLFLOW_TRACKING_URI to os.environ; restore it, or
    # the next get_settings() in this process (a second workspace, a notebook) would inherit
    # this store instead of its own default
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(settings.tracking_uri)
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
    c = MlflowClient(tracking_uri=settings.tracking_uri)
    if c.get_experiment_by_name(settings.experiment) is None:
        # local store: artifacts in the workspace; a remote server decides for itself
        location = (
            settings.artifact_root if settings.tracking_uri.startswith(("sqlite", "file")) else None
        )
        c.create_experiment(settings.experiment, artifact_location=location)
    mlflow.set_experiment(settings.experiment)
    return c


def prepare_store(settings: Settings) -> bool:
    """Create a new local store ahead of the first register: MLflow's tables and the experiment
    (most of a second; the warm runner calls this while the first stages run). The store is
    built under another name and linked into place only while there is still none, so a run
    killed half-way never leaves a half-made store. False where there was nothing to do: a store
    exists (or is being made by another process), or the store is not a local sqlite file."""
    if not settings.tracking_uri.startswith("sqlite:///"):
        return False
    db = Path(settings.tracking_uri.removeprefix("sqlite:///"))
    if db.exists():
        return False
    make_dir(db.parent, f"the MLflow store at {db.parent}")
    draft = db.with_name(f".{db.name}.{os.getpid()}.new")
    try:
        client(replace(settings, tracking_uri=f"sqlite:///{draft}"))
        os.link(draft, db)  # fails if a store appeared meanwhile: that one is kept
    except FileExistsError:
        return False
    finally:
        draft.unlink(missing_ok=True)
    return True


def pip_requirements() -> list[str]:
    """Pinned by hand: inference costs ~10 s a call, and this machine's torch says +cpu."""
    pins = {name: version(name).split("+")[0] for name in ("torch", "numpy", "pandas", "mlflow")}
    return [f"{name}=={v}" for name, v in pins.items()]


def _flat(prefix: str, values: dict) -> dict:
    """Numbers only, for metrics: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flat(f"{prefix}{key}.", value))
        elif isinstance(value, int | float) and not isinstance(value, bool) and value is not None:
            out[f"{prefix}{key}"] = value
    return out


def flat_params(prefix: str, values: dict) -> dict[str, str]:
    """Every param, for ``log_params``: lists, strings, booleans and nulls too, as MLflow shows
    them (``train.hidden`` = ``[64, 32]``): a sweep over a list-valued param must be findable."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flat_params(f"{prefix}{key}.", value))
        else:
            out[f"{prefix}{key}"] = (
                json.dumps(value) if isinstance(value, list | tuple | bool | None) else str(value)
            )
    return out


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    run_id: str
    model_uri: str

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "model_uri": self.model_uri,
        }


def log_and_register(
    settings: Settings,
    params,
    bundle_dir: Path,
    evaluation: dict,
    artifacts: dict[str, Path],
    tags: dict[str, str] | None = None,
) -> Registered:
    """One MLflow run for the candidate; registers it and points `challenger` at it."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    from reference import ingest
    from reference.features import FEATURES
    from reference.model import load_bundle

    c = client(settings)
    months = params.split.months()
    example = ingest.read_months(months["holdout"][:1]).loc[:4, list(FEATURES)]
    proba = load_bundle(bundle_dir).predict_proba(example)
    output = pd.DataFrame(
        {"probability": proba, "label": (proba >= params.evaluate.threshold).astype("int64")}
    )
    code = Path(__file__).parent
    # hour, weekday and month are never missing, so MLflow's hint about integer columns with
    # missing values does not apply; keep the stage log readable
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
    with mlflow.start_run(
        run_name=f"train-{months['train'][0]:02d}-{months['train'][-1]:02d}",
        tags={OWNER_TAG: owner_token()},
    ) as run:
        mlflow.log_params(flat_params("", params.to_dict()))
        mlflow.log_metrics(
            _flat("holdout.", {k: v for k, v in evaluation["candidate"].items() if k != "slices"})
        )
        for name, metrics in evaluation["baselines"].items():
            mlflow.log_metrics(_flat(f"baseline.{name}.", metrics))
        mlflow.log_metrics(
            {
                "latency_ms_p95": evaluation["latency_ms_p95"],
                "model_size_mb": evaluation["model_size_mb"],
            }
        )
        mlflow.set_tags(
            {
                "split.train": str(months["train"]),
                "split.holdout": str(months["holdout"]),
                **(tags or {}),
            }
        )
        for folder, path in artifacts.items():
            if Path(path).exists():
                (mlflow.log_artifacts if Path(path).is_dir() else mlflow.log_artifact)(
                    str(path), folder
                )
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code / "mlflow_model.py"),
            artifacts={"bundle": str(bundle_dir)},
            code_paths=[str(code)],
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=pip_requirements(),
            model_config={"threshold": params.evaluate.threshold},
        )
    # Registered only once the run is FINISHED, and marked pending until `challenger` points at
    # it: a process killed anywhere in between leaves a version that `recover` can recognise
    # and delete, never a half-made one that looks real.
    if not _exists(c, settings.model_name):
        c.create_registered_model(settings.model_name)
    mv = c.create_model_version(
        settings.model_name,
        source=info.model_uri,
        run_id=run.info.run_id,
        tags={PENDING_TAG: owner_token()},
        model_id=info.model_id,
    )
    c.set_registered_model_alias(settings.model_name, CHALLENGER, mv.version)
    c.delete_model_version_tag(settings.model_name, mv.version, PENDING_TAG)
    return Registered(settings.model_name, str(mv.version), run.info.run_id, info.model_uri)


def _exists(c, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        c.get_registered_model(name)
    except MlflowException:
        return False
    return True


# ------------------------------------------------------------------------ crash consistency
OWNER_TAG = "mlops_lab.owner"  # on a run: the process that logs it
PENDING_TAG = "mlops_lab.pending"  # on a version: registered, not yet the challenger


@dataclass(frozen=True)
class Recovered:
    runs_marked_killed: list[str]
    versions_deleted: list[str]


def recover(settings: Settings) -> Recovered:
    """Undo what a killed register stage left in the registry: runs still RUNNING whose process
    is gone are marked KILLED, and versions still pending whose process is gone are deleted.
    A live owner's work is left alone. Safe to call any time; cheap when there is nothing."""
    c = client(settings)
    experiment = c.get_experiment_by_name(settings.experiment)
    killed = []
    if experiment is not None:
        for run in c.search_runs(
            [experiment.experiment_id], filter_string="attributes.status = 'RUNNING'"
        ):
            token = run.data.tags.get(OWNER_TAG)
            if token and not owner_alive(token):
                c.set_terminated(run.info.run_id, status="KILLED")
                killed.append(run.info.run_id)
    deleted = []
    if _exists(c, settings.model_name):
        for mv in c.search_model_versions(f"name='{settings.model_name}'"):
            token = mv.tags.get(PENDING_TAG)
            if token and not owner_alive(token):
                c.delete_model_version(settings.model_name, mv.version)
                deleted.append(str(mv.version))
    return Recovered(killed, deleted)


def version_by_alias(settings: Settings, alias: str):
    """The ModelVersion an alias points to, or None when the alias does not exist yet."""
    from mlflow.exceptions import MlflowException

    try:
        return client(settings).get_model_version_by_alias(settings.model_name, alias)
    except MlflowException:
        return None


def version_run(settings: Settings, version: str):
    """The MLflow run behind a registered version: its metrics, params and tags (data.commit,
    split.train, split.holdout) say what it was trained and judged on."""
    c = client(settings)
    return c.get_run(c.get_model_version(settings.model_name, str(version)).run_id)


def download_bundle(settings: Settings, version: str, dest: Path, name: str | None = None) -> Path:
    """Fetch a registered version's bundle (weights, architecture, transform) from the registry."""
    import mlflow

    client(settings)
    uri = f"models:/{name or settings.model_name}/{version}"
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest)))
    import yaml

    # the bundle's place inside the model is recorded in MLmodel (artifacts/<folder name>)
    mlmodel = yaml.safe_load((local / "MLmodel").read_text())
    rel = (
        mlmodel.get("flavors", {})
        .get("python_function", {})
        .get("artifacts", {})
        .get("bundle", {})
        .get("path")
    )
    bundle = local / rel if rel else local / "missing"
    if not (bundle / "model.json").is_file():
        raise FileNotFoundError(
            f"{uri} has no bundle artifact: not a model this project registered"
        )
    return bundle


def data_tags(lock: Path = Path("dvc.lock")) -> dict[str, str]:
    """Which data trained the model: the DVC hash of the batches, from this run's dvc.lock."""
    import yaml

    if not lock.exists():
        return {}
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    outs = stages.get("ingest", {}).get("outs", [])
    md5 = next((o.get("md5") for o in outs if o.get("path") == "data/batches"), None)
    return {"data.batches_md5": md5} if md5 else {}


def run(params, settings: Settings, out: Path = OUT) -> Registered:
    """The stage: log the candidate with its evidence and register it."""
    from reference.evaluate import OUT as EVALUATION
    from reference.evaluate import PLOTS
    from reference.train import METRICS as TRAIN_METRICS
    from reference.train import OUT as BUNDLE
    from reference.transform import OUT as TRANSFORM

    evaluation = json.loads(EVALUATION.read_text())
    artifacts = {
        "validation": Path("reports/validation.md"),
        "validation_json": Path("reports/validation.json"),
        "plots": PLOTS,
        "transform": TRANSFORM,
        "training": TRAIN_METRICS,
        "evaluation": EVALUATION,
    }
    registered = log_and_register(settings, params, BUNDLE, evaluation, artifacts, tags=data_tags())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(registered.to_dict(), indent=2) + "\n")
    print(
        f"registered {registered.name} version {registered.version} as '{CHALLENGER}' (run {registered.run_id})"
    )
    return registered
