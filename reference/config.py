"""Settings (where things live) and params (how each stage behaves).

Settings say *where*: the workspace, the MLflow tracking URI, the registered model's name. They
come from the environment, so the same stage code runs on a laptop or in a cluster::

    MLOPS_LAB_WORKSPACE   the workspace folder (default: ./workspace at the repo root)
    MLFLOW_TRACKING_URI   any MLflow tracking URI (default: sqlite in the workspace)
    MLOPS_LAB_MODEL_NAME  the registered model (default: flight-delay)

Params say *how*: one frozen dataclass per stage with defaults, loaded from params.yaml and
overridable with ``--set section.key=value`` (the tree DVC tracks).

Nothing here touches the disk on import.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER = ".mlops-lab-workspace"


@dataclass(frozen=True)
class SplitParams:
    train_start: int = 1
    train_end: int = 6
    valid_months: int = 1
    holdout_months: int = 3

    def months(self) -> dict[str, list[int]]:
        """The three windows as lists of months, clipped to the year."""
        train = list(range(self.train_start, self.train_end + 1))
        valid = list(range(self.train_end + 1, self.train_end + 1 + self.valid_months))
        start = self.train_end + 1 + self.valid_months
        holdout = list(range(start, start + self.holdout_months))
        clip = [m for m in holdout if m <= 12]
        if not train or not [m for m in valid if m <= 12] or not clip:
            raise ValueError(
                f"split leaves an empty window (train {train}, valid {valid}, holdout {holdout}): "
                "keep train_end + valid_months + 1 <= 12"
            )
        return {"train": train, "valid": [m for m in valid if m <= 12], "holdout": clip}


@dataclass(frozen=True)
class IngestParams:
    cancelled: str = "exclude"
    inject_fault: str = "none"
    fault_month: int = 7
    landed_through: int = 12  # the last month whose flights (and labels) have landed


@dataclass(frozen=True)
class ValidateParams:
    reference_months: tuple[int, ...] = (1, 2, 3)
    missing_rate_warn: float = 0.02
    missing_rate_fail: float = 0.20
    out_of_range_warn: float = 0.001
    out_of_range_fail: float = 0.05
    unseen_category_warn: float = 0.0
    unseen_category_fail: float = 0.05
    drift_warn: float = 1.0  # numbers: Wasserstein distance in reference std
    drift_warn_categorical: float = 0.1  # categories: Jensen-Shannon distance
    drift_fail: float | None = None  # drift is a gray area: warn only, unless you set a level
    invariant_fail: float = 0.01


@dataclass(frozen=True)
class TransformParams:
    min_category_count: int = 20


@dataclass(frozen=True)
class TrainParams:
    hidden: tuple[int, ...] = (64, 32)
    embedding_dim: int = 8
    dropout: float = 0.2
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 10
    patience: int = 2
    seed: int = 42
    device: str = "auto"


@dataclass(frozen=True)
class EvaluateParams:
    threshold: float = 0.5
    min_slice_size: int = 300
    calibration_bins: int = 10


@dataclass(frozen=True)
class GateParams:
    min_auc_margin_over_baseline: float = 0.005
    max_auc_drop_vs_champion: float = 0.005
    max_slice_auc_drop: float = 0.03
    max_calibration_error: float = 0.06
    max_latency_ms: float = 20.0
    max_model_size_mb: float = 5.0
    auto_promote: bool = True  # Level 1: a pass moves `champion`; Level 2: the rollout decides


@dataclass(frozen=True)
class RetrainParams:
    """Level 2: when the controller (``mlops-lab loop``) retrains. See reference/loop/policy.py."""

    check_every_days: int = 7  # how often drift and live quality are checked
    window_days: int = 7  # recent traffic judged at each check
    # Drift is judged against the champion's own last months, each feature against thresholds
    # its own weeks set (reference/drift_reference.py): a flag there is already past a calm
    # week's worst by drift_margin, so one feature of 13 (0.077) is enough to call it drift.
    drift_share: float = 0.05  # share of drifted features that triggers
    drift_reference_months: int = 2  # the champion's most recent training months
    drift_margin: float = 1.25  # thresholds: this times the worst of the reference's own windows
    quality_drop: float = 0.03  # live AUC this far under the champion's gate AUC triggers
    min_labelled: int = 2000  # labelled rows before live quality counts
    cooldown_days: int = 14  # no retraining within this many days of the last one
    schedule_days: int = 60  # fallback: retrain when the champion's data is this old
    label_delay_days: int = 1  # an outcome is known this long after departure
    # The loop's gate floors (its holdout is one month; see params.yaml)
    gate_min_auc_margin_over_baseline: float = -0.01
    gate_max_calibration_error: float = 0.15


@dataclass(frozen=True)
class RolloutParams:
    """Level 2: shadow, then canary, then promote or roll back. See reference/loop/policy.py."""

    shadow_min_requests: int = 40
    shadow_max_days: int = 5  # no verdict by then (e.g. every request refused): roll back
    canary_percent: float = 25.0
    canary_mirror: bool = True  # the candidate also scores the champion's share (not answered)
    canary_min_requests: int = 40
    canary_min_labelled: int = 1000
    canary_min_days: int = 4  # labelled flights from this many days: a day's flights share weather
    canary_max_days: int = 10  # no verdict by then: roll back (the champion is the safe side)
    max_error_rate: float = 0.01  # candidate answers that failed or timed out
    max_latency_ratio: float = 3.0  # candidate p95 / champion p95 on the same requests
    min_spread_ratio: float = 0.5  # std of the candidate's scores / the champion's (collapse)
    max_score_ks: float = 0.8  # KS distance of the candidate's scores from the champion's
    alpha: float = 0.05  # DeLong's paired test of live AUC: worse at this level -> roll back
    timeout_s: float = 2.0  # a candidate slower than this counts as failed (the champion answers)


@dataclass(frozen=True)
class Params:
    split: SplitParams = field(default_factory=SplitParams)
    ingest: IngestParams = field(default_factory=IngestParams)
    validate: ValidateParams = field(default_factory=ValidateParams)
    transform: TransformParams = field(default_factory=TransformParams)
    train: TrainParams = field(default_factory=TrainParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    gate: GateParams = field(default_factory=GateParams)
    retrain: RetrainParams = field(default_factory=RetrainParams)
    rollout: RolloutParams = field(default_factory=RolloutParams)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# What each param may be, beyond its type: a learner's `--set train.epochs=0` is refused before
# it is written to params.yaml, with the rule, instead of failing deep inside a stage.
def _at_least(low):
    return (lambda v: v >= low), f"at least {low}"


def _between(low, high):
    return (lambda v: low <= v <= high), f"between {low} and {high}"


def _positive():
    return (lambda v: v > 0), "greater than 0"


def _fraction():
    return (lambda v: 0 <= v <= 1), "a fraction between 0 and 1"


def _fault_names() -> tuple[str, ...]:
    from reference.faults import FAULTS  # pandas: only when a drill is asked for

    return tuple(FAULTS)


_MONTH = _between(1, 12)
RULES: dict[str, tuple[Any, str]] = {
    "split.train_start": _MONTH,
    "split.train_end": _MONTH,
    "split.valid_months": _at_least(1),
    "split.holdout_months": _at_least(1),
    "ingest.cancelled": ((lambda v: v in ("exclude", "positive")), "'exclude' or 'positive'"),
    "ingest.inject_fault": (
        (lambda v: v == "none" or v in _fault_names()),
        "none or one of the drills in reference/faults.py: celsius, null_carrier, "
        "rename_column, new_carrier, arrival_timezone",
    ),
    "ingest.fault_month": _MONTH,
    "ingest.landed_through": _MONTH,
    "validate.reference_months": (
        (lambda v: bool(v) and all(1 <= m <= 12 for m in v)),
        "a non-empty list of months 1-12",
    ),
    "validate.missing_rate_warn": _fraction(),
    "validate.missing_rate_fail": _fraction(),
    "validate.out_of_range_warn": _fraction(),
    "validate.out_of_range_fail": _fraction(),
    "validate.unseen_category_warn": _fraction(),
    "validate.unseen_category_fail": _fraction(),
    "validate.invariant_fail": _fraction(),
    "transform.min_category_count": _at_least(1),
    "train.hidden": ((lambda v: bool(v) and all(n >= 1 for n in v)), "a list of layer widths >= 1"),
    "train.embedding_dim": _at_least(1),
    "train.dropout": ((lambda v: 0 <= v < 1), "at least 0 and below 1"),
    "train.batch_size": _at_least(1),
    "train.lr": _positive(),
    "train.weight_decay": _at_least(0),
    "train.epochs": _at_least(1),
    "train.patience": _at_least(0),
    "train.device": (
        (lambda v: re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v) is not None),
        "auto, cpu, cuda, cuda:N or mps",
    ),
    "evaluate.threshold": ((lambda v: 0 < v < 1), "between 0 and 1 (exclusive)"),
    "evaluate.min_slice_size": _at_least(1),
    "evaluate.calibration_bins": _at_least(2),
    "gate.max_latency_ms": _positive(),
    "gate.max_model_size_mb": _positive(),
    "retrain.check_every_days": _at_least(1),
    "retrain.window_days": _at_least(1),
    "retrain.drift_share": _fraction(),
    "retrain.drift_reference_months": _at_least(1),
    "retrain.drift_margin": _at_least(1),
    "retrain.min_labelled": _at_least(1),
    "retrain.cooldown_days": _at_least(0),
    "retrain.schedule_days": _at_least(1),
    "retrain.label_delay_days": _at_least(0),
    "rollout.shadow_min_requests": _at_least(1),
    "rollout.shadow_max_days": _at_least(1),
    "rollout.canary_percent": (
        (lambda v: 0 < v < 100),
        "a percentage between 0 and 100 (exclusive)",
    ),
    "rollout.canary_min_requests": _at_least(1),
    "rollout.canary_min_labelled": _at_least(1),
    "rollout.canary_min_days": _at_least(1),
    "rollout.canary_max_days": _at_least(1),
    "rollout.max_error_rate": _fraction(),
    "rollout.max_latency_ratio": _positive(),
    "rollout.min_spread_ratio": _at_least(0),
    "rollout.max_score_ks": _fraction(),
    "rollout.alpha": ((lambda v: 0 < v < 1), "between 0 and 1 (exclusive)"),
    "rollout.timeout_s": _positive(),
}


def _type_error(hint: str, value: Any) -> str | None:
    """Why ``value`` is not of the annotated type (None when it is). YAML gives ints, floats,
    strings, booleans, lists and nulls; a bool is not a number here (`epochs: yes` is a typo)."""

    def number(v, integer):
        if isinstance(v, bool) or not isinstance(v, int | float):
            return False
        return isinstance(v, int) if integer else True

    optional = hint.endswith("| None")
    base = hint.removesuffix("| None").strip()
    if value is None:
        return None if optional else "a value (it is empty)"
    if base == "int" and not number(value, True):
        return "a whole number"
    if base == "float" and not number(value, False):
        return "a number"
    if base == "bool" and not isinstance(value, bool):
        return "true or false"
    if base == "str" and not isinstance(value, str):
        return "a word (text)"
    if base.startswith("tuple[int") and (
        not isinstance(value, list | tuple) or not all(number(v, True) for v in value)
    ):
        return "a list of whole numbers, e.g. [64, 32]"
    return None


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """Build a params dataclass, rejecting unknown keys with a message that lists the known ones,
    and values of the wrong type or out of range with the rule they break."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    if not isinstance(values, dict):
        raise ValueError(f"{where} should be a section of key: value lines, not {values!r}")
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; known keys: {sorted(known)}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name) if name in known else None
        key = f"{where}.{name}".removeprefix("params.")
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value or {}, f"{where}.{name}")
            continue
        if str(known[name].type).startswith("float") and isinstance(value, str):
            # YAML 1.1 reads `1e-3` (no dot) as text; a learner means the number
            with contextlib.suppress(ValueError):
                value = float(value)
        wrong = _type_error(str(known[name].type), value)
        if wrong:
            raise ValueError(f"{key} = {value!r}: should be {wrong} (default: {default!r})")
        if key in RULES and value is not None:
            ok, rule = RULES[key]
            if not ok(value):
                raise ValueError(f"{key} = {value!r}: should be {rule} (default: {default!r})")
        if isinstance(default, tuple) and isinstance(value, list):
            kwargs[name] = tuple(value)
        elif isinstance(default, float) and isinstance(value, int):
            kwargs[name] = float(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def params_from_dict(values: dict[str, Any] | None) -> Params:
    params = _build(Params, values or {}, "params")
    params.split.months()  # the windows must fit in the year: say so now, not in a stage
    return params


def load_params(path: str | Path = "params.yaml", overrides: list[str] | None = None) -> Params:
    """Read params.yaml (missing file = defaults) and apply ``section.key=value`` overrides."""
    import yaml  # here, not at the top: the training core imports this module on a bare GPU box

    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text()) if path.exists() else {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ValueError(
            f"{path} is not valid YAML{where}: fix it, or delete it to start from the defaults"
        ) from None
    if values is not None and not isinstance(values, dict):
        raise ValueError(
            f"{path} should hold sections of key: value lines; delete it for the defaults"
        )
    values = apply_overrides(values or {}, overrides or [])
    try:
        return params_from_dict(values)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``values`` with each ``a.b=value`` applied; the value is parsed as YAML."""
    import yaml

    out = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) != 2 or not all(parts):
            raise ValueError(
                f"override {item!r} should look like section.key=value, e.g. train.epochs=3"
            )
        section, name = parts
        out.setdefault(section, {})[name] = yaml.safe_load(raw)
    params_from_dict(out)  # validate names and shapes now, with a clear message
    return out


# --------------------------------------------------------------------------------------- settings


def make_dir(path: Path, what: str) -> None:
    """``mkdir -p``, failing with a message a learner can act on (a read-only disk, a file in
    the way) instead of an OSError deep in a stack."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RuntimeError(
            f"cannot create {what} ({e.strerror}): choose a writable workspace with "
            "--workspace DIR or MLOPS_LAB_WORKSPACE=DIR"
        ) from None


def _find_upwards(start: Path, predicate) -> Path | None:
    for folder in [start, *start.parents]:
        if predicate(folder):
            return folder
    return None


def _is_repo_root(folder: Path) -> bool:
    pyproject = folder / "pyproject.toml"
    return pyproject.is_file() and 'name = "mlops-lab"' in pyproject.read_text(errors="ignore")


def default_workspace(cwd: Path | None = None) -> Path:
    """Where work happens when MLOPS_LAB_WORKSPACE is not set.

    Inside a workspace (a stage run by DVC) that workspace; inside the repository its
    ``workspace/`` folder (git-ignored, so labs and demos never dirty tracked files); elsewhere
    ``~/mlops-lab-workspace``.
    """
    cwd = (cwd or Path.cwd()).resolve()
    found = _find_upwards(cwd, lambda f: (f / MARKER).is_file())
    if found:
        return found
    root = _find_upwards(cwd, _is_repo_root)
    if root:
        return root / "workspace"
    return Path.home() / "mlops-lab-workspace"


@dataclass(frozen=True)
class Settings:
    workspace: Path
    tracking_uri: str
    model_name: str = "flight-delay"
    experiment: str = "flight-delay"

    @property
    def project(self) -> Path:
        """The git + DVC repository where the pipeline runs."""
        return self.workspace / "project"

    @property
    def dvc_remote(self) -> Path:
        return self.workspace / "dvc-remote"

    @property
    def mlflow_dir(self) -> Path:
        return self.workspace / "mlflow"

    @property
    def artifact_root(self) -> str:
        return (self.mlflow_dir / "artifacts").as_uri()


def get_settings(workspace: str | Path | None = None) -> Settings:
    """Settings from the environment (see the module's docstring); ``workspace`` wins over
    MLOPS_LAB_WORKSPACE. Creates nothing."""
    ws = Path(workspace or os.environ.get("MLOPS_LAB_WORKSPACE") or default_workspace())
    ws = ws.expanduser().resolve()
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{ws / 'mlflow' / 'mlflow.db'}"
    name = os.environ.get("MLOPS_LAB_MODEL_NAME", "flight-delay")
    return Settings(workspace=ws, tracking_uri=uri, model_name=name, experiment=name)
