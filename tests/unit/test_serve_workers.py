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
