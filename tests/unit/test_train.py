"""The training core on a real slice: reproducible, early stopping, bundle round trip, AUC."""

from __future__ import annotations

import ast
import inspect
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from reference import metrics as metrics_module
from reference import model as model_module
from reference import train as train_module
from reference import transform as transform_module
from reference.config import TrainParams
from reference.model import load_bundle
from reference.train import labelled, roc_auc, select_device, train_bundle
from reference.transform import FeatureTransform

SMALL = replace(TrainParams(), hidden=(16,), epochs=2, batch_size=2048)


@pytest.fixture(scope="module")
def slices(flights):
    jan = flights[flights["month"] == 1].reset_index(drop=True)
    feb = flights[flights["month"] == 2].reset_index(drop=True)
    return jan, feb, FeatureTransform.fit(jan)


@pytest.fixture(scope="module")
def trained(slices):
    jan, feb, transform = slices
    return train_bundle(jan, feb, transform, SMALL, log=lambda _: None)


def test_rank_auc_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    p = np.round(rng.random(5000) * 0.5 + y * 0.2, 2)  # rounding makes ties
    assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert np.isnan(roc_auc(np.ones(3), np.array([0.1, 0.2, 0.3])))


def test_training_learns_something_real(trained, slices):
    bundle, result = trained
    _, feb, _ = slices
    feb = labelled(feb)
    # one month, two epochs, a tiny net: well above chance (0.5) on 23k unseen rows is the point
    assert roc_auc(feb["delayed"].to_numpy(), bundle.predict_proba(feb)) > 0.56
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert result.device == "cpu" and result.samples_per_s > 0


def test_same_seed_same_weights(slices, trained):
    jan, feb, transform = slices
    again, _ = train_bundle(jan, feb, transform, SMALL, log=lambda _: None)
    for a, b in zip(
        trained[0].net.state_dict().values(), again.net.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    other, _ = train_bundle(jan, feb, transform, replace(SMALL, seed=7), log=lambda _: None)
    assert not torch.equal(other.net.mlp[0].weight, trained[0].net.mlp[0].weight)


def test_early_stopping_keeps_the_best_epoch(slices):
    jan, feb, transform = slices
    lines = []
    # a learning rate this high makes validation loss worse after the first epochs
    _, result = train_bundle(
        jan, feb, transform, replace(SMALL, epochs=8, lr=0.2, patience=1), log=lines.append
    )
    best = min(result.history, key=lambda h: h["valid_loss"])
    assert result.best_epoch == best["epoch"]
    assert len(result.history) < 8
    assert any(line.startswith("early stop") for line in lines)


def test_bundle_round_trip_predicts_the_same(trained, slices, tmp_path):
    bundle, _ = trained
    _, feb, _ = slices
    bundle.save(tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "model.json",
        "transform.json",
        "weights.pt",
    ]
    np.testing.assert_array_equal(
        load_bundle(tmp_path / "b").predict_proba(feb), bundle.predict_proba(feb)
    )
    with pytest.raises(FileNotFoundError, match="not a model bundle"):
        load_bundle(tmp_path)


def test_device_selection():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no GPU"):
            select_device("cuda")


@pytest.mark.parametrize("module", [train_module, model_module, transform_module, metrics_module])
def test_training_core_imports_only_torch_numpy_pandas(module):
    # so the same code runs on a bare GPU machine with just torch, numpy and pandas
    allowed = {"torch", "numpy", "pandas", "reference", "__future__"}
    stdlib = set(sys.stdlib_module_names)  # what every Python has, the GPU machine's 3.12 too
    tree = ast.parse(inspect.getsource(module))
    top = set()
    for node in tree.body:  # module-level imports only; lazy imports inside stage wrappers are fine
        if isinstance(node, ast.Import):
            top |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            top.add((node.module or "").split(".")[0])
    assert top <= allowed | stdlib, top - allowed - stdlib
