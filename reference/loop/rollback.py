"""Roll back the model, the data, or both: three different calls for three different incidents.

::

    model  the serving model is bad, its data is fine (a bug, a skew, worse on live labels):
           move the `champion` alias back to the previous version. Seconds; nothing retrains.
    data   a bad batch got into the data version, but no model trained on it serves yet (the gate
           or the canary stopped it): restore the project's data and params from a known-good
           commit with DVC, and retrain from it, so the next retrain does not learn the bad batch
           again. The retrained model reproduces the one first trained from that data.
    both   a model trained on bad data was promoted: the alias back now (users first), then the
           data, so the scheduled retraining does not bring the same model back.

    mlops-lab rollback model [--to 3]
    mlops-lab rollback data  [--to <project commit>]
    mlops-lab rollback both

Every version knows its data: the pipeline tags each MLflow run with ``data.commit``, the
project commit that holds its dvc.lock (the hashes of the batches) and params.yaml.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from reference.config import Settings


@dataclass(frozen=True)
class DataRollback:
    """What a data rollback restored, and whether the retrain reproduced the first model."""

    commit: str  # the project commit restored
    source_version: str | None  # the version first trained from it
    retrained_version: str | None  # the version the retrain registered
    source_auc: float | None
    retrained_auc: float | None

    @property
    def reproduced(self) -> bool:
        return (
            self.source_auc is not None
            and self.retrained_auc is not None
            and abs(self.source_auc - self.retrained_auc) < 1e-6
        )


def rollback_model(settings: Settings, to: str | None = None) -> tuple[str, str]:
    """Point `champion` back at ``to`` (default: the version it replaced). Returns (from, to)."""
    from reference import registry

    c = registry.client(settings)
    current = registry.version_by_alias(settings, registry.CHAMPION)
    if current is None:
        raise RuntimeError("there is no champion to roll back")
    target = to or current.tags.get("previous_champion")
    if not target:
        raise RuntimeError(
            f"v{current.version} has no previous champion recorded: name the version with --to"
        )
    try:
        c.get_model_version(settings.model_name, str(target))
    except Exception as e:
        raise RuntimeError(f"version {target} of {settings.model_name} does not exist") from e
    if str(target) == str(current.version):
        raise RuntimeError(f"v{target} is already the champion")
    c.set_registered_model_alias(settings.model_name, registry.CHAMPION, str(target))
    c.set_model_version_tag(settings.model_name, current.version, "rollback", "model")
    c.set_model_version_tag(settings.model_name, str(target), "restored_from", str(current.version))
    return str(current.version), str(target)


def _git(settings: Settings, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=settings.project, capture_output=True, text=True, check=False
    )
    if proc.returncode:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def data_commit(settings: Settings, version: str) -> str | None:
    """The project commit a registered version was trained from (its ``data.commit`` tag)."""
    from reference import registry

    return registry.version_run(settings, version).data.tags.get("data.commit")


def _holdout_auc(settings: Settings, version: str | None) -> float | None:
    from reference import registry

    if version is None:
        return None
    return registry.version_run(settings, version).data.metrics.get("holdout.auc")


def rollback_data(
    settings: Settings, to: str | None = None, retrain: bool = True, log: Path | None = None
) -> DataRollback:
    """Restore dvc.yaml, params.yaml and dvc.lock from ``to`` (default: the data the champion was
    trained on), check the data out of the DVC cache (or the remote), commit, and retrain.
    ``log``: append the retrain's stage output to this file instead of the terminal."""
    from reference import registry
    from reference.pipeline import run_pipeline, stage_env

    champion = registry.version_by_alias(settings, registry.CHAMPION)
    if to is None:
        if champion is None:
            raise RuntimeError("no champion: name the project commit to restore with --to")
        to = data_commit(settings, str(champion.version))
        if not to:
            raise RuntimeError(f"v{champion.version} has no data.commit tag: use --to")
    commit = _git(settings, "rev-parse", "--short", f"{to}^{{commit}}")
    # which version was trained from that commit (for the reproducibility check)
    source = None
    for mv in registry.client(settings).search_model_versions(f"name='{settings.model_name}'"):
        if data_commit(settings, str(mv.version)) == commit:
            source = str(mv.version)
            break
    _git(settings, "checkout", commit, "--", "dvc.yaml", "params.yaml", "dvc.lock")
    env = stage_env(settings)
    for args in (["checkout", "-q", "--force"], ["pull", "-q"]):
        proc = subprocess.run(
            [sys.executable, "-m", "dvc", *args],
            cwd=settings.project,
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode == 0:
            break
    else:
        raise RuntimeError(f"dvc could not restore the data of {commit}: {proc.stderr.strip()}")
    _git(settings, "add", "-A")
    _git(settings, "commit", "-q", "--allow-empty", "-m", f"rollback: data and params of {commit}")
    retrained = None
    if retrain:
        # the retrain registers a challenger; the alias stays where the model rollback (or the
        # champion) has it: a data rollback does not promote by itself
        result = run_pipeline(settings, ["gate.auto_promote=false"], force=True, log=log)
        if not result.ok:
            raise RuntimeError(f"the retrain from {commit} stopped at {result.failed_stage}")
        retrained = str(result.gate["candidate_version"]) if result.gate else None
    return DataRollback(
        commit,
        source,
        retrained,
        _holdout_auc(settings, source),
        _holdout_auc(settings, retrained),
    )
