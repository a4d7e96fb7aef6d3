"""What uvicorn and FastAPI cost on their own: a diagnostic beside bench/serving.py.

    .venv/bin/python bench/serving_http_floor.py

Not in ``make bench`` and not a target: it gives the server CPU target a yardstick. A FastAPI app
of a dozen lines, no model, reads a V1 body of real flights with orjson and answers one
prediction per row. It is served by uvicorn with the same two workers as ``mlops-lab serve``, on
127.0.0.1, and loaded by bench/serving.py's own generator at concurrency 8 (single rows, then
batches of 64). Server CPU per request is its process tree's CPU time over the requests answered,
as bench/serving.py counts it. Whatever our server spends above this is KServe's data plane, the
guard and the predictor.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import serving  # bench/ is on sys.path when run as a script

APP = """
import orjson
from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.post("/v1/models/m:predict")
async def predict(request: Request):
    rows = orjson.loads(await request.body())["instances"]
    answer = {"predictions": [{"probability": 0.5, "label": 0} for _ in rows]}
    return Response(orjson.dumps(answer), media_type="application/json")
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per cell")
    args = parser.parse_args(argv)
    from reference import ingest
    from reference.features import FEATURES
    from reference.serve import client

    flights, weather = ingest.load_raw()  # real flights, from the installed data package
    rows = ingest.build(flights[flights["month"] == 11], weather)[list(FEATURES)]
    rows = rows.sample(64, random_state=7).reset_index(drop=True)
    with tempfile.TemporaryDirectory(prefix="bench-http-floor-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "bare.py").write_text(APP)
        port = serving._free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bare:app", "--port", str(port)]
            + ["--host", "127.0.0.1", "--workers", str(serving.WORKERS)]
            + ["--no-access-log", "--log-level", "warning"],
            cwd=tmp,
            start_new_session=True,  # stopped as a group, as bench/serving.py stops its servers
        )
        run = serving.Running("fastapi", "bare", proc, "127.0.0.1", port, tmp / "none.log")
        try:
            deadline = time.monotonic() + 60
            while client.get_status(f"http://127.0.0.1:{port}/docs") != 200:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the bare FastAPI app did not start")
                time.sleep(0.2)
            time.sleep(1.0)  # every worker up
            run.watch()
            quiet = serving.Quiet(15, 120)
            for batch in (1, 64):
                body = serving._body("v1 instances", rows.iloc[:batch])
                requests = [serving._http("127.0.0.1", port, "/v1/models/m:predict", body)]
                for _ in range(2):
                    quiet()
                    res = asyncio.run(_cell(requests, port, run.cpu_seconds, args.seconds))
                    print(
                        f"bare FastAPI, {serving.WORKERS} workers, batch {batch:2d}: "
                        f"{res['req_s']:6,.0f} req/s, server {res['server_us_per_req']:4,.0f} µs "
                        f"a request ({res['server_cpu']:.0f}% CPU), p50 {res['p50_ms']:.2f} ms",
                        flush=True,
                    )
        finally:
            serving.stop(run)
    return 0


async def _cell(requests: list[bytes], port: int, cpu, seconds: float) -> dict:
    load = serving.Load(requests)
    await load.open("127.0.0.1", port, 8)
    await load.phase(0.5, cpu)  # warm-up
    result = await load.phase(seconds, cpu)
    load.close()
    return result


if __name__ == "__main__":
    sys.exit(main())
