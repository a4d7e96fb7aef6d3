"""One model server, one or several worker processes: KServe's REST server, made safe to fork out.

::

    python -m reference.serve --workers 2        # two processes answer on one port
    mlops-lab serve --workers 2

One Python process answers on one core; ``--workers N`` starts N. KServe does this with
``ModelServer(workers=N)``: ``load()`` runs once in the parent, which binds the socket and
starts N *spawned* processes that each receive the REST server, the model included, pickled. Out
of the box that goes wrong in five ways, each handled here:

- middleware added to KServe's app in the parent is missing in the workers (each imports its own
  app): ``GuardedRESTServer``, a module-level subclass, adds the guard in every worker, binds the
  host it was given (the parent binds the socket from its config) and drops KServe's
  per-request timing middleware and log lines (``log_requests`` brings the log lines back);
- the parent pings each worker with a 5 s timeout, and a worker that takes longer to import
  torch and KServe is killed and started again, forever: ``Worker`` gives a new process
  ``STARTUP_S`` to answer its first ping, and ``WorkerPool`` stops the server, with a message,
  when a worker dies before it ever answered (the next one would die the same way);
- each worker has its own metrics, so ``/metrics`` showed whichever worker answered: the workers
  write prometheus_client's multiprocess files to one folder per server, emptied at start
  (``metrics_dir``), and ``/metrics`` adds them up;
- prometheus metrics and open files cannot be pickled: the telemetry and the payload log rebuild
  their handles in the worker (see their modules);
- the workers share one listening socket, and the worker that wakes first takes every
  connection waiting, so a client's pool of keep-alive connections lands on one worker: on
  Linux each worker accepts on its own socket on the port (``listening_sockets``), and a worker
  that holds more connections than another hands a new one over (``reference.serve.balance``:
  the kernel's hash alone lands 8 connections 6/2 or worse about a quarter of the time).

A worker killed from outside (SIGKILL, the OOM killer) is replaced; SIGTERM drains every worker.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import socket
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.errors import InvalidInput
from kserve.logging import logger as kserve_log
from kserve.protocol.rest.multiprocess.server import RESTServerMultiProcess, RESTServerProcess
from kserve.protocol.rest.server import RESTServer
from prometheus_client import CollectorRegistry, exposition

from reference.serve import balance
from reference.serve.balance import Balance
from reference.serve.guard import Guard

# How long a new worker may take to answer its first ping: it imports torch and KServe and
# reads the bundle first (about 5 s of CPU each here, more when N of them start on fewer cores).
# A worker that has not answered by then is stuck, and the server stops rather than loop.
STARTUP_S = 120.0
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
log = logging.getLogger("reference.serve")


def metrics_dir(folder: Path) -> Path:
    """Empty ``folder`` and name it as the multiprocess metrics folder of this server's workers.

    Emptied at start: files left by an earlier server (or a worker killed long ago) would add
    their counts to this one's. Call it before the workers start (they read the variable when
    they import prometheus_client)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


class GuardedRESTServer(RESTServer):
    """KServe's REST server with the guard in front, on ``host``, without per-request timing.

    Module-level so that it pickles: each worker runs its own ``create_application``, and so its
    own ``_add_middlewares``. ``multiprocess``: serve ``/metrics`` from the workers' files."""

    def __init__(
        self,
        model,
        host: str,
        *args,
        log_requests: bool = False,
        multiprocess: bool = False,
        **kwargs,
    ):
        super().__init__(FASTAPI_APP_IMPORT_STRING, *args, **kwargs)
        self.model, self.multiprocess, self.log_requests = model, multiprocess, log_requests
        self.config.host = host  # KServe hard-codes 0.0.0.0; the parent binds from this config

    def create_application(self) -> None:
        if not self.log_requests:
            # uvicorn writes its access line when the logger has a handler, and KServe's logging
            # setup (in every worker) gives it one: take it away, in the process that serves
            access = logging.getLogger("uvicorn.access")
            access.handlers, access.propagate = [], False
        # KServe answers V1 with FastAPI's ORJSONResponse, which FastAPI now calls deprecated:
        # a ten-line notice in the server's log at the first requests, about code not ours
        warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
        super().create_application()
        # torch, KServe and FastAPI leave about 400,000 objects that live as long as the
        # process; a full collection walks them all (about 0.2 s here), and lands on whichever
        # request allocated last: the p99. Frozen, the collector skips them.
        gc.collect()
        gc.freeze()

    def _add_middlewares(self, app) -> None:
        # not KServe's: its TimingMiddleware logs two trace lines a request (about 0.1 ms);
        # the guard's latency histogram already times every prediction request
        model = self.model
        app.add_middleware(
            Guard,
            limits=model.options.limits,
            telemetry=model.telemetry,
            version=lambda: model.version,
        )

    def _add_exception_handlers(self, app) -> None:
        super()._add_exception_handlers(app)
        log_requests = self.log_requests

        async def invalid_input(request: Request, exc: InvalidInput) -> JSONResponse:
            # KServe's own answer, without its traceback in the log: a client's mistake is its
            # 4xx that says what is wrong and a count in the metrics, not forty lines of the
            # server's log a request (nor their CPU, under a flood of bad requests)
            if log_requests:  # KServe's logger: the one its worker processes set up
                kserve_log.info("invalid input, %s %s: %s", request.method, request.url.path, exc)
            return JSONResponse(status_code=400, content={"error": str(exc)})

        app.add_exception_handler(InvalidInput, invalid_input)

    def run(self, sockets=None, balance=None) -> None:
        """KServe's ``run`` (in a worker), with this worker's place in the balance of
        connections over the workers (see ``reference.serve.balance``) where there is one."""
        self.create_application()
        if balance is not None:
            from reference.serve.balance import Balancer

            Balancer(balance).install(self._server)
        self._server.run(sockets=sockets)

    def _register_endpoints(self, app) -> None:
        if self.multiprocess:  # first, so that it answers /metrics instead of KServe's route
            app.add_api_route("/metrics", _all_workers_metrics, methods=["GET"])
        super()._register_endpoints(app)


async def _all_workers_metrics(request: Request) -> Response:
    """Every worker's metrics added up (counters and histograms summed over the folder's files)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    encoder, content_type = exposition.choose_encoder(request.headers.get("accept"))
    return Response(content=encoder(registry), headers={"content-type": content_type})


def listening_sockets(config) -> list[socket.socket]:
    """The sockets the workers accept on: on Linux one per worker, all on the same port with
    SO_REUSEPORT, so that the kernel spreads new connections over the workers by a hash of their
    addresses (even on average; 8 connections on 2 workers split 4/4 about a quarter of the time
    and 6/2 or worse about as often: bench/serving_tail.py, which is why the workers then
    balance them, see ``reference.serve.balance``); elsewhere one, shared (macOS's SO_REUSEPORT
    does not spread).

    Why not KServe's one shared socket: a worker woken by a new connection accepts every
    connection waiting, so a burst of keep-alive connections (a client's pool, a proxy's) all
    land on one worker and stay there while the others idle (measured here: 8 connections, two
    workers, one core busy). With a socket per worker, a connection waits for its own worker: a
    killed worker's connections wait for its replacement (a few seconds) instead of being
    refused."""
    if sys.platform != "linux" or config.workers < 2:
        return [config.bind_socket()]
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    with socket.socket(family) as probe:  # a port taken by anyone fails here, as it would alone
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((config.host, config.port))
        except OSError as e:
            raise SystemExit(f"cannot listen on {config.host}:{config.port}: {e.strerror}") from e
    sockets = []
    for _ in range(config.workers):
        sock = socket.socket(family)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((config.host, config.port))
        sock.listen(config.backlog)
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


@dataclass(frozen=True)
class _WorkerMain:
    """What a worker process runs: the REST server, with its place in the balance (it travels
    to the spawned process pickled, as KServe's bound method did)."""

    rest: GuardedRESTServer
    balance: Balance | None

    def __call__(self, sockets) -> None:
        self.rest.run(sockets=sockets, balance=self.balance)


class Worker(RESTServerProcess):
    """A worker process that may take ``STARTUP_S`` to answer its first ping (KServe: 5 s).

    The ping is sent once; until its answer arrives the worker counts as alive, without waiting.
    After that, KServe's own ping (5 s) decides whether it hangs."""

    def __init__(self, sockets, target, log_config_file=None):
        super().__init__(sockets, target, log_config_file)
        self.started_at, self.pinged, self.up = 0.0, False, False

    def start(self) -> None:
        self.started_at = time.monotonic()
        super().start()

    def ping(self, timeout: float = 5) -> bool:
        if self.up:
            return super().ping(timeout)
        if not self.pinged:
            self._parent_conn.send(b"ping")
            self.pinged = True
        if self._parent_conn.poll(0):
            self._parent_conn.recv()
            self.up = True
            return True
        return time.monotonic() - self.started_at < STARTUP_S

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode


class WorkerPool(RESTServerMultiProcess):
    """KServe's multi-process server with ``Worker`` processes running ``rest``; ``failed`` says
    why it stopped on its own (a worker that died before it was ready), or is None."""

    def __init__(self, rest: GuardedRESTServer):
        config = rest.config
        super().__init__(
            config.app,
            rest.dataplane,
            rest.model_repository_extension,
            config.port,
            workers=config.workers,
            grace_period=config.timeout_graceful_shutdown,
            timeout_keep_alive=config.timeout_keep_alive,
        )
        self._rest_server = rest  # KServe's constructor built a plain RESTServer: ours instead
        self.failed: str | None = None
        self.balance: Path | None = None  # the workers' shared folder, with a socket each

    def _new_worker(self, sockets, index: int = 0) -> Worker:
        place = None
        if self.balance is not None:
            place = Balance(self.balance, self._rest_server.config.workers, index)
        target = _WorkerMain(self._rest_server, place)
        worker = Worker(sockets, target, log_config_file=self.log_config_file)
        worker.start()
        return worker

    async def start(self) -> None:
        """KServe's loop (bind, start the workers, check on them every half second, stop them),
        with a listening socket of its own per worker on Linux (see ``listening_sockets``), and
        new connections balanced over the workers (see ``reference.serve.balance``)."""
        self.sockets = listening_sockets(self._rest_server.config)
        if len(self.sockets) > 1:
            self.balance = balance.prepare(len(self.sockets))
        try:
            self.init_processes(self.sockets)
            while not self.should_exit.is_set():
                await asyncio.sleep(0.5)
                await self.keep_subprocess_alive(self.sockets)
            await self.terminate_all()
        finally:
            if self.balance is not None:
                balance.remove(self.balance)

    def _slot(self, sockets, i: int) -> list:
        return [sockets[i]] if len(sockets) > 1 else sockets  # one each, or one for all

    def init_processes(self, sockets) -> None:
        for i in range(self._rest_server.config.workers):
            self._processes.append(self._new_worker(self._slot(sockets, i), i))
            log.info("started worker process [%s]", self._processes[-1].pid)

    async def keep_subprocess_alive(self, sockets) -> None:
        if self.should_exit.is_set():
            return
        for i, worker in enumerate(self._processes):
            if worker.is_alive():
                continue
            worker.kill()  # gone, or hung: make sure
            await worker.wait_for_termination()
            if self.should_exit.is_set():
                return
            if not worker.up:
                # it died (or hung) before it could serve: another would do the same, forever
                self.failed = (
                    f"a server worker (pid {worker.pid}) stopped before it was ready "
                    f"(exit code {worker.exitcode}): see the lines above; "
                    "try --workers 1 to see the error in one process"
                )
                self.should_exit.set()
                return
            print(
                f"worker process {worker.pid} stopped (exit code {worker.exitcode}): "
                "starting another",
                flush=True,
            )
            # the same socket: what reached it meanwhile waits for the new worker, unrefused
            self._processes[i] = self._new_worker(self._slot(sockets, i), i)


class LoopbackModelServer(ModelServer):
    """ModelServer.start with the guarded REST server, on ``host``, in one or ``workers``
    processes. ``start`` returns a message when the server stopped because it could not run."""

    def __init__(self, host: str, log_requests: bool = False, **kwargs):
        super().__init__(enable_latency_logging=log_requests, **kwargs)
        self.host, self.log_requests = host, log_requests

    def start(self, models) -> str | None:
        self._register_and_check_atleast_one_model_is_ready(models)
        rest = GuardedRESTServer(
            models[0],
            self.host,
            self.dataplane,
            self.model_repository_extension,
            self.http_port,
            workers=self.workers,
            grace_period=self.grace_period,
            event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
            log_requests=self.log_requests,
            multiprocess=self.workers > 1,
        )
        if self.workers > 1:
            pool = self._rest_multiprocess_server = WorkerPool(rest)  # ModelServer.stop stops it
            self.servers.append(pool.start())
        else:
            pool, self._rest_server = None, rest
            self.servers.append(rest.start())
        self.setup_event_loop()
        self.register_signal_handler()
        asyncio.run(self._serve())
        return pool.failed if pool is not None else None
