"""The model server with two worker processes, over HTTP: what one process did, every worker does.

One 2-worker server serves the session's champion for the whole module (its tests run in file
order: the last two kill a worker and stop the server). Requests go out on fresh connections
from several threads, so both workers answer; which worker answered what is read from each
worker's own metrics file in the server's multiprocess folder.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import psutil
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from reference.serve import client
from reference.serve.payload_log import read_payload_log

pytestmark = pytest.mark.integration
NAME = "flight-delay"
WORKERS = 2
STAY_READY_S = 30.0  # how long the workers must keep their pids (no restart loop)


@pytest.fixture(scope="module")
def server(champion_settings):
    payload = champion_settings.workspace / "serving" / "payload-workers"
    started = time.monotonic()
    srv = client.start(
        champion_settings,
        name=NAME,
        args=["--workers", str(WORKERS), "--payload-dir", str(payload), "--max-batch", "64"],
    )
    srv.ready_s = time.monotonic() - started  # reported by the stay-ready test
    srv.started = time.monotonic()
    srv.payload = payload
    srv.metrics = champion_settings.workspace / "serving" / "metrics" / srv.url.rsplit(":", 1)[1]
    srv.first_workers = _wait_for_workers(srv)
    yield srv
    client.stop(srv)


@pytest.fixture(scope="module")
def bodies(champion_rows):
    """One-row V1 bodies, and a 16-row one."""
    ones = [
        orjson.dumps({"instances": client.instances(champion_rows.iloc[[i]])})
        for i in range(len(champion_rows))
    ]
    return ones, orjson.dumps({"instances": client.instances(champion_rows.head(16))})


def _children(pid: int) -> set[int]:
    """The server's worker processes (its spawned children; not multiprocessing's tracker)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                found.add(int(child))
    return found


def _wait_for_workers(srv, exclude: frozenset = frozenset(), timeout: float = 60) -> set[int]:
    """Wait until WORKERS workers (none of ``exclude``) each have their metrics file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = _children(srv.proc.pid) - exclude
        if len(pids) == WORKERS and all((srv.metrics / f"counter_{p}.db").exists() for p in pids):
            return pids
        time.sleep(0.2)
    raise AssertionError(f"workers not up after {timeout} s:\n{client._tail(srv.log)}")


def _post(url: str, body: bytes | tuple[bytes, str]) -> tuple[int, bytes]:
    """One request on its own connection (the kernel hands each new one to a worker);
    ``body``: JSON, or (bytes, content type)."""
    body, ctype = body if isinstance(body, tuple) else (body, "application/json")
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", f"/v1/models/{NAME}:predict", body, {"Content-Type": ctype})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _concurrently(url: str, bodies: list[bytes], threads: int = 8) -> list[int]:
    with ThreadPoolExecutor(threads) as pool:
        return [code for code, _ in pool.map(lambda b: _post(url, b), bodies)]


def _scraped(srv) -> dict:
    text = urllib.request.urlopen(f"{srv.url}/metrics", timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _per_worker(srv, name: str, **labels) -> dict[int, float]:
    """One sample summed over its other labels, per worker, from each worker's own file."""
    out = {}
    for path in srv.metrics.glob("*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        for metric in MultiProcessCollector.merge([str(path)], accumulate=False):
            for s in metric.samples:
                if s.name == name and labels.items() <= s.labels.items():
                    out[pid] = out.get(pid, 0.0) + s.value
    return out


def _total(samples: dict, name: str, **labels) -> float:
    return sum(
        v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items()
    )


def _settled(srv, before: dict, name: str, want: float, **labels) -> dict:
    """A scrape once ``name`` has grown by ``want``: a request is counted just after its answer
    has gone out, so the last ones may still be on their way when the client has read them."""
    deadline = time.monotonic() + 5
    while True:
        now = _scraped(srv)
        grown = _total(now, name, **labels) - _total(before, name, **labels)
        if grown >= want or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def _spread(srv, url, body_list, name, **labels) -> int:
    """Send rounds of requests until every worker has answered some (the kernel decides who);
    returns how many rounds it took."""
    for rounds in range(1, 21):
        _concurrently(url, body_list)
        counts = _per_worker(srv, name, **labels)
        if sum(1 for p in srv.first_workers if counts.get(p, 0) > 0) == WORKERS:
            return rounds
    raise AssertionError(f"one worker answered everything: {counts}")


# ----------------------------------------------------------------------------------- metrics
def test_every_worker_listens_on_loopback_only(server):
    """The parent binds the workers' sockets from the config: 127.0.0.1, not KServe's 0.0.0.0."""
    port = int(server.url.rsplit(":", 1)[1])
    others = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    for address in others - {"127.0.0.1"}:
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=2).close()
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    ours = [f.split()[1] for f in listening if f.split()[3] == "0A"]  # 0A: LISTEN
    assert sum(a.endswith(f":{port:04X}") for a in ours) == WORKERS  # a socket per worker
    assert all(a == f"0100007F:{port:04X}" for a in ours if a.endswith(f":{port:04X}"))


def _wait_until_idle(pids, port: int, timeout: float = 15) -> None:
    """Until the workers hold no connection on ``port``: one a client has just closed still
    counts in the balance until its worker has read the close and let it go."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(
            c.laddr.port == port and c.status != psutil.CONN_LISTEN
            for pid in pids
            for c in psutil.Process(pid).connections(kind="tcp")
        ):
            time.sleep(0.1)  # the worker's count goes down just after it closes the socket
            return
        time.sleep(0.05)
    raise AssertionError(f"the workers still hold connections on port {port} after {timeout} s")


def _held(pids, port: int) -> dict[int, int]:
    """The established connections on the server's port each worker holds."""
    return {
        pid: sum(
            c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
            for c in psutil.Process(pid).connections(kind="tcp")
        )
        for pid in pids
    }


@pytest.mark.parametrize("opened", ["one by one", "all at once"])
def test_keep_alive_connections_are_spread_evenly_over_the_workers(server, bodies, opened):
    """A client's pool of 8 keep-alive connections: the kernel's hash alone lands them 6/2 or
    worse about a quarter of the time, and the worker with six answers each a third as often.
    A worker that holds more than another hands a new connection over before
    reading it (reference.serve.balance): each holds four, and every request is answered on the
    connection it was sent on. "All at once": the pool connects before it sends anything, so
    a worker may accept several in one go, before any handover is answered."""
    ones, _ = bodies
    host, port = server.url.removeprefix("http://").split(":")
    _wait_until_idle(server.first_workers, int(port))  # the pools of the tests before are gone
    pool = [http.client.HTTPConnection(host, int(port), timeout=30) for _ in range(8)]
    try:
        if opened == "all at once":
            for conn in pool:
                conn.connect()
        for round_ in range(3):
            for i, conn in enumerate(pool):
                conn.request(
                    "POST",
                    f"/v1/models/{NAME}:predict",
                    ones[(8 * round_ + i) % len(ones)],
                    {"Content-Type": "application/json"},
                )
                response = conn.getresponse()
                assert response.status == 200, response.read()
                response.read()
        assert all(conn.sock is not None for conn in pool)  # the same 8 connections throughout
        held = _held(server.first_workers, int(port))
        assert sorted(held.values()) == [4, 4], held
    finally:
        for conn in pool:
            conn.close()


def test_the_log_has_no_library_deprecation_notice(server, bodies):
    """KServe answers V1 with FastAPI's ORJSONResponse, which FastAPI now calls deprecated: each
    worker printed a ten-line notice at its first requests, about code that is not ours."""
    ones, _ = bodies
    assert set(_concurrently(server.url, ones[:8])) == {200}  # every worker has answered
    log = server.log.read_text(errors="replace")
    assert "Application startup complete" in log  # the log is the server's
    assert "Warning" not in log, log[-2000:]


def test_a_client_s_mistake_is_answered_without_a_traceback_in_the_log(server):
    """A request missing its fields gets KServe's 400 with the message; the server's log gets
    no traceback for it (KServe logs one of forty lines for every invalid input)."""
    before = server.log.read_text(errors="replace")
    answers = _concurrently(server.url, [b'{"instances": [{"carrier": "UA"}]}'] * 8)
    assert set(answers) == {400}
    code, body = _post(server.url, b'{"instances": [{"carrier": "UA"}]}')
    assert code == 400 and b"missing field(s)" in body, body
    added = server.log.read_text(errors="replace")[len(before) :]
    assert "Traceback" not in added and "missing field" not in added, added[-2000:]


def test_metrics_add_up_over_the_workers(server, bodies):
    ones, sixteen = bodies
    before = _scraped(server)
    sent = ones * 2 + [sixteen] * 4
    assert set(_concurrently(server.url, sent)) == {200}
    k, rows = len(sent), len(ones) * 2 + 16 * 4
    served = _per_worker(server, "model_requests_total", code="200")
    assert sum(1 for p in server.first_workers if served.get(p, 0) > 0) == WORKERS, served
    after = _settled(server, before, "model_requests_total", k, code="200")

    def grew(name, **labels):
        return _total(after, name, **labels) - _total(before, name, **labels)

    assert grew("model_request_latency_seconds_count") == k
    assert grew("request_predict_seconds_count") == k  # KServe's own histogram too
    assert grew("model_rows_total") == rows
    assert grew("model_predictions_total") == rows
    assert grew("model_prediction_score_count") == rows


def test_the_guard_answers_in_every_worker(server):
    # a 415 is the guard's own answer; an empty batch is KServe's 400, rewritten by the guard
    wrong_type, empty = (b"carrier=UA", "text/plain"), b'{"instances": []}'
    before = _scraped(server)
    rounds = _spread(server, server.url, [wrong_type] * 8, "model_requests_total", code="415")
    assert set(_concurrently(server.url, [empty] * 8)) == {400}
    assert _post(server.url, wrong_type) == (
        415,
        b'{"error": "content type \'text/plain\' is not supported: send application/json"}',
    )
    after = _settled(server, before, "model_requests_total", 8 + 8 * rounds + 1)

    def grew(code):
        return _total(after, "model_requests_total", code=code) - _total(
            before, "model_requests_total", code=code
        )

    assert grew("415") == 8 * rounds + 1 and grew("400") == 8  # each counted once


def _payload_lines(srv) -> list[bytes]:
    return b"".join(p.read_bytes() for p in sorted(srv.payload.glob("*.jsonl"))).splitlines()


def test_payload_lines_from_every_worker_parse_and_add_up(server, bodies):
    ones, sixteen = bodies
    before = len(_payload_lines(server))
    sent = [sixteen] * 24 + ones
    assert set(_concurrently(server.url, sent)) == {200}
    lines = _payload_lines(server)
    records = [orjson.loads(line) for line in lines]  # a cut or merged line would raise here
    assert len(lines) - before == 16 * 24 + len(ones)
    assert len(read_payload_log(server.payload)) == len(records)
    # each request's rows lie together, in order, whichever worker wrote them
    runs: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        runs.setdefault(r["request_id"], []).append(i)
    for where in runs.values():
        assert where == list(range(where[0], where[0] + len(where)))
        assert [records[i]["row"] for i in where] == list(range(len(where)))
    rows = _total(_settled(server, {}, "model_rows_total", len(records)), "model_rows_total")
    assert len(records) == rows  # all, and only, these


def test_a_quick_load_is_answered_and_its_cpu_counted_over_the_workers(server, bodies):
    """client.load and client.cpu_seconds, what lab 05 measures the worker count with."""
    _, sixteen = bodies
    cpu = client.cpu_seconds(server)
    sent, failed = client.load(server, sixteen, seconds=0.5, threads=4)
    assert sent >= 4 and failed == 0
    assert client.cpu_seconds(server) > cpu  # the workers' CPU, not only the idle parent's


# ------------------------------------------------------------------------------- lifecycle
def test_the_workers_stay_up_without_a_restart(server):
    """Each worker takes longer than KServe's 5 s ping to import torch and KServe here: it must
    not be killed and started again, over and over."""
    while True:
        assert _children(server.proc.pid) == server.first_workers, client._tail(server.log)
        assert client.get_status(f"{server.url}/v2/models/{NAME}/ready") == 200
        if time.monotonic() - server.started >= STAY_READY_S:
            break
        time.sleep(1.0)
    assert "starting another" not in server.log.read_text()
    print(f"2 workers ready in {server.ready_s:.1f} s")


def test_a_killed_worker_is_replaced_and_the_server_keeps_answering(server, bodies):
    ones, _ = bodies
    victim = min(server.first_workers)
    os.kill(victim, signal.SIGKILL)
    assert set(_concurrently(server.url, ones)) == {200}  # the other worker answers meanwhile
    replaced = _wait_for_workers(server, exclude=frozenset({victim}))
    assert victim not in replaced
    assert f"worker process {victim} stopped" in server.log.read_text()
    assert set(_concurrently(server.url, ones)) == {200}


def test_sigterm_drains_requests_in_flight(server, bodies):
    """Requests whose bodies are half sent when SIGTERM arrives are all answered."""
    _, sixteen = bodies
    host, port = server.url.removeprefix("http://").split(":")
    half = len(sixteen) // 2
    socks = []
    for _ in range(8):
        s = socket.create_connection((host, int(port)), timeout=30)
        s.sendall(
            f"POST /v1/models/{NAME}:predict HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(sixteen)}\r\n\r\n".encode()
            + sixteen[:half]
        )
        socks.append(s)
    time.sleep(0.5)  # the workers have read the headers: these requests are in flight
    stopping = threading.Thread(target=client.stop, args=(server,))
    stopping.start()
    time.sleep(0.5)
    answers = []
    for s in socks:
        s.sendall(sixteen[half:])
        answers.append(_read_response(s))
        s.close()
    stopping.join()
    assert [a.split(b" ", 2)[1] for a in answers] == [b"200"] * len(socks), answers
    assert server.proc.returncode == 0, client._tail(server.log)


def _read_response(sock: socket.socket) -> bytes:
    """The whole response (the server closes the connection: it is shutting down)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data
