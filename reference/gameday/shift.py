"""One on-call shift: real traffic through the real servers, and the evidence it leaves.

A shift starts what the deployment says (the champion's model server, and for a canary the
candidate's server behind the local router), replays real December flights through it with the
upstream feed as it is (maybe broken), stops everything, and measures what an on-call engineer
would look at: status codes, the score distribution, unknown categories, impossible values, the
drift report, live AUC on the outcomes that arrived, the canary's paired comparison, the incoming
batch's validation, and the alert rules of monitoring/alerts.yml evaluated by promtool.

The measured facts become findings (reference.gameday.incidents.FINDINGS): a system is healthy
when a shift finds none. Nothing here knows which incident is live: it only measures.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reference.gameday.evidence import findings, gauges, measure
from reference.loop.router import spawn

BATCH = 32  # flights per request
SLICES = 20  # /metrics scrapes per shift: the one-minute series promtool evaluates
ROUTER_TIMEOUT_S = 0.3  # a candidate slower than this is answered for by the champion


@dataclass
class Deployment:
    """What runs and what flows in: the game's state, which fixes change."""

    champion: str  # the version @champion serves
    faults: dict[str, str] = field(default_factory=dict)  # version -> the predictor fault it has
    canary: dict | None = None  # {"version", "percent", "hang"}
    traffic_fault: str = "none"  # reference.faults name applied to what upstream sends
    labels_stop: bool = False
    incoming: str | None = None  # path of a monthly batch waiting for the pipeline
    incoming_fault: str | None = None
    image_fault: str = "none"  # a broken serving image: every version deployed on it has the fault

    def fault(self, version: str) -> str:
        return self.faults.get(version, "none")


def flights(settings, days: list[dt.date]) -> pd.DataFrame:
    """The real flights that departed on ``days`` (the project's monthly batches)."""
    from reference import ingest

    months = sorted({d.month for d in days})
    frame = ingest.read_months(months, settings.project / ingest.BATCH_DIR)
    when = pd.to_datetime(frame["sched_dep"]).dt.date
    return frame[when.isin(days)].sort_values("sched_dep").reset_index(drop=True)


# ---------------------------------------------------------------------------------- processes
def _server(settings, version: str, fault: str, out: Path, tag: str):
    from reference.serve import client

    return client.start(
        settings,
        name=settings.model_name,
        args=[
            "--model-uri", f"models:/{settings.model_name}/{version}", "--fault", fault,
            "--payload-dir", str(out / f"payload-{tag}"),
        ],
        log=out / f"server-{tag}.log",
    )  # fmt: skip


SCRAPE_TIMEOUT_S = 2.0


def _scrape_all(urls: list[str], down: set[str]) -> dict[str, float]:
    """One scrape of every server, merged: series of two servers with the same name are summed,
    as Prometheus' sum() over instances would. A server that did not answer once is left out
    of the later scrapes (its samples are simply missing, as with Prometheus' up == 0)."""
    from reference.watch import scrape

    merged: dict[str, float] = {}
    for url in urls:
        if url in down:
            continue
        try:
            for key, value in scrape(url, timeout=SCRAPE_TIMEOUT_S).items():
                merged[key] = merged.get(key, 0.0) + value
        except OSError:
            down.add(url)
    return merged


def _send(http, url: str, model: str, frame: pd.DataFrame, request_id: str) -> int:
    from reference.loop.traffic import instances

    try:
        return http.post(
            f"{url}/v1/models/{model}:predict",
            json={"instances": instances(frame)},
            headers={"x-request-id": request_id},
        ).status_code
    except Exception:  # the endpoint did not answer at all: counted, the shift goes on
        return 0


# ----------------------------------------------------------------------------------- the shift
def run_shift(
    settings, deployment: Deployment, days: list[dt.date], out: Path, log=print, drift: bool = True
):
    """Serve ``days`` of traffic as ``deployment`` says; return the Evidence (also in ``out``).
    ``drift=False`` skips the drift report (a check after a fix: no finding depends on it)."""
    import httpx

    from reference import faults
    from reference.serve import client
    from reference.watch import promtool_alerts

    out.mkdir(parents=True, exist_ok=True)
    frame = flights(settings, days)
    sent = faults.inject(frame, deployment.traffic_fault)
    champion = _server(
        settings, deployment.champion, deployment.fault(deployment.champion), out, "champion"
    )
    servers, router, candidate = [champion], None, None
    codes: dict[str, int] = {}
    ledger: dict[str, list[int]] = {}
    snapshots: list[dict[str, float]] = []
    candidate_ready = None
    finals: dict[str, dict[str, float]] = {}
    down: set[str] = set()
    try:
        url = champion.url
        canary = deployment.canary
        if canary:
            candidate = _server(
                settings, canary["version"], deployment.fault(canary["version"]), out, "candidate"
            )
            servers.append(candidate)
            router, url = spawn(champion.url, deployment.champion, out, ROUTER_TIMEOUT_S)
            cfg = {
                "mode": "canary",
                "percent": canary["percent"],
                "candidate": {"url": candidate.url, "version": canary["version"]},
                # the game's canary is a cluster's (KServe's canaryTrafficPercent): no mirror, so
                # the on-call page's evidence is the candidate's share alone, as it would be there
                "mirror": False,
            }
            httpx.put(f"{url}/router/config", json=cfg, timeout=10).raise_for_status()
        starts = list(range(0, len(frame), BATCH))
        slices = np.array_split(np.arange(len(starts)), SLICES)
        snapshots.append(_scrape_all([s.url for s in servers], down))
        with httpx.Client(timeout=30) as http:
            for n, part in enumerate(slices):
                if canary and canary.get("hang") and n == SLICES // 4:
                    os.kill(candidate.proc.pid, signal.SIGSTOP)  # the candidate hangs
                for i in part:
                    start = starts[i]
                    rows = sent.iloc[start : start + BATCH]
                    day = pd.Timestamp(frame["sched_dep"].iloc[start]).date().isoformat()
                    request_id = f"{day}-{i:05d}"
                    ledger[request_id] = frame["row_id"].iloc[start : start + BATCH].tolist()
                    code = str(_send(http, url, settings.model_name, rows, request_id))
                    codes[code] = codes.get(code, 0) + 1
                snapshots.append(_scrape_all([s.url for s in servers], down))
        (out / "metrics.prom").write_text(_metrics_text(champion.url))
        if candidate is not None and candidate.url not in down:
            (out / "metrics-candidate.prom").write_text(_metrics_text(candidate.url))
        # per server: the champion answers (or scores) every request; the candidate only its share
        finals = {
            tag: _scrape_all([s.url], down)
            for tag, s in (("champion", champion), ("candidate", candidate))
            if s is not None
        }
        if candidate is not None:
            candidate_ready = candidate.url not in down and (
                client.get_status(f"{candidate.url}/v2/models/{settings.model_name}/ready") == 200
            )
    finally:
        if candidate is not None and deployment.canary.get("hang"):
            os.kill(candidate.proc.pid, signal.SIGCONT)  # so that it can be stopped cleanly
        for s in servers:
            client.stop(s, grace_s=5)
        if router is not None:
            router.terminate()
            router.wait(timeout=10)
    evidence = measure(settings, deployment, frame, days, out, codes, ledger, finals, drift)
    if candidate is not None:
        evidence.canary = (evidence.canary or {}) | {"ready": candidate_ready}
    constants = gauges(evidence)
    evidence.alerts = promtool_alerts(snapshots, constants)
    findings(evidence)
    (out / "evidence.json").write_text(json.dumps(evidence.to_dict(), indent=2, default=str))
    return evidence


def _metrics_text(url: str) -> str:
    import urllib.request

    try:
        return urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    except OSError as e:
        return f"# /metrics did not answer: {e}\n"
