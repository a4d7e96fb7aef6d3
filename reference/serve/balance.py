"""Keep-alive connections spread evenly over a server's workers: a new one goes to the least busy.

With a listening socket per worker (``reference.serve.workers.listening_sockets``) the kernel
picks a worker for each new connection by a hash of its addresses: even on average, uneven for
the handful of keep-alive connections a client pool or a proxy holds. 8 connections on 2
workers land 6/2 or worse about a quarter of the time, and 2 connections share one worker half
the time, with the other core idle.

So the workers count their connections in a small shared file, and a worker that receives a
connection while another holds fewer hands it over: the connection's file descriptor goes to
that worker over a Unix socket (SCM_RIGHTS), with the first bytes if some were read before
reading paused, and that worker answers it as if it had accepted it. Each placement is decided
under a lock on the file and counted there at once, a handover against the worker it goes to
while it is under way: a pool that connects all at once, accepted in a burst by both workers
before any handover is answered, still splits evenly. A handover holds only once the other
worker says it has the connection: one that is gone, restarting or slow (``HANDOVER_S``) never
had it, and the connection is served where it landed. A connection moves at most once.

Linux only, as the socket per worker is. The folder is made by the server's parent process
(``prepare``), mode 0700: only this user's processes can hand a connection to a worker. It is
removed when the server stops; one left by a server killed outright (SIGKILL) is removed by the
next server that starts, once its owner is gone.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import mmap
import os
import shutil
import socket
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# in the shared file, for each worker: the connections it holds, then the handovers to it under
# way (each sender adds its own and takes it back when the handover ends)
COUNT = struct.Struct("i")
PREFIX = "mlops-lab-serve-"  # the folders, in the temporary folder
OWNER = "owner"  # in each: the server process that made it (``runlock.owner_token``)
YOUNG_S = 60.0  # a folder without an owner yet may be one being made right now
HANDOVER_S = 1.0  # the longest a new connection waits for another worker to take it
MESSAGE = 1 << 20  # a handover: its fd, and what was read of it (more: it is served where it is)


@dataclass(frozen=True)
class Balance:
    """One worker's place: the server's folder, how many workers, which one this is."""

    folder: Path
    workers: int
    index: int

    @property
    def counts(self) -> Path:
        return self.folder / "connections"

    def inbox(self, worker: int) -> Path:
        return self.folder / f"worker-{worker}.sock"


def prepare(workers: int) -> Path:
    """The folder for one server's workers (in the temporary folder: a socket's path must stay
    under about 100 characters), with every count at zero, owned by this process. Folders left
    by servers that were killed go first."""
    from reference.runlock import owner_token

    sweep()
    folder = Path(tempfile.mkdtemp(prefix=PREFIX))  # mode 0700
    (folder / "connections").write_bytes(bytes(2 * COUNT.size * workers))
    (folder / OWNER).write_text(owner_token())
    return folder


def sweep(where: Path | None = None) -> list[Path]:
    """Remove the folders of servers that are gone (killed before they could remove their
    own); returns them. Another user's folders and live servers' are left alone."""
    from reference.runlock import owner_alive

    removed = []
    for folder in Path(where or tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            if folder.stat().st_uid != os.getuid():
                continue
            owner = (folder / OWNER).read_text()
        except FileNotFoundError:  # no owner: a folder being made, unless it is old
            with contextlib.suppress(OSError):
                if time.time() - folder.stat().st_mtime > YOUNG_S:
                    remove(folder)
                    removed.append(folder)
            continue
        except OSError:
            continue
        if not owner_alive(owner):
            remove(folder)
            removed.append(folder)
    return removed


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


class Balancer:
    """In one worker: its own count, the others', and its inbox for connections handed over."""

    def __init__(self, balance: Balance):
        self.balance = balance
        self._fd = os.open(balance.counts, os.O_RDWR)  # kept open: the lock is taken on it
        self.counts = mmap.mmap(self._fd, 2 * COUNT.size * balance.workers)
        self.held = 0
        self._write()  # a worker started in place of a dead one begins with none
        self.inbox: socket.socket | None = None

    def _offset(self, worker: int, incoming: bool = False) -> int:
        return COUNT.size * (worker + incoming * self.balance.workers)

    def _read(self, worker: int, incoming: bool = False) -> int:
        return COUNT.unpack_from(self.counts, self._offset(worker, incoming))[0]

    def _write(self) -> None:  # only this worker writes its own count
        COUNT.pack_into(self.counts, self._offset(self.balance.index), self.held)

    @contextlib.contextmanager
    def _locked(self):
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _incoming(self, worker: int, change: int) -> None:
        offset = self._offset(worker, incoming=True)
        COUNT.pack_into(self.counts, offset, COUNT.unpack_from(self.counts, offset)[0] + change)

    def _hold(self, change: int, arrived: bool = False) -> None:
        """This worker holds ``change`` more connections; ``arrived``: handed over from another
        worker, so no longer on its way, in the same step (or a burst would count it twice)."""
        with self._locked():
            self.held += change
            self._write()
            if arrived:
                self._incoming(self.balance.index, -change)

    def opened(self) -> None:
        self._hold(+1)

    def closed(self) -> None:
        self._hold(-1)

    def place(self) -> int | None:
        """Where a new connection that landed here goes: None, it stays (and is counted here);
        or the worker to hand it to, the one holding fewest if that is fewer than this one (so
        no two workers differ by more than one), counted there until ``hand_over`` ends.
        Connections on their way to a worker count as held by it."""
        with self._locked():
            others = [
                (self._read(w) + self._read(w, incoming=True), w)
                for w in range(self.balance.workers)
                if w != self.balance.index
            ]
            fewest, worker = min(others)
            # what is on its way here counts as held: a burst another worker is handing over
            if fewest >= self.held + self._read(self.balance.index, incoming=True):
                self.held += 1
                self._write()
                return None
            self._incoming(worker, +1)
            return worker

    async def hand_over(self, sock, worker: int, early: bytes = b"") -> bool:
        """Send the connection ``sock`` to ``worker`` (from ``place``), with the bytes already
        read from it: True once that worker has it (this copy may then be closed), False to
        serve it here (the worker is gone, restarting or slow, or too much was read to send
        along; then count it with ``opened``)."""
        loop = asyncio.get_running_loop()
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [sock.fileno()]))]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as link:
                link.setblocking(False)
                await asyncio.wait_for(
                    loop.sock_connect(link, str(self.balance.inbox(worker))), HANDOVER_S
                )
                link.sendmsg([b"c", early], rights)
                # a worker that dies before it answers never had it: serve it here
                taken = await asyncio.wait_for(loop.sock_recv(link, 1), HANDOVER_S) == b"k"
        except (TimeoutError, OSError):
            taken = False
        if not taken:  # taken, that worker moved it from on its way to held before it answered
            with self._locked():
                self._incoming(worker, -1)
        return taken

    def install(self, server) -> None:
        """Count and balance the connections of ``server`` (a uvicorn Server, before it runs)."""
        config = server.config
        if not config.loaded:
            config.load()
        balancer, base = self, config.http_protocol_class

        class Balanced(base):  # uvicorn's own HTTP protocol, counted
            adopted = False
            moving = None  # the handover under way
            early = b""  # what was read before the pause took hold (sent along, or served)

            def connection_made(self, transport):
                if self.adopted:  # counted as it was taken
                    self._serve(transport)
                    return
                sock = transport.get_extra_info("socket")
                if sock is None:  # nothing to hand over: it stays
                    balancer.opened()
                    self._serve(transport)
                    return
                worker = balancer.place()
                if worker is None:  # stays, counted
                    self._serve(transport)
                    return
                # uvloop starts reading after this method returns, whatever it was told: the
                # pause is queued too, and runs before the move; a first chunk read before it
                # travels with the connection
                loop = asyncio.get_running_loop()
                transport.pause_reading()
                loop.call_soon(transport.pause_reading)
                self.moving = loop.create_task(self._move(transport, sock, worker))

            def data_received(self, data):
                if self.moving is not None:
                    self.early += data
                else:
                    super().data_received(data)

            async def _move(self, transport, sock, worker):
                if await balancer.hand_over(sock, worker, self.early):
                    transport.abort()  # closes this copy only: the connection lives there now
                elif not transport.is_closing():
                    self.moving = None
                    balancer.opened()
                    self._serve(transport)
                    transport.resume_reading()

            def _serve(self, transport):  # counted already
                super().connection_made(transport)
                if self.early:  # read before: in the other worker, or here before a failed move
                    super().data_received(self.early)

            def connection_lost(self, exc):
                if self.moving is not None:  # moved (or went away while moving): never served
                    return
                balancer.closed()
                super().connection_lost(exc)

        config.http_protocol_class = Balanced
        startup = server.startup

        async def start_then_take_handovers(sockets=None):
            await startup(sockets=sockets)

            def adopted(early: bytes):
                protocol = Balanced(
                    config=config, server_state=server.server_state, app_state=server.lifespan.state
                )
                protocol.adopted, protocol.early = True, early
                return protocol

            # the inbox opens once this worker serves: a handover before then is refused, and
            # the connection is served where it landed
            self.open_inbox(asyncio.get_running_loop(), adopted)

        server.startup = start_then_take_handovers  # uvicorn's serve looks it up on the instance

    def open_inbox(self, loop: asyncio.AbstractEventLoop, factory) -> None:
        """Take the connections other workers hand over from now on, served by ``factory``'s
        protocols."""
        path = self.balance.inbox(self.balance.index)
        path.unlink(missing_ok=True)  # a dead worker's
        self.inbox = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.inbox.setblocking(False)
        self.inbox.bind(str(path))
        self.inbox.listen(64)
        loop.add_reader(self.inbox.fileno(), self._accept, loop, factory)

    def _accept(self, loop: asyncio.AbstractEventLoop, factory) -> None:
        while True:
            try:
                link, _ = self.inbox.accept()
            except (BlockingIOError, InterruptedError):
                return
            link.setblocking(False)
            loop.add_reader(link.fileno(), self._take, loop, factory, link)

    def _take(self, loop: asyncio.AbstractEventLoop, factory, link: socket.socket) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(link, MESSAGE, 1)
        except (BlockingIOError, InterruptedError):
            return  # not there yet: called again when it is
        except OSError:
            fds = []
        loop.remove_reader(link.fileno())
        with link:
            if not fds:
                return
            conn = socket.socket(fileno=fds[0])
            self._hold(+1, arrived=True)  # counted as held before the answer
            try:
                link.send(b"k")  # taken: the sender may close its copy
            except OSError:  # the sender gave up meanwhile: it serves the connection itself
                self._hold(-1, arrived=True)
                conn.close()
                return
        loop.create_task(_serve(loop, lambda: factory(data[1:]), conn, self.closed))


async def _serve(loop: asyncio.AbstractEventLoop, factory, conn: socket.socket, lost) -> None:
    conn.setblocking(False)
    try:
        await loop.connect_accepted_socket(factory, conn)
    except OSError:  # the client went away meanwhile: never served, so never counted down
        lost()
        conn.close()
