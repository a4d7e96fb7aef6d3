"""A small local router: one endpoint in front of the champion and a candidate model server.

This is the laptop stand-in for what KServe's canary and a service mesh (or a Gateway API
RequestMirror filter) do on a cluster. It is kept small on purpose: read it in one sitting.

::

    mode off      every request goes to the champion
    mode shadow   the champion answers; a copy goes to the candidate in the background; both
                  answers are logged (users never see the candidate's)
    mode canary   ``percent`` of requests (by a hash of the request id, so a retry lands on the
                  same side) are answered by the candidate; the champion scores them too, so
                  a candidate that fails or times out is replaced by the champion's answer (the
                  client never sees the failure) and live quality can be compared row by row.
                  With ``mirror`` (the default) the candidate also scores a copy of the
                  champion's share in the background, as in shadow: the paired comparison
                  sees every flight while only ``percent`` of the answers are the candidate's

    python -m reference.loop.router --port 8090 --champion http://127.0.0.1:8081 --log router.jsonl
    curl -X PUT 127.0.0.1:8090/router/config -d '{"mode": "canary", "percent": 25,
         "candidate": {"url": "http://127.0.0.1:8082", "version": "4"}}'

Every prediction request becomes one line of the JSONL log (request id, who answered, each
backend's status, latency and scores): the controller's evidence. ``/metrics`` has per-variant
counters and score histograms for Prometheus. Binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

MODES = ("off", "shadow", "canary")
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))


@dataclass(frozen=True)
class Backend:
    """A model server behind the router: its URL, and the model version it serves."""

    url: str
    version: str = "unknown"


@dataclass(frozen=True)
class RouterConfig:
    """Who answers: the champion, an optional candidate, the mode and the canary percent."""

    champion: Backend
    candidate: Backend | None = None
    mode: str = "off"
    percent: float = 0.0
    timeout_s: float = 2.0
    # canary: the candidate also scores the champion's share (users still get the champion's
    # answer there): every flight is paired, not only the candidate's share (docs/level2.md)
    mirror: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, base: RouterConfig | None = None) -> RouterConfig:
        """Validate a (partial) config; raises ValueError with what is wrong."""
        known = {"champion", "candidate", "mode", "percent", "timeout_s", "mirror"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config key(s) {unknown}; known: {sorted(known)}")
        merged = base.to_dict() if base else {}
        merged.update(values)

        def backend(value, name):
            if value is None:
                return None
            if not isinstance(value, dict) or not str(value.get("url", "")).startswith(
                ("http://", "https://")
            ):
                raise ValueError(f"{name} must be {{'url': 'http://host:port', 'version': '...'}}")
            return Backend(str(value["url"]).rstrip("/"), str(value.get("version", "unknown")))

        champion = backend(merged.get("champion"), "champion")
        if champion is None:
            raise ValueError("champion is required")
        candidate = backend(merged.get("candidate"), "candidate")
        mode = merged.get("mode", "off")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, not {mode!r}")
        try:
            percent = float(merged.get("percent", 0.0))
            timeout_s = float(merged.get("timeout_s", 2.0))
        except (TypeError, ValueError) as e:
            raise ValueError("percent and timeout_s must be numbers") from e
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"percent must be within 0-100, not {percent}")
        if not 0.0 < timeout_s <= 60.0:
            raise ValueError(f"timeout_s must be within (0, 60], not {timeout_s}")
        if mode != "off" and candidate is None:
            raise ValueError(f"mode {mode!r} needs a candidate")
        mirror = merged.get("mirror", True)
        if not isinstance(mirror, bool):
            raise ValueError(f"mirror must be true or false, not {mirror!r}")
        return cls(champion, candidate, mode, percent, timeout_s, mirror)


def goes_to_candidate(request_id: str, percent: float) -> bool:
    """Sticky split: the same request id always lands on the same side."""
    bucket = int.from_bytes(hashlib.sha1(request_id.encode()).digest()[:4], "big") % 10_000
    return bucket < percent * 100


def scores_of(body: bytes) -> list[float] | None:
    """The probabilities in a V1 or V2 answer of the predictor (None if it has none)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("predictions"), list):
        return [float(p.get("probability", "nan")) for p in data["predictions"]]
    for out in data.get("outputs", []) if isinstance(data, dict) else []:
        if out.get("name") == "probability":
            return [float(v) for v in out.get("data", [])]
    return None


class Router:
    """The routing core, without the web framework: testable with any async HTTP client."""

    def __init__(self, config: RouterConfig, log_path: Path | None, client, registry=None):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.config = config
        self.client = client
        self.log_path = log_path
        self.seq = 0
        self._pending: set[asyncio.Task] = set()
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.m_requests = Counter(
            "router_requests",
            "Client requests by the variant that answered",
            ["variant", "code"],
            registry=r,
        )
        self.m_backend = Counter(
            "router_backend_requests",
            "Calls to each backend by role and outcome",
            ["backend", "role", "outcome"],
            registry=r,
        )
        self.m_latency = Histogram(
            "router_backend_latency_seconds", "Backend latency", ["backend"], registry=r
        )
        self.m_score = Histogram(
            "router_prediction_score",
            "Scores per backend (the candidate's include shadow answers)",
            ["backend"],
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.m_fallbacks = Counter(
            "router_fallbacks",
            "Canary requests answered by the champion because the candidate failed",
            registry=r,
        )
        self.m_percent = Gauge(
            "router_canary_percent", "Share of requests the candidate answers", registry=r
        )
        self.m_mode = Gauge("router_mode", "1 for the current mode", ["mode"], registry=r)
        self._export_config()

    def _export_config(self) -> None:
        self.m_percent.set(self.config.percent if self.config.mode == "canary" else 0.0)
        for mode in MODES:
            self.m_mode.labels(mode).set(1.0 if mode == self.config.mode else 0.0)

    def configure(self, values: dict) -> RouterConfig:
        self.config = RouterConfig.from_dict(values, self.config)
        self._export_config()
        return self.config

    async def call(
        self,
        name: str,
        backend: Backend,
        path: str,
        body: bytes,
        headers: dict,
        timeout: float,
        role: str,
    ) -> dict:
        started = time.perf_counter()
        try:
            resp = await self.client.post(
                backend.url + path, content=body, headers=headers, timeout=timeout
            )
            out = {
                "code": resp.status_code,
                "body": resp.content,
                "ctype": resp.headers.get("content-type", "application/json"),
            }
        except Exception as e:  # refused, reset, timed out: the backend failed this request
            kind = "timeout" if "Timeout" in type(e).__name__ else "error"
            out = {"code": None, "body": None, "error": f"{kind}: {type(e).__name__}"}
        out["ms"] = (time.perf_counter() - started) * 1000
        out["version"] = backend.version
        ok = out["code"] == 200
        outcome = (
            "ok"
            if ok
            else ("timeout" if str(out.get("error", "")).startswith("timeout") else "error")
        )
        self.m_backend.labels(name, role, outcome).inc()
        self.m_latency.labels(name).observe(out["ms"] / 1000)
        out["scores"] = scores_of(out["body"]) if ok else None
        for s in out["scores"] or []:
            self.m_score.labels(name).observe(s)
        return out

    def _record(
        self,
        request_id: str,
        mode: str,
        served_by: str,
        champion: dict | None,
        candidate: dict | None,
    ) -> None:
        self.seq += 1
        if self.log_path is None:
            return

        def part(r):
            if r is None:
                return None
            return {k: r.get(k) for k in ("code", "ms", "version", "scores", "error")}

        line = {
            "seq": self.seq,
            "time": time.time(),
            "request_id": request_id,
            "mode": mode,
            "served_by": served_by,
            "champion": part(champion),
            "candidate": part(candidate),
        }
        with self.log_path.open("a") as f:
            f.write(json.dumps(line) + "\n")

    async def handle(
        self, path: str, body: bytes, content_type: str, request_id: str | None
    ) -> tuple[int, bytes, str, dict]:
        cfg = self.config  # one snapshot per request: a config change never splits a request
        request_id = request_id or uuid.uuid4().hex
        headers = {"content-type": content_type, "x-request-id": request_id}
        champion_timeout = max(cfg.timeout_s * 5, 10.0)
        if cfg.mode == "canary" and cfg.candidate and goes_to_candidate(request_id, cfg.percent):
            champ, cand = await asyncio.gather(
                self.call(
                    "champion",
                    cfg.champion,
                    path,
                    body,
                    headers,
                    champion_timeout,
                    "canary-reference",
                ),
                self.call("candidate", cfg.candidate, path, body, headers, cfg.timeout_s, "canary"),
            )
            if cand["code"] is not None and cand["code"] < 500:
                served, answer = "candidate", cand  # a 4xx is the client's mistake: pass it on
            else:
                self.m_fallbacks.inc()
                served, answer = "champion", champ
            self._record(request_id, "canary", served, champ, cand)
        else:
            champ = await self.call(
                "champion", cfg.champion, path, body, headers, champion_timeout, "primary"
            )
            served, answer = "champion", champ
            mirrored = cfg.mode == "shadow" or (cfg.mode == "canary" and cfg.mirror)
            if mirrored and cfg.candidate and champ["code"] == 200:
                task = asyncio.create_task(
                    self._shadow(cfg, path, body, headers, request_id, champ)
                )
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
            else:
                self._record(request_id, cfg.mode, served, champ, None)
        if answer["code"] is None:
            code, payload, ctype = (
                503,
                json.dumps(
                    {"error": f"the champion did not answer ({answer.get('error')})"}
                ).encode(),
                "application/json",
            )
        else:
            code, payload, ctype = answer["code"], answer["body"], answer["ctype"]
        self.m_requests.labels(served, str(code)).inc()
        return (
            code,
            payload,
            ctype,
            {
                "x-served-by": served,
                "x-model-version": answer["version"],
                "x-request-id": request_id,
            },
        )

    async def _shadow(self, cfg: RouterConfig, path, body, headers, request_id, champ) -> None:
        """A copy to the candidate, after the client has its answer: a shadow request, or in a
        mirrored canary one of the champion's share (logged under the canary, served_by champion)."""
        role = "shadow" if cfg.mode == "shadow" else "canary-mirror"
        cand = await self.call("candidate", cfg.candidate, path, body, headers, cfg.timeout_s, role)
        self._record(request_id, cfg.mode, "champion", champ, cand)


def create_app(config: RouterConfig, log_path: Path | None = None):
    """The Starlette app around a Router (httpx for the backends)."""
    import httpx
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    state: dict = {}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        async with httpx.AsyncClient(limits=limits) as client:
            state["router"] = Router(config, log_path, client)
            state["client"] = client
            yield
            pending = list(state["router"]._pending)
            if pending:  # shadow calls in flight finish and are logged before the exit
                await asyncio.wait(pending, timeout=5)

    async def predict(request: Request):
        body = await request.body()
        code, payload, ctype, headers = await state["router"].handle(
            request.url.path,
            body,
            request.headers.get("content-type", "application/json"),
            request.headers.get("x-request-id"),
        )
        return Response(payload, status_code=code, media_type=ctype, headers=headers)

    async def get_config(request: Request):
        if request.method == "PUT":
            try:
                values = json.loads(await request.body() or b"{}")
                if not isinstance(values, dict):
                    raise ValueError("the config must be a JSON object")
                cfg = state["router"].configure(values)
            except ValueError as e:
                return JSONResponse({"error": str(e)}, status_code=400)
            return JSONResponse(cfg.to_dict())
        return JSONResponse(state["router"].config.to_dict())

    async def ready(request: Request):
        cfg = state["router"].config
        try:
            resp = await state["client"].get(cfg.champion.url + "/v2/health/ready", timeout=2)
            code = resp.status_code
        except Exception:
            code = 503
        return JSONResponse(
            {"ready": code == 200, "champion": cfg.champion.url},
            status_code=200 if code == 200 else 503,
        )

    async def live(request: Request):
        return JSONResponse({"live": True})

    async def metrics(request: Request):
        return Response(generate_latest(state["router"].registry), media_type=CONTENT_TYPE_LATEST)

    async def not_found(request: Request):
        return JSONResponse(
            {"error": "predict on /v1/models/<name>:predict or /v2/models/<name>/infer"},
            status_code=404,
        )

    routes = [
        Route("/router/config", get_config, methods=["GET", "PUT"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/v1/models/{model}:predict", predict, methods=["POST"]),
        Route("/v2/models/{model}/infer", predict, methods=["POST"]),
        Route("/{path:path}", not_found),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def spawn(champion_url: str, version: str, folder: Path, timeout_s: float, wait_s: float = 30.0):
    """Start the router as its own process in front of ``champion_url``, logging to ``folder``
    (router.jsonl, router.log); return (process, url) once it answers /v2/health/live."""
    import subprocess
    import sys

    from reference.serve.client import free_port, get_status

    port = free_port()
    with (folder / "router.log").open("ab") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "reference.loop.router",
                "--champion", champion_url, "--champion-version", version,
                "--port", str(port), "--log", str(folder / "router.jsonl"),
                "--timeout", str(timeout_s),
            ],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    while get_status(f"{url}/v2/health/live") != 200:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the router did not start: see {folder / 'router.log'}")
        time.sleep(0.1)
    return proc, url


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m reference.loop.router", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--champion", required=True, help="URL of the champion's model server")
    p.add_argument("--champion-version", default="unknown", help="its model version (for the log)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=int, default=8090, help="HTTP port (default: %(default)s)")
    p.add_argument("--log", type=Path, help="append one JSON line per prediction request here")
    p.add_argument("--timeout", type=float, default=2.0, help="candidate timeout in seconds")
    args = p.parse_args(argv)
    import uvicorn

    config = RouterConfig(
        Backend(args.champion.rstrip("/"), args.champion_version), timeout_s=args.timeout
    )
    if args.log:
        args.log.parent.mkdir(parents=True, exist_ok=True)
    uvicorn.run(create_app(config, args.log), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
