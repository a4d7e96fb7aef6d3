"""Solutions to lab 05. Try each exercise first.

Each function gets the lab (``lab.facts["url"]`` is the running server's address) and returns the
answer that the exercise's check cell tests.
"""

from __future__ import annotations

import json
import time

import numpy as np

from reference import ingest
from reference.serve import client


def _flights(lab):
    """November's flights in time order, as the lab reads them."""
    return (
        ingest.read_months([11], lab.settings.project / ingest.BATCH_DIR)
        .sort_values("sched_dep", kind="stable")
        .reset_index(drop=True)
    )


def _v1(lab) -> str:
    return f"{lab.facts['url']}/v1/models/{lab.settings.model_name}:predict"


def exercise_1(lab):
    """A V2 request for the first five flights of 5 November: the probabilities."""
    flights = _flights(lab)
    rows = flights[flights["day"] == 5].head(5)
    url = f"{lab.facts['url']}/v2/models/{lab.settings.model_name}/infer"
    status, body = client.request(url, {"inputs": client.v2_inputs(rows)})
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body}")
    outputs = {o["name"]: o["data"] for o in body["outputs"]}
    return [float(p) for p in outputs["probability"]]


def exercise_2(lab):
    """The largest batch the server accepts: bisect between a size that fits and one that doesn't."""
    flights = _flights(lab)

    def status(n: int) -> int:
        return client.request(_v1(lab), {"instances": client.instances(flights.head(n))})[0]

    fits, over = 1, 2
    while status(over) == 200:  # double until too big: 2, 4, ..., 2048
        fits, over = over, over * 2
    while over - fits > 1:  # then bisect: fits always gets a 200, over a 413
        middle = (fits + over) // 2
        if status(middle) == 200:
            fits = middle
        else:
            over = middle
    return fits


def exercise_3(lab):
    """50 sequential V1 requests of 64 rows: p95 latency (ms) and rows per second."""
    flights = _flights(lab)
    bodies = [
        json.dumps({"instances": client.instances(flights.iloc[i * 64 : (i + 1) * 64])}).encode()
        for i in range(50)
    ]
    latencies = []
    started = time.perf_counter()
    for body in bodies:
        t = time.perf_counter()
        status, answer = client.request(_v1(lab), body)
        latencies.append(1000 * (time.perf_counter() - t))
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {answer}")
    seconds = time.perf_counter() - started
    return {"p95_ms": float(np.percentile(latencies, 95)), "rows_per_s": 50 * 64 / seconds}


def exercise_4(lab):
    """The first November flight to YYZ, an unseen airport: its probability, and the counter."""
    from reference.watch import scrape

    series = 'model_feature_unknown_category_total{feature="dest"}'
    first = client.instances(_flights(lab).head(1))[0]
    before = scrape(lab.facts["url"]).get(series, 0)
    status, body = client.request(_v1(lab), {"instances": [{**first, "dest": "YYZ"}]})
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body}")
    after = scrape(lab.facts["url"]).get(series, 0)
    return {"probability": body["predictions"][0]["probability"], "counted": after - before}
