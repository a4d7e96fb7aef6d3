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
        assert first.target() is None  # none each: a new one makes 1 against 0, kept
        first.opened()
        assert first.target() == 1  # 1 against 0: a new one here would make 2 against 0
        second.opened()
        assert first.target() is None  # 1 against 1: kept (2 against 1 is as even as it gets)
        first.opened()
        assert first.target() == 1  # 2 against 1
        client, landed = socket.socketpair()
        with client:
            assert await first.hand_over(landed, 1)  # taken: the first may close its copy
            landed.close()
            client.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert (await asyncio.wait_for(received, 10)).startswith(b"GET /")
        # what it sent counts against the other worker until that one's own count moves
        assert first.target() is None

    asyncio.run(main())


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
        first.opened()
        assert first.target() == 1
        client, landed = socket.socketpair()
        with client, landed:
            assert not await first.hand_over(landed, 1)

    asyncio.run(main())


def test_a_worker_started_in_place_of_a_dead_one_begins_with_none(folder):
    dead = Balancer(Balance(folder, 2, 1))
    for _ in range(3):
        dead.opened()
    first = Balancer(Balance(folder, 2, 0))
    first.opened()
    assert first.target() is None  # against the dead worker's last count, 3: kept here
    replacement = Balancer(Balance(folder, 2, 1))  # in the same place
    assert replacement.held == 0
    assert first.target() == 1  # its connections died with it: the new one holds none
