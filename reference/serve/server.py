"""The model server process: KServe's ModelServer on loopback, behind a guard for bad requests.

    python -m reference.serve --port 8080                        # the champion from the registry
    python -m reference.serve --bundle models/candidate --port 0  # a local bundle (0: pick a port)
    python -m reference.serve --help

Two things KServe does on its own that a lab must not: it binds 0.0.0.0 (every interface), and it
parses ``sys.argv`` when ``kserve`` is imported. This module parses its own arguments first, hides
them from KServe, and binds the host it was given (127.0.0.1 by default). The guard middleware
answers what KServe would answer badly (a 500 for a V2 shape that doesn't match its data, a
415-worthy content type read as bytes, an unbounded body) with a 4xx that says what is wrong,
and counts every request by status for the monitoring.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time

from reference.serve.schema import BadRequest, Limits, check_v2_structure

PREDICT_SUFFIXES = (":predict", "/infer")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m reference.serve", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--name", default="flight-delay", help="model name in the URL paths (default: %(default)s)"
    )
    p.add_argument(
        "--model-uri",
        help="models:/<name>@<alias> or models:/<name>/<version> (default: the champion)",
    )
    p.add_argument("--bundle", help="serve a local bundle folder instead of the registry")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: %(default)s; 0.0.0.0 only on purpose)",
    )
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default: %(default)s)")
    p.add_argument("--threshold", type=float, default=0.5, help="operating threshold for the label")
    p.add_argument(
        "--max-batch",
        type=int,
        default=Limits.max_batch,
        help="rows per request (default: %(default)s)",
    )
    p.add_argument(
        "--max-body-bytes", type=int, default=Limits.max_body_bytes, help="request body limit"
    )
    p.add_argument(
        "--no-monitoring",
        action="store_true",
        help="turn the prediction metrics off (for benchmarks)",
    )
    p.add_argument("--payload-dir", help="append every prediction to JSONL files here")
    p.add_argument(
        "--fault",
        default="none",
        choices=["none", "constant", "shuffled-vocab", "wrong-timezone"],
        help="drill: serve a silently broken model (answers 200 with garbage)",
    )
    return p


class Guard:
    """ASGI middleware in front of the prediction routes: content type, size, JSON, V2 shapes."""

    def __init__(self, app, limits: Limits, telemetry=None, version=lambda: "unknown"):
        self.app, self.limits, self.telemetry, self.version = app, limits, telemetry, version

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not path.endswith(PREDICT_SUFFIXES)
        ):
            return await self.app(scope, receive, send)
        protocol = "v2" if path.startswith("/v2/") else "v1"
        started = time.perf_counter()
        status = {"code": 500}

        async def reply(code: int, message: str):
            status["code"] = code
            body = json.dumps({"error": message}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": code,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        try:
            headers = dict(scope.get("headers") or [])
            ctype = headers.get(b"content-type", b"application/json").split(b";")[0].strip().lower()
            if ctype not in (b"application/json", b""):
                return await reply(
                    415, f"content type {ctype.decode()!r} is not supported: send application/json"
                )
            declared = headers.get(b"content-length")
            if declared and declared.isdigit() and int(declared) > self.limits.max_body_bytes:
                return await reply(
                    413,
                    f"the body is {int(declared):,} bytes; the limit is {self.limits.max_body_bytes:,}",
                )
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if len(body) > self.limits.max_body_bytes:
                    return await reply(
                        413, f"the body is over the limit of {self.limits.max_body_bytes:,} bytes"
                    )
                if not message.get("more_body"):
                    break
            try:
                import orjson  # KServe's own parser: it rejects NaN and Infinity, as JSON does

                parsed = orjson.loads(body)
            except orjson.JSONDecodeError as e:
                return await reply(400, f"the body is not valid JSON: {e}")
            if protocol == "v2":
                check_v2_structure(parsed)
        except BadRequest as e:
            return await reply(e.status, e.message)

        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        held: dict = {}

        async def send_rewriting(message):
            # KServe answers InvalidInput with 400 {"error": "[413] ..."}: restore the status
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                if message["status"] == 400:
                    held["start"] = message
                    return
                return await send(message)
            if "start" in held:
                held.setdefault("body", b"")
                held["body"] += message.get("body", b"")
                if message.get("more_body"):
                    return
                code, payload = _rewrite(held["body"])
                status["code"] = code
                await send(
                    {
                        **held["start"],
                        "status": code,
                        "headers": [
                            (k, v) for k, v in held["start"]["headers"] if k != b"content-length"
                        ]
                        + [(b"content-length", str(len(payload)).encode())],
                    }
                )
                return await send({"type": "http.response.body", "body": payload})
            return await send(message)

        try:
            await self.app(scope, replay, send_rewriting)
        finally:
            if self.telemetry is not None:
                version = self.version()
                self.telemetry.requests.labels(version, protocol, str(status["code"])).inc()
                self.telemetry.latency.labels(version, protocol).observe(
                    time.perf_counter() - started
                )


def _rewrite(body: bytes) -> tuple[int, bytes]:
    try:
        error = json.loads(body).get("error", "")
    except (ValueError, AttributeError):
        return 400, body
    if (
        isinstance(error, str)
        and error.startswith("[")
        and error[1:4].isdigit()
        and error[4:6] == "] "
    ):
        return int(error[1:4]), json.dumps({"error": error[6:]}).encode()
    return 400, body


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sys.argv = sys.argv[:1]  # kserve parses sys.argv on import: it must not see ours
    from kserve import ModelServer
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.model_server import app as kserve_app
    from kserve.protocol.rest.server import RESTServer

    from reference.config import get_settings
    from reference.serve.predictor import FlightDelayPredictor, ServeOptions
    from reference.serve.telemetry import Telemetry

    class LoopbackModelServer(ModelServer):
        """ModelServer.start with one change: uvicorn binds the host we were given."""

        def __init__(self, host: str, **kwargs):
            super().__init__(**kwargs)
            self.host = host

        def start(self, models) -> None:
            self._register_and_check_atleast_one_model_is_ready(models)
            self._rest_server = RESTServer(
                FASTAPI_APP_IMPORT_STRING,
                self.dataplane,
                self.model_repository_extension,
                self.http_port,
                workers=1,
                grace_period=self.grace_period,
                event_loop=self.event_loop,
                timeout_keep_alive=self.timeout_keep_alive,
            )
            self._rest_server.config.host = self.host  # KServe hard-codes 0.0.0.0 here
            self.servers.append(self._rest_server.start())
            self.setup_event_loop()
            self.register_signal_handler()
            asyncio.run(self._serve())

    limits = Limits(max_batch=args.max_batch, max_body_bytes=args.max_body_bytes)
    telemetry = None if args.no_monitoring else Telemetry.create()
    options = ServeOptions(
        model_uri=args.model_uri,
        bundle_dir=args.bundle,
        threshold=args.threshold,
        limits=limits,
        monitoring=not args.no_monitoring,
        payload_dir=args.payload_dir,
        fault=args.fault,
    )
    model = FlightDelayPredictor(args.name, options, settings=get_settings(), telemetry=telemetry)
    model.load()
    port = args.port or _free_port(args.host)
    kserve_app.add_middleware(
        Guard, limits=limits, telemetry=telemetry, version=lambda: model.version
    )
    logging.getLogger("reference").info(
        "serving %s version %s on http://%s:%d", args.name, model.version, args.host, port
    )
    print(f"serving {args.name} version {model.version} on http://{args.host}:{port}", flush=True)
    LoopbackModelServer(args.host, http_port=port, enable_grpc=False, workers=1).start([model])
    return 0


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    raise SystemExit(main())
