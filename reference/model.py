"""The model: a tabular network, and the bundle that carries it with its transform.

``TabularNet`` embeds each categorical column (carrier, origin, dest, hour, weekday), concatenates
the embeddings with the scaled numerics and runs an MLP to one logit.

A *bundle* is a folder with three files, the unit that is trained, logged, registered and served:

    weights.pt      the state_dict (loaded with ``weights_only=True``: tensors, never pickled code)
    model.json      the architecture, so the network can be rebuilt without the training code
    transform.json  the fitted feature transform (see reference.transform)

Imports only torch, numpy and pandas (plus this package's own pure modules).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from reference.transform import Encoded, FeatureTransform

FORMAT = "mlops-lab/tabular-net@1"


@dataclass(frozen=True)
class NetConfig:
    cardinalities: tuple[int, ...]
    num_features: int
    embedding_dim: int = 8
    hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.1


class TabularNet(nn.Module):
    """One embedding per categorical column, concatenated with the numerics, then an MLP."""

    def __init__(self, config: NetConfig):
        super().__init__()
        self.config = config
        self.embeddings = nn.ModuleList(
            nn.Embedding(card, config.embedding_dim) for card in config.cardinalities
        )
        layers: list[nn.Module] = []
        width = config.embedding_dim * len(config.cardinalities) + config.num_features
        for size in config.hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(config.dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """Codes (rows x categoricals) and numerics (rows x features) in, one logit per row out."""
        parts = [emb(cat[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.mlp(torch.cat([*parts, num], dim=1)).squeeze(1)


def predict_encoded(
    net: TabularNet, enc: Encoded, device: torch.device | str = "cpu", batch_size: int = 65536
) -> np.ndarray:
    """Probabilities for encoded rows, in eval mode, without autograd."""
    if net.training:  # eval() walks every module: skip it on the serving path, where it is set
        net.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(enc), batch_size):
            cat = torch.from_numpy(enc.cat[start : start + batch_size]).to(device)
            num = torch.from_numpy(enc.num[start : start + batch_size]).to(device)
            out.append(torch.sigmoid(net(cat, num)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


@dataclass
class Bundle:
    net: TabularNet
    transform: FeatureTransform

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        """Raw feature rows in, probability of a late arrival out: the exact serving path."""
        return predict_encoded(self.net, self.transform.apply(df))

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.net.state_dict(), folder / "weights.pt")
        config = {"format": FORMAT, **asdict(self.net.config)}
        (folder / "model.json").write_text(json.dumps(config, indent=1) + "\n")
        self.transform.save(folder / "transform.json")
        return folder


def load_bundle(folder: str | Path) -> Bundle:
    folder = Path(folder)
    if not (folder / "model.json").is_file():
        raise FileNotFoundError(
            f"{folder} is not a model bundle (no model.json): was the model trained?"
        )
    config = json.loads((folder / "model.json").read_text())
    if config.pop("format", None) != FORMAT:
        raise ValueError(f"{folder}/model.json is not a {FORMAT} model")
    config["cardinalities"] = tuple(config["cardinalities"])
    config["hidden"] = tuple(config["hidden"])
    net = TabularNet(NetConfig(**config))
    net.load_state_dict(torch.load(folder / "weights.pt", map_location="cpu", weights_only=True))
    net.eval()
    return Bundle(net=net, transform=FeatureTransform.load(folder / "transform.json"))


def bundle_size_mb(folder: str | Path) -> float:
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file()) / 1e6
