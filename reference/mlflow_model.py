"""The MLflow pyfunc wrapper, logged as *code* ("models from code"), not as a pickle.

Why this format rather than ``mlflow.pytorch``: MLflow 3's default PyTorch format (``pt2``,
torch.export) needs an input example, loads back as a GraphModule rather than our class and ran
the forward pass 2.3x slower than the eager module here; the older pickle format unpickles code.
A pyfunc from code stores this file, the bundle (state_dict + architecture + transform as JSON)
and the ``reference`` package, so ``mlflow.pyfunc.load_model`` and ``mlflow models serve`` work
without this project installed, the transform always travels with the weights, and loading never
unpickles anything.

Input: a DataFrame of raw feature columns (see reference.features). Output: a DataFrame with the
probability of a late arrival and the label at the operating threshold.

This file is a script that MLflow runs when it loads the model (it ends in ``set_model``): pass
its path to ``log_model``; don't import it.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class FlightDelayModel(PythonModel):
    """The bundle behind MLflow's pyfunc interface: raw feature rows in, probability, label out."""

    def load_context(self, context) -> None:
        """Load the bundle from ``context.artifacts["bundle"]`` and the operating threshold from
        ``context.model_config["threshold"]`` (0.5 when absent)."""
        from reference.model import load_bundle

        self.bundle = load_bundle(context.artifacts["bundle"])
        self.threshold = float((context.model_config or {}).get("threshold", 0.5))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Raw feature rows in; ``probability`` of a late arrival and ``label`` (int64) out."""
        proba = self.bundle.predict_proba(pd.DataFrame(model_input))
        return pd.DataFrame(
            {"probability": proba, "label": (proba >= self.threshold).astype("int64")}
        )


mlflow.models.set_model(FlightDelayModel())
