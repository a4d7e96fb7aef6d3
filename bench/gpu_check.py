"""GPU check: the training core with the laptop and the `gpu` params profiles, on CPU and CUDA.

    .venv/bin/python bench/gpu_check.py --batches workspace/lab05/project/data/batches
    python3 gpu_check.py --batches batches/ --devices cpu cuda     # on a bare GPU machine

Trains on January-September, stops early on October, and scores November-December, for each
profile on each device; prints samples/s and the holdout AUC, and whether the AUCs of the two
devices agree within 0.01. Needs only torch, numpy and pandas (and pyarrow to read the monthly
parquet batches), so it runs on a GPU machine that has no package index: carry this file, the
`reference` package folder and the batches. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# the cluster's gpu overlay sets this profile (cluster/manifests/overlays/gpu); laptop: the defaults
PROFILES = {
    "laptop": {},
    "gpu": {"hidden": (512, 256), "batch_size": 8192},
}
TRAIN, VALID, HOLDOUT = range(1, 10), [10], [11, 12]


def read(batches: Path, months):
    import pandas as pd

    return pd.concat(
        [pd.read_parquet(batches / f"2013-{m:02d}.parquet") for m in months], ignore_index=True
    )


def main() -> int:
    import numpy as np
    import torch

    from reference.config import TrainParams
    from reference.metrics import roc_auc
    from reference.model import predict_encoded
    from reference.train import labelled, train_bundle
    from reference.transform import FeatureTransform

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=Path, required=True, help="folder of 2013-MM.parquet")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if "cuda" in args.devices and not torch.cuda.is_available():
        print("torch sees no CUDA device: checking the CPU only", file=sys.stderr)
        args.devices = [d for d in args.devices if d != "cuda"]
    train_df, valid_df = labelled(read(args.batches, TRAIN)), labelled(read(args.batches, VALID))
    holdout = labelled(read(args.batches, HOLDOUT))
    transform = FeatureTransform.fit(train_df)
    rows = []
    for profile, changes in PROFILES.items():
        for device in args.devices:
            params = replace(
                TrainParams(), epochs=args.epochs, patience=args.epochs, device=device, **changes
            )
            started = time.perf_counter()
            bundle, result = train_bundle(
                train_df, valid_df, transform, params, log=lambda *_: None
            )
            seconds = time.perf_counter() - started
            device_of = next(bundle.net.parameters()).device
            p = predict_encoded(bundle.net, transform.apply(holdout), device=device_of)
            auc = float(roc_auc(holdout["delayed"].to_numpy(), np.asarray(p)))
            name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
            rows.append({"profile": profile, "device": name, "samples_per_s": result.samples_per_s,
                         "seconds": seconds, "holdout_auc": auc})  # fmt: skip
            print(f"{profile:6} {name:28} {result.samples_per_s / 1e6:6.2f} M samples/s  "
                  f"{seconds:6.1f} s  holdout AUC {auc:.4f}", flush=True)  # fmt: skip
    for profile in PROFILES:
        aucs = [r["holdout_auc"] for r in rows if r["profile"] == profile]
        if len(aucs) > 1:
            gap = max(aucs) - min(aucs)
            print(f"{profile}: AUCs agree within 0.01: {gap <= 0.01} (gap {gap:.4f})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
