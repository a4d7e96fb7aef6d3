"""Level 0: the same model, trained by hand. One function call, one file saved, nothing tracked.

This is how most models start, and why Level 1 exists: no record of which data or params made
the file, no validation of the data, no comparison with the model in production, no way back.
The labs run it next to ``mlops-lab pipeline`` to make the contrast concrete.

::

    mlops-lab level0 --out model_level0.pt
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from reference.config import TrainParams


def train_by_hand(
    train_months: tuple[int, ...] = (1, 2, 3, 4, 5, 6),
    valid_month: int = 7,
    test_months: tuple[int, ...] = (8, 9, 10),
    out: str | Path = "model_level0.pt",
    epochs: int = 3,
) -> dict:
    """Load, fit, train, score, ``torch.save`` to a file. Returns the test AUC and the file path."""
    import torch

    from reference import ingest
    from reference.train import labelled, roc_auc, train_bundle
    from reference.transform import FeatureTransform

    flights, weather = ingest.load_raw()
    df = ingest.build(flights, weather)
    train_df = df[df["month"].isin(train_months)]
    transform = FeatureTransform.fit(train_df)
    bundle, _ = train_bundle(
        train_df, df[df["month"] == valid_month], transform, replace(TrainParams(), epochs=epochs)
    )
    test = labelled(df[df["month"].isin(test_months)])
    auc = roc_auc(test["delayed"].to_numpy(), bundle.predict_proba(test))
    # The Level 0 way: one file, whatever is in it. (Level 1 keeps the transform, the params,
    # the data version and the metrics together, in a registry.)
    out = Path(out)
    torch.save({"state_dict": bundle.net.state_dict(), "transform": transform.to_dict()}, out)
    print(
        f"Level 0: test AUC {auc:.4f} on months {list(test_months)}; saved {out} (and that is all we know about it)"
    )
    return {"auc": auc, "path": str(out)}
