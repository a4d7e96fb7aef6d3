"""The worker supervision of reference.serve.workers, without starting a server: a slow first
answer is waited for, a worker that dies before it ever answered stops the server (instead of
being started again, forever), and one that dies later is replaced."""

from __future__ import annotations

import asyncio
import time

import pytest

workers = pytest.importorskip("reference.serve.workers")


def _worker(started_ago: float):
    w = workers.Worker([], target=print)  # never started: only its pipe is used
    w.started_at = time.monotonic() - started_ago
    return w


def test_a_worker_still_starting_counts_as_alive_until_its_first_answer():
    w = _worker(started_ago=workers.STARTUP_S - 1)
    assert w.ping() and w.ping()  # no answer yet, and no 5 s wait either
    assert w._child_conn.recv() == b"ping"  # one ping, sent once
    assert not w._child_conn.poll(0)
    w._child_conn.send(b"pong")
    assert w.ping() and w.up


def test_a_worker_silent_past_the_startup_limit_is_not_alive():
    assert not _worker(started_ago=workers.STARTUP_S + 1).ping()


class FakeWorker:
    def __init__(self, pid: int, up: bool, alive: bool):
        self.pid, self.up, self.alive, self.exitcode = pid, up, alive, None if alive else 1

    def is_alive(self):
        return self.alive

    def kill(self):
        self.alive = False

    async def wait_for_termination(self, grace_period=None):
        return None


def _pool(processes):
    pool = workers.WorkerPool.__new__(workers.WorkerPool)  # no REST server: supervision only
    pool._processes, pool.should_exit, pool.failed = processes, asyncio.Event(), None
    started = []
    pool._new_worker = lambda sockets, index=0: (
        started.append(FakeWorker(99, up=False, alive=True)) or (started[-1])
    )
    return pool, started


def test_a_worker_that_dies_before_it_is_ready_stops_the_server():
    pool, started = _pool(
        [FakeWorker(1, up=True, alive=True), FakeWorker(2, up=False, alive=False)]
    )
    asyncio.run(pool.keep_subprocess_alive([]))
    assert started == [] and pool.should_exit.is_set()
    assert "pid 2" in pool.failed and "before it was ready" in pool.failed


def test_a_worker_that_dies_after_it_was_ready_is_replaced(capsys):
    pool, started = _pool([FakeWorker(1, up=True, alive=False), FakeWorker(2, up=True, alive=True)])
    asyncio.run(pool.keep_subprocess_alive([]))
    assert pool.failed is None and not pool.should_exit.is_set()
    assert [w.pid for w in pool._processes] == [99, 2]
    assert "worker process 1 stopped (exit code 1): starting another" in capsys.readouterr().out


def test_mlops_lab_serve_and_the_server_module_default_to_the_same_worker_count():
    from reference.cli import SERVE_WORKERS
    from reference.serve.server import DEFAULT_WORKERS, _parser

    assert SERVE_WORKERS == DEFAULT_WORKERS == _parser().parse_args([]).workers
    assert "measured best" in _parser().format_help()
    with pytest.raises(SystemExit):
        _parser().parse_args(["--workers", "0"])


@pytest.mark.parametrize("log_requests", [False, True])
def test_an_invalid_input_is_a_400_and_at_most_one_log_line_never_a_traceback(log_requests, caplog):
    """KServe's own handler logs every InvalidInput with its traceback. The server answers the
    same 400, silently, or with one line of its message under --log-requests."""
    import json
    import logging

    from fastapi import FastAPI
    from kserve.errors import InvalidInput

    app = FastAPI()

    @app.post("/v1/models/m:predict")
    async def predict():
        raise InvalidInput("[400] instances[0]: missing field(s) ['temp']")

    server = workers.GuardedRESTServer.__new__(workers.GuardedRESTServer)  # its handlers only
    server.log_requests = log_requests
    server._add_exception_handlers(app)
    with caplog.at_level(logging.INFO):
        sent = asyncio.run(_post(app, "/v1/models/m:predict"))
    assert sent[0]["status"] == 400
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert body == {"error": "[400] instances[0]: missing field(s) ['temp']"}
    assert not any(r.exc_info for r in caplog.records)
    lines = [r.getMessage() for r in caplog.records if "missing field" in r.getMessage()]
    assert lines == (
        ["invalid input, POST /v1/models/m:predict: [400] instances[0]: missing field(s) ['temp']"]
        if log_requests
        else []
    )


async def _post(app, path: str) -> list[dict]:
    """One POST with an empty body straight into an ASGI app; the messages it sent back."""
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    await app(scope, receive, send)
    return sent
