"""watch: replay a real month through the server and look at it the way on-call would, twice.

First the classic view (status codes, readiness, latency), then the view of the predictions
(score distribution, predicted-positive rate against the band the reference learned, drift of the
inputs and the scores) and finally the alert rules of monitoring/alerts.yml, evaluated by
Prometheus' own rule engine (``promtool test rules``) on the series this replay produced. A
silently broken model passes the first view and fails the second: that is the lesson.

::

    mlops-lab watch --month 11                    # the champion, on November's flights
    mlops-lab watch --month 11 --fault constant   # the same, served by a broken deployment

Traffic is replayed in "minutes": after each slice of flights the server's /metrics is scraped,
which gives the 1-minute series a Prometheus server would have stored.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reference.band import SAMPLE_FRACTION, Band
from reference.serve import client

RULES = Path(__file__).resolve().parents[1] / "monitoring" / "alerts.yml"


def scrape(url: str, timeout: float = 10.0) -> dict[str, float]:
    """Every sample of the server's model_* metrics, keyed by its series selector."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"{url}/metrics", timeout=timeout).read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("model_") and not s.name.endswith("_created"):
                out[_selector(s.name, s.labels)] = float(s.value)
    return out


def _selector(name: str, labels: dict) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}" if inner else name


def replay(
    url: str,
    frame: pd.DataFrame,
    name: str,
    minutes: int = 20,
    batch: int = 64,
    prefix: str = "replay",
) -> list[dict[str, float]]:
    """Send the rows in time order, ``minutes`` slices; a scrape before and after each slice."""
    snapshots = [scrape(url)]
    for part in np.array_split(np.arange(len(frame)), minutes):
        rows = frame.iloc[part]
        for start in range(0, len(rows), batch):
            chunk = rows.iloc[start : start + batch]
            status, body = client.request(
                f"{url}/v1/models/{name}:predict", {"instances": client.instances(chunk)}
            )
            if status != 200:
                raise RuntimeError(f"replay request failed: HTTP {status}: {body}")
        snapshots.append(scrape(url))
    return snapshots


def promtool_alerts(
    snapshots: list[dict[str, float]], constants: dict[str, float], rules: Path = RULES
) -> list[str] | None:
    """Alert names firing at the end of the replay, or None when promtool is not installed."""
    promtool = shutil.which("promtool")
    if promtool is None or not rules.exists():
        return None
    import yaml

    names = [
        r["alert"]
        for g in yaml.safe_load(rules.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    ]
    keys = sorted(set().union(*snapshots))
    series = [{"series": k, "values": " ".join(_fmt(s.get(k)) for s in snapshots)} for k in keys]
    n = len(snapshots)
    series += [{"series": k, "values": " ".join([_fmt(v)] * n)} for k, v in constants.items()]
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": f"{n - 1}m", "alertname": a, "exp_alerts": []} for a in names
                ],
            }
        ],
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "replay_test.yml"
        path.write_text(yaml.safe_dump(test, sort_keys=False))
        proc = subprocess.run(
            [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60
        )
    if proc.returncode == 0:
        return []
    # every test expects no alert, so each failure is an alert that fired
    fired = re.findall(r"alertname: (\w+), time:", proc.stdout + proc.stderr)
    if not fired:
        raise RuntimeError(f"promtool failed:\n{proc.stdout}\n{proc.stderr}")
    return sorted(set(fired))


def _fmt(value: float | None) -> str:
    if value is None:
        return "_"  # no sample at this step (the series did not exist yet)
    return "NaN" if value != value else repr(float(value))


@dataclass
class WatchReport:
    """What a replay showed, in both views: status codes and readiness, then the predictions."""

    codes: dict[str, float]
    ready: bool
    scores: dict[float, float]  # bucket upper bound -> rows in that bucket
    positive_rate: float
    band: Band | None  # unpacks as (low, mean, high)
    drift: pd.DataFrame
    drift_share: float
    prediction_drift: float | None
    alerts: list[str] | None
    rows: int
    extra: dict = field(default_factory=dict)


def summarize(url: str, name: str, snapshots: list[dict[str, float]], drift, alerts) -> WatchReport:
    last = snapshots[-1]
    codes: dict[str, float] = {}
    for key, value in last.items():
        if key.startswith("model_requests_total"):
            code = re.search(r'code="(\d+)"', key).group(1)
            codes[code] = codes.get(code, 0) + value
    buckets = sorted(
        (float(re.search(r'le="([^"]+)"', k).group(1)), v)
        for k, v in last.items()
        if k.startswith("model_prediction_score_bucket")
    )
    scores, previous = {}, 0.0
    for bound, cumulative in buckets:
        scores[bound] = cumulative - previous
        previous = cumulative
    positives = sum(
        v for k, v in last.items() if k.startswith("model_predictions_total") and 'label="1"' in k
    )
    total = sum(v for k, v in last.items() if k.startswith("model_predictions_total"))
    table = pd.DataFrame(
        [
            {"feature": f, "score": d.score, "threshold": d.threshold, "drifted": d.drifted}
            for f, d in drift.features.items()
        ]
    ).sort_values("score", ascending=False)
    return WatchReport(
        codes=codes,
        ready=client.get_status(f"{url}/v2/models/{name}/ready") == 200,
        scores=scores,
        positive_rate=positives / total if total else float("nan"),
        band=drift.positive_rate_band,
        drift=table,
        drift_share=drift.drift_share,
        prediction_drift=drift.prediction.score if drift.prediction else None,
        alerts=alerts,
        rows=int(total),
    )


def _constant_series(drift) -> dict[str, float]:
    """The monitor job's gauges for this window, as the series promtool should see."""
    from prometheus_client import CollectorRegistry

    from reference import monitor

    registry = CollectorRegistry()
    monitor.export_gauges(drift, None, registry)
    out = {}
    for family in registry.collect():
        for s in family.samples:
            if s.value == s.value:  # NaN gauges stay absent: "no data" must not look like data
                out[_selector(s.name, s.labels)] = float(s.value)
    return out


def reference_window(
    settings, bundle, months: list[int], rows: int = 50_000, seed: int = 0
) -> pd.DataFrame:
    """The champion's training months, scored by the champion: what "normal" looked like."""
    from reference import ingest

    frame = ingest.read_months(months, settings.project / ingest.BATCH_DIR)
    sample = frame.sample(min(rows, len(frame)), random_state=seed).sort_values("sched_dep")
    sample = sample.assign(probability=bundle.predict_proba(sample), time=sample["sched_dep"])
    sample = sample.reset_index(drop=True)
    # A sample's consecutive rows span more hours than the live traffic's: the positive-rate band
    # (reference.band) reads this to cut windows that cover the same stretch of time.
    sample.attrs[SAMPLE_FRACTION] = len(sample) / len(frame)
    return sample


def watch(
    settings, month: int = 11, fault: str = "none", minutes: int = 20, log=print
) -> WatchReport:
    """Serve the champion (optionally broken), replay ``month``, and look at it both ways."""
    import json

    from reference import ingest, monitor, registry
    from reference.model import load_bundle
    from reference.serve.payload_log import read_payload_log

    champion = registry.version_by_alias(settings, registry.CHAMPION)
    if champion is None:
        raise RuntimeError("no champion to serve yet: run `mlops-lab pipeline` first")
    run = registry.client(settings).get_run(champion.run_id)
    train_months = json.loads(run.data.tags.get("split.train", "[1, 2, 3]"))
    with tempfile.TemporaryDirectory() as tmp:
        bundle = load_bundle(
            registry.download_bundle(settings, str(champion.version), Path(tmp) / "model")
        )
        reference = reference_window(settings, bundle, train_months)
        current = ingest.read_months([month], settings.project / ingest.BATCH_DIR).sort_values(
            "sched_dep"
        )
        payload = Path(tmp) / "payload"
        log(
            f"serving champion v{champion.version}{f' with fault {fault!r}' if fault != 'none' else ''}; "
            f"replaying {len(current):,} flights of 2013-{month:02d} in {minutes} one-minute slices"
        )
        server = client.start(
            settings,
            name=settings.model_name,
            args=["--fault", fault, "--payload-dir", str(payload)],
        )
        try:
            snapshots = replay(server.url, current, settings.model_name, minutes=minutes)
            served = read_payload_log(payload)
            window = current.reset_index(drop=True).assign(
                probability=served["probability"].to_numpy()
            )
            drift = monitor.drift_report(reference, window)
            alerts = promtool_alerts(snapshots, _constant_series(drift))
            return summarize(server.url, settings.model_name, snapshots, drift, alerts)
        finally:
            client.stop(server)


def render(report: WatchReport, title: str) -> None:
    """Print the two views: what a status-code dashboard sees, and what the predictions say."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=110)
    console.rule(f"[bold]{title}")
    ok = sum(v for c, v in report.codes.items() if c.startswith("2"))
    errors = sum(v for c, v in report.codes.items() if not c.startswith("2"))
    console.print(
        f"[bold]The classic view[/]: {int(ok):,} requests 200 OK, {int(errors)} errors; "
        f"readiness {'green' if report.ready else 'RED'}; {report.rows:,} rows scored"
    )
    console.print("[bold]The predictions[/]: score distribution (rows per 0.05 bucket)")
    peak = max(report.scores.values()) or 1
    for bound, count in report.scores.items():
        if bound <= 1.0 and (count or bound <= 0.6):
            console.print(
                f"  {bound - 0.05:4.2f}-{bound:4.2f} {'#' * int(40 * count / peak):40} {int(count):,}"
            )
    low, mean, high = report.band or (float("nan"),) * 3
    inside = low <= report.positive_rate <= high
    per = f" per {report.band.window_rows} rows" if report.band and report.band.window_rows else ""
    console.print(
        f"  predicted-positive rate {report.positive_rate:.1%} (reference band{per} "
        f"{low:.1%}-{high:.1%}, mean {mean:.1%}): {'inside' if inside else '[bold red]OUTSIDE[/]'}"
    )
    table = Table(
        title=f"Drift against the training reference: share {report.drift_share:.2f}, "
        f"prediction drift {report.prediction_drift if report.prediction_drift is None else round(report.prediction_drift, 3)}"
    )
    for col in ("feature", "score", "threshold", "drifted"):
        table.add_column(col)
    for row in report.drift.head(8).itertuples():
        table.add_row(
            row.feature,
            f"{row.score:.3f}",
            f"{row.threshold:.2f}",
            "[red]yes[/]" if row.drifted else "no",
        )
    console.print(table)
    if report.alerts is None:
        console.print(
            "alerts: promtool is not installed (apt-get install prometheus), so the rules were not evaluated"
        )
    elif report.alerts:
        console.print(
            f"[bold red]alerts that would fire[/] (monitoring/alerts.yml, evaluated by promtool): {', '.join(report.alerts)}"
        )
    else:
        console.print(
            "[green]no alert would fire[/] (monitoring/alerts.yml, evaluated by promtool)"
        )
