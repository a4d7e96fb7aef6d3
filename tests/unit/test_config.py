"""Params and settings: defaults, overrides, the shipped params.yaml, workspace discovery."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from reference.config import (
    MARKER,
    Params,
    SplitParams,
    apply_overrides,
    default_workspace,
    get_settings,
    load_params,
    params_from_dict,
)


def test_shipped_params_yaml_matches_the_dataclass_defaults():
    # one source of truth for defaults: the file DVC tracks and the code agree
    shipped = yaml.safe_load(files("reference").joinpath("project", "params.yaml").read_text())
    assert params_from_dict(shipped) == Params()


def test_overrides_parse_values_as_yaml_and_keep_the_rest():
    params = load_params(
        Path("does-not-exist.yaml"),
        ["train.epochs=3", "train.hidden=[16, 8]", "validate.drift_fail=2.5"],
    )
    assert params.train.epochs == 3
    assert params.train.hidden == (16, 8)
    assert params.validate.drift_fail == 2.5
    assert params.split == SplitParams()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epoch=3", "unknown key(s) ['epoch'] in params.train"),
        ("trian.epochs=3", "unknown key(s) ['trian']"),
        ("epochs=3", "should look like section.key=value"),
        ("train.epochs", "should look like section.key=value"),
    ],
)
def test_bad_overrides_say_what_is_wrong(override, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        apply_overrides({}, [override])


def test_split_windows_follow_each_other_and_clip_to_the_year():
    assert SplitParams(1, 6, 1, 3).months() == {
        "train": [1, 2, 3, 4, 5, 6],
        "valid": [7],
        "holdout": [8, 9, 10],
    }
    assert SplitParams(1, 8, 1, 6).months()["holdout"] == [10, 11, 12]
    with pytest.raises(ValueError, match="empty window"):
        SplitParams(1, 11, 1, 3).months()


def test_workspace_discovery(tmp_path, monkeypatch):
    monkeypatch.delenv("MLOPS_LAB_WORKSPACE", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    repo = tmp_path / "repo"
    (repo / "labs").mkdir(parents=True)
    (repo / "pyproject.toml").write_text('[project]\nname = "mlops-lab"\n')
    assert default_workspace(repo / "labs") == repo / "workspace"  # from a notebook's folder
    ws = tmp_path / "elsewhere" / "ws"
    (ws / "project").mkdir(parents=True)
    (ws / MARKER).write_text("{}")
    assert default_workspace(ws / "project") == ws  # a DVC stage finds its workspace
    settings = get_settings(ws)
    assert settings.tracking_uri == f"sqlite:///{ws / 'mlflow' / 'mlflow.db'}"
    assert settings.project == ws / "project"


def test_settings_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_LAB_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("MLOPS_LAB_MODEL_NAME", "other")
    s = get_settings()
    assert (s.workspace, s.tracking_uri, s.model_name) == (
        tmp_path.resolve(),
        "http://127.0.0.1:5000",
        "other",
    )


def test_the_fault_rule_names_every_drill():
    from reference.config import RULES
    from reference.faults import FAULTS

    _, text = RULES["ingest.inject_fault"]
    assert all(name in text for name in FAULTS), text


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("train.epochs=abc", "should be a whole number"),
        ("train.epochs=true", "should be a whole number"),  # YAML's yes/true is not a count
        ("train.lr=-1", "greater than 0"),
        ("train.hidden=[64, 0]", "layer widths"),
        ("split.train_end=0", "between 1 and 12"),
        ("rollout.canary_percent=100", "between 0 and 100"),
        ("validate.reference_months=[]", "non-empty list"),
    ],
)
def test_a_value_of_the_wrong_type_or_range_names_the_rule(override, words):
    from reference.config import load_params

    with pytest.raises(ValueError, match=words):
        load_params("missing.yaml", [override])


def test_a_number_written_without_a_dot_is_still_a_number():
    from reference.config import load_params

    assert load_params("missing.yaml", ["train.lr=1e-3"]).train.lr == 0.001
