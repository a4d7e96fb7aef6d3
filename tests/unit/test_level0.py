"""Level 0: one call, one file, nothing tracked."""

from __future__ import annotations

import torch

from reference.level0 import train_by_hand
from reference.transform import FeatureTransform


def test_train_by_hand_saves_one_file_and_tracks_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = train_by_hand(
        train_months=(1, 2), valid_month=3, test_months=(4,), out="model.pt", epochs=1
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.pt"
    ]  # no mlruns, no dvc, no reports
    assert result["auc"] > 0.6
    saved = torch.load(tmp_path / "model.pt", weights_only=True)  # plain tensors and dicts
    assert set(saved) == {"state_dict", "transform"}
    assert FeatureTransform.from_dict(saved["transform"]).vocab["origin"] == ["EWR", "JFK", "LGA"]
