"""train: fit the tabular network on the training window, stop early on the next month.

The core (``fit``) is seeded and reproducible, picks CUDA when present, prints one progress line
an epoch, and imports only torch, numpy and pandas, so the same function runs on a laptop CPU and
on a bare GPU machine.

::

    mlops-lab train                       # inside a workspace project
    mlops-lab train --set train.epochs=3  # (through `mlops-lab pipeline`, which tracks params)
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reference.config import TrainParams
from reference.metrics import log_loss, roc_auc
from reference.model import Bundle, NetConfig, TabularNet, predict_encoded
from reference.transform import Encoded, FeatureTransform

OUT = Path("models/candidate")
METRICS = Path("metrics/train.json")


def select_device(preference: str = "auto") -> torch.device:
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            "train.device asks for CUDA but torch sees no GPU; use train.device=auto or cpu"
        )
    return torch.device(preference)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainResult:
    net: TabularNet
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    device: str = "cpu"
    seconds: float = 0.0
    samples_per_s: float = 0.0

    def summary(self) -> dict:
        return {
            "best_epoch": self.best_epoch,
            "epochs_run": len(self.history),
            "device": self.device,
            "seconds": round(self.seconds, 2),
            "samples_per_s": round(self.samples_per_s),
            "history": self.history,
        }


def fit(
    train: Encoded,
    y_train: np.ndarray,
    valid: Encoded,
    y_valid: np.ndarray,
    cardinalities: list[int],
    params: TrainParams,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train with Adam on BCE, keep the weights of the best validation loss, stop on patience."""
    seed_everything(params.seed)
    device = select_device(params.device)
    config = NetConfig(
        cardinalities=tuple(cardinalities),
        num_features=train.num.shape[1],
        embedding_dim=params.embedding_dim,
        hidden=tuple(params.hidden),
        dropout=params.dropout,
    )
    net = TabularNet(config).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    cat = torch.from_numpy(train.cat).to(device)
    num = torch.from_numpy(train.num).to(device)
    target = torch.from_numpy(np.asarray(y_train, dtype=np.float32)).to(device)
    generator = torch.Generator(device="cpu").manual_seed(params.seed)

    best_loss, best_state, best_epoch, stale = float("inf"), None, 0, 0
    history: list[dict] = []
    started = time.perf_counter()
    seen = 0
    log(f"training on {len(train):,} rows ({device}), validating on {len(valid):,}")
    for epoch in range(1, params.epochs + 1):
        net.train()
        tick = time.perf_counter()
        order = torch.randperm(len(train), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(train), params.batch_size):
            idx = order[start : start + params.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(cat[idx], num[idx]), target[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if device.type == "cuda":
            torch.cuda.synchronize()
        epoch_s = time.perf_counter() - tick
        seen += len(train)
        p_valid = predict_encoded(net, valid, device)
        yv = np.asarray(y_valid, dtype=np.float64)
        valid_loss = log_loss(yv, p_valid)
        row = {
            "epoch": epoch,
            "train_loss": round(total / len(train), 5),
            "valid_loss": round(valid_loss, 5),
            "valid_auc": round(roc_auc(yv, p_valid), 5),
            "samples_per_s": round(len(train) / epoch_s),
        }
        history.append(row)
        improved = valid_loss < best_loss - 1e-5
        if improved:
            best_loss, best_epoch, stale = valid_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
        log(
            f"epoch {epoch}/{params.epochs}  train loss {row['train_loss']:.4f}  "
            f"valid loss {row['valid_loss']:.4f}  valid AUC {row['valid_auc']:.4f}  "
            f"{row['samples_per_s'] / 1e6:.2f} M samples/s{'  *' if improved else ''}"
        )
        if stale >= params.patience:
            log(f"early stop: no improvement for {stale} epochs; keeping epoch {best_epoch}")
            break
    seconds = time.perf_counter() - started
    net.load_state_dict(best_state)
    net = net.to("cpu").eval()
    return TrainResult(
        net=net,
        history=history,
        best_epoch=best_epoch,
        device=str(device),
        seconds=seconds,
        samples_per_s=seen / max(sum(len(train) / h["samples_per_s"] for h in history), 1e-9),
    )


def labelled(df):
    """Rows with a label (cancelled/diverted flights are unlabelled under ingest.cancelled=exclude)."""
    return df[df["delayed"].notna()].reset_index(drop=True)


def train_bundle(
    train_df, valid_df, transform: FeatureTransform, params: TrainParams, log=print
) -> tuple[Bundle, TrainResult]:
    """Raw labelled frames in, a trained bundle out."""
    train_df, valid_df = labelled(train_df), labelled(valid_df)
    result = fit(
        transform.apply(train_df),
        train_df["delayed"].to_numpy(),
        transform.apply(valid_df),
        valid_df["delayed"].to_numpy(),
        transform.cardinalities,
        params,
        log=log,
    )
    return Bundle(net=result.net, transform=transform), result


def run(
    params,
    batch_dir: Path | None = None,
    out: Path = OUT,
    metrics: Path = METRICS,
    transform_path: Path | None = None,
):
    """The stage: read the windows, train, save the bundle and the training metrics."""
    from reference import ingest
    from reference.transform import OUT as TRANSFORM_OUT

    months = params.split.months()
    batch_dir = batch_dir or ingest.BATCH_DIR
    train_df = ingest.read_months(months["train"], batch_dir)
    valid_df = ingest.read_months(months["valid"], batch_dir)
    transform = FeatureTransform.load(transform_path or TRANSFORM_OUT)
    dropped = int(train_df["delayed"].isna().sum() + valid_df["delayed"].isna().sum())
    print(
        f"train months {months['train']}, valid months {months['valid']}; {dropped:,} unlabelled rows left out"
    )
    bundle, result = train_bundle(train_df, valid_df, transform, params.train)
    bundle.save(out)
    metrics.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        **result.summary(),
        "unlabelled_rows_left_out": dropped,
        "train_months": months["train"],
    }
    metrics.write_text(json.dumps(summary, indent=2) + "\n")
    return bundle, result
