"""The workers' balance of connections, without a server: real shared counts, real Unix
sockets, a real TCP connection handed from one "worker" to another in this process."""

from __future__ import annotations

import asyncio
import socket
import sys

import pytest

from reference.serve import balance
from reference.serve.balance import Balance, Balancer

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the balance is Linux's")


@pytest.fixture
def folder():
    path = balance.prepare(2)
    yield path
    balance.remove(path)


def test_a_worker_with_more_connections_hands_a_new_one_to_the_other(folder):
    async def main():
        loop = asyncio.get_running_loop()
        first, second = Balancer(Balance(folder, 2, 0)), Balancer(Balance(folder, 2, 1))
        received = loop.create_future()

        class Served(asyncio.Protocol):  # what the second worker serves the connection with
            def __init__(self, early: bytes):
                self.early = early  # read by the first before it let go: none here

            def data_received(self, data):
                received.set_result(self.early + data)

        second.open_inbox(loop, Served)
        assert first.place() is None  # none each: kept, and counted (1 against 0)
        assert first.held == 1
        assert first.place() == 1  # a new one here would make 2 against 0
        client, landed = socket.socketpair()
        with client:
            assert await first.hand_over(landed, 1)  # taken: the first may close its copy
            landed.close()
            client.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert (await asyncio.wait_for(received, 10)).startswith(b"GET /")
        assert second.held == 1  # counted by the worker that took it, as it took it
        assert first.place() is None  # 1 against 1: kept (2 against 1 is as even as it gets)
        assert first.place() == 1  # 2 against 1

    asyncio.run(main())


def test_a_burst_of_connections_accepted_at_once_is_split_evenly(folder):
    """A client that opens its pool in one go, and both workers accept in turn before any
    handover is answered. Each placement counts at once, a handover against the worker it goes
    to: every connection goes to a worker holding fewest, so the eight split 4/4."""
    first, second = Balancer(Balance(folder, 2, 0)), Balancer(Balance(folder, 2, 1))
    landed = [first] * 5 + [second, first, second]  # where the kernel put each one
    kept = {0: 0, 1: 0}
    for worker in landed:
        goes = worker.place()
        kept[worker.balance.index if goes is None else goes] += 1
    assert kept == {0: 4, 1: 4}
    assert (first.held, second.held) == (4, 2)  # the other two: handovers to the second


def test_what_was_read_before_the_pause_travels_with_the_connection(folder):
    async def main():
        loop = asyncio.get_running_loop()
        first, second = Balancer(Balance(folder, 2, 0)), Balancer(Balance(folder, 2, 1))
        received = loop.create_future()

        class Served(asyncio.Protocol):
            def __init__(self, early: bytes):
                self.early = early

            def data_received(self, data):
                received.set_result(self.early + data)

        second.open_inbox(loop, Served)
        client, landed = socket.socketpair()
        with client:
            # the first worker read the request line before its pause took hold
            assert await first.hand_over(landed, 1, early=b"GET / HTTP/1.1\r\n")
            landed.close()
            client.sendall(b"Host: x\r\n\r\n")
            assert await asyncio.wait_for(received, 10) == b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"

    asyncio.run(main())


def test_a_connection_stays_where_it_landed_when_the_other_worker_is_gone(folder):
    async def main():
        first = Balancer(Balance(folder, 2, 0))  # worker 1 is not serving: no inbox
        first.opened()
        assert first.place() == 1
        client, landed = socket.socketpair()
        with client, landed:
            assert not await first.hand_over(landed, 1)
        first.opened()  # served here after all
        assert first.place() == 1  # 2 against 0: the failed handover no longer counts there

    asyncio.run(main())


def test_a_worker_started_in_place_of_a_dead_one_begins_with_none(folder):
    dead = Balancer(Balance(folder, 2, 1))
    for _ in range(3):
        dead.opened()
    first = Balancer(Balance(folder, 2, 0))
    assert first.place() is None  # against the dead worker's last count, 3: kept here
    replacement = Balancer(Balance(folder, 2, 1))  # in the same place
    assert replacement.held == 0
    assert first.place() == 1  # its connections died with it: the new one holds none


def test_folders_of_servers_that_are_gone_are_swept_and_the_rest_kept(tmp_path):
    """A server killed outright (SIGKILL) leaves its folder behind; the next one to start
    removes it. A live server's folder stays, and so does one being made (no owner yet)."""
    import os
    import subprocess
    import time

    from reference.runlock import owner_token

    gone = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    token = owner_token(gone.pid)
    gone.kill()
    gone.wait()

    def folder(name: str, owner: str | None, age: float = 0.0):
        path = tmp_path / (balance.PREFIX + name)
        path.mkdir()
        if owner is not None:
            (path / balance.OWNER).write_text(owner)
        when = time.time() - age
        os.utime(path, (when, when))
        return path

    killed = folder("killed", token)
    live = folder("live", owner_token())
    being_made = folder("being-made", None)
    abandoned = folder("abandoned", None, age=2 * balance.YOUNG_S)
    other = tmp_path / "not-ours"
    other.mkdir()
    assert sorted(balance.sweep(tmp_path)) == sorted([killed, abandoned])
    assert not killed.exists() and not abandoned.exists()
    assert live.exists() and being_made.exists() and other.exists()


def test_a_new_server_s_folder_names_its_owner(folder):
    from reference.runlock import owner_alive

    assert owner_alive((folder / balance.OWNER).read_text())
