"""The model server process: KServe's ModelServer on loopback, behind a guard for bad requests.

::

    python -m reference.serve --port 8080                        # the champion from the registry
    python -m reference.serve --bundle models/candidate --port 0  # a local bundle (0: pick a port)
    python -m reference.serve --workers 2 --port 8080             # two processes, one port
    python -m reference.serve --help

Two things KServe does on its own that a lab must not: it binds 0.0.0.0 (every interface), and it
parses ``sys.argv`` when ``kserve`` is imported. This module parses its own arguments first, hides
them from KServe, and binds the host it was given (127.0.0.1 by default). Every worker answers
behind the guard middleware (``reference.serve.guard``: a 4xx that says what is wrong where
KServe would answer badly); ``reference.serve.workers`` runs one process or several.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from reference.serve.schema import Limits

# Worker processes: bench/serving.py on a 2-core machine, concurrency 8 (docs/benchmarks.md):
# two workers answered 1.8x the requests of one, single rows and batches of 64 alike
DEFAULT_WORKERS = 2
WORKERS_HELP = (
    "processes that answer requests, each on its own core (default: %(default)s, what "
    "measured best on a 2-core machine: 1.8x the requests of one worker at concurrency 8; "
    "see docs/benchmarks.md)"
)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number of workers")
    return number


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
        "--workers",
        type=_positive,
        default=DEFAULT_WORKERS,
        help=WORKERS_HELP,
    )
    p.add_argument(
        "--log-requests",
        action="store_true",
        help="log a line per request (uvicorn's access line, KServe's latency) and one per "
        "invalid input (its message); off: they cost CPU on every request, and the metrics "
        "count every request by status",
    )
    p.add_argument(
        "--fault",
        default="none",
        choices=["none", "constant", "shuffled-vocab", "wrong-timezone"],
        help="drill: serve a silently broken model (answers 200 with garbage)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sys.argv = sys.argv[:1]  # kserve parses sys.argv on import: it must not see ours
    from reference.config import get_settings

    settings = get_settings()
    port = args.port or _free_port(args.host)
    if args.workers > 1:
        from reference.serve.workers import metrics_dir

        # before any worker starts: they inherit the environment when they are spawned
        metrics_dir(settings.workspace / "serving" / "metrics" / str(port))
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per worker, as many as cores
    from reference.serve.predictor import FlightDelayPredictor, ServeOptions
    from reference.serve.telemetry import Telemetry
    from reference.serve.workers import LoopbackModelServer

    limits = Limits(max_batch=args.max_batch, max_body_bytes=args.max_body_bytes)
    options = ServeOptions(
        model_uri=args.model_uri,
        bundle_dir=args.bundle,
        threshold=args.threshold,
        limits=limits,
        monitoring=not args.no_monitoring,
        payload_dir=args.payload_dir,
        fault=args.fault,
    )
    telemetry = None if args.no_monitoring else Telemetry.create()
    model = FlightDelayPredictor(args.name, options, settings=settings, telemetry=telemetry)
    model.load()
    workers = f" with {args.workers} workers" if args.workers > 1 else ""
    logging.getLogger("reference").info(
        "serving %s version %s on http://%s:%d%s",
        args.name,
        model.version,
        args.host,
        port,
        workers,
    )
    print(
        f"serving {args.name} version {model.version} on http://{args.host}:{port}{workers}",
        flush=True,
    )
    if model.payload_log is not None:
        print(f"payload log: appending every prediction to {model.payload_log.path}", flush=True)
    server = LoopbackModelServer(
        args.host,
        log_requests=args.log_requests,
        http_port=port,
        enable_grpc=False,
        workers=args.workers,
    )
    failed = server.start([model])
    if failed:
        print(f"error: {failed}", file=sys.stderr, flush=True)
        return 1
    return 0


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    raise SystemExit(main())
