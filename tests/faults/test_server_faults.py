"""Faults around the model server: a plain client's oversized body, a full disk, fuzzed requests.

The real KServe ModelServer runs as a process on a free loopback port, serving the champion of
one small real pipeline run (the same run as tests/integration/test_serving.py). Each test breaks
something the way it breaks in production (a client that sends before it reads, a disk that is
full, requests no one wrote on purpose) and checks that the server still answers, says what went
wrong, and keeps serving.
"""

from __future__ import annotations

import copy
import http.client
import json
import random
import re
import socket
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from reference import registry
from reference.features import FEATURES
from reference.model import load_bundle
from reference.serve import client
from reference.serve.guard import DRAIN_MAX_BYTES, DRAIN_MAX_SECONDS
from reference.serve.payload_log import read_payload_log
from reference.serve.schema import Limits
from reference.serve.tensors import V2_DATATYPES

pytestmark = [pytest.mark.integration, pytest.mark.fault]
NAME = "flight-delay"
LIMIT = Limits().max_body_bytes  # the servers here run with the default body limit


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def settings(champion_settings):
    return champion_settings


@pytest.fixture(scope="module")
def server(champion_server):
    return champion_server


@pytest.fixture(scope="module")
def rows(champion_rows):
    return champion_rows


@pytest.fixture(scope="module")
def expected(settings, rows, tmp_path_factory):
    """The champion's probabilities for ``rows``, computed in this process: what 'correct' is."""
    champion = registry.version_by_alias(settings, registry.CHAMPION)
    folder = registry.download_bundle(
        settings, str(champion.version), tmp_path_factory.mktemp("bundle")
    )
    return load_bundle(folder).predict_proba(rows)


def _v1(server) -> str:
    return f"{server.url}/v1/models/{NAME}:predict"


def _v2(server) -> str:
    return f"{server.url}/v2/models/{NAME}/infer"


def _healthy(server) -> bool:
    return client.get_status(f"{server.url}/v2/models/{NAME}/ready") == 200


def _metrics(server) -> dict:
    text = urllib.request.urlopen(f"{server.url}/metrics", timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _predicts_correctly(server, rows, expected) -> None:
    for protocol in ("v1", "v2"):
        got = client.predict(server.url, rows, NAME, protocol)
        np.testing.assert_allclose(got["probability"], expected, atol=1e-6, err_msg=protocol)


# ---------------------------------------------------------------- 1. an oversized body, sent whole
@pytest.mark.parametrize(
    ("ctype", "status", "words"),
    [
        ("application/json", 413, ["limit", f"{LIMIT:,}"]),
        ("text/plain", 415, ["text/plain", "application/json"]),
    ],
    ids=["too-big", "too-big-and-wrong-type"],
)
def test_a_plain_client_that_sends_a_whole_8_mb_body_reads_the_refusal(
    server, rows, expected, ctype, status, words
):
    """urllib sends all 8 MB before it reads: it gets the 4xx and its message, not a reset."""
    body = b'{"instances": [' + b" " * (8 << 20) + b"]}"
    req = urllib.request.Request(_v1(server), data=body, headers={"Content-Type": ctype})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=30)
    assert refused.value.code == status
    message = json.loads(refused.value.read())["error"]
    for word in words:
        assert word in message, message
    assert _healthy(server)
    _predicts_correctly(server, rows.head(3), expected[:3])


def test_a_body_declared_beyond_the_drain_bound_is_refused_without_being_read(server):
    """Over DRAIN_MAX_BYTES the 413 comes at once and the server closes without waiting."""
    host, port = server.url.removeprefix("http://").split(":")
    head = (
        f"POST /v1/models/{NAME}:predict HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {DRAIN_MAX_BYTES + 1}\r\n\r\n"
    )
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=DRAIN_MAX_SECONDS * 2) as sock:
        sock.sendall(head.encode())
        answer = b""
        while chunk := sock.recv(65536):  # until the server closes
            answer += chunk
    took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"limit" in answer.partition(b"\r\n\r\n")[2]
    # a drained refusal would have waited DRAIN_MAX_SECONDS for a body that never comes
    assert took < DRAIN_MAX_SECONDS / 2, f"closed after {took:.1f} s"
    assert _healthy(server)


# ----------------------------------------------------------------------------- 2. a full disk
def test_a_full_disk_loses_payload_records_but_never_a_prediction(settings, rows, expected):
    """Payload writes failing with ENOSPC: every answer is still 200 and right, each loss counted."""
    payload = settings.workspace / "serving" / "payload-full-disk"
    srv = client.start(settings, name=NAME, args=["--payload-dir", str(payload)])
    try:
        # the server says at start which file it will write; the disk is full before it does
        announced = re.search(
            r"^payload log: appending every prediction to (.+\.jsonl)$", srv.log.read_text(), re.M
        )
        assert announced, client._tail(srv.log)
        target = Path(announced.group(1))
        assert target.parent == payload
        # a real full disk, no root needed: every write to /dev/full fails with ENOSPC
        payload.mkdir(parents=True, exist_ok=True)
        target.symlink_to("/dev/full")
        assert _metrics(srv)[("payload_log_write_errors_total", ())] == 0

        answered = 0
        for start, protocol in ((0, "v1"), (5, "v2"), (10, "v1"), (15, "v2")):
            part = slice(start, start + 5)
            got = client.predict(srv.url, rows.iloc[part], NAME, protocol)  # raises unless 200
            np.testing.assert_allclose(got["probability"], expected[part], atol=1e-6)
            answered += 1
        assert _metrics(srv)[("payload_log_write_errors_total", ())] == answered
        assert _healthy(srv)
        warnings = srv.log.read_text().count("WARNING payload log: cannot write")
        assert warnings == 1, client._tail(srv.log)
        assert "No space left on device" in srv.log.read_text()

        # space again: the next request is logged in the same file, the lost ones stay lost
        target.unlink()
        got = client.predict(srv.url, rows.head(2), NAME)
        log = read_payload_log(payload)
        assert len(log) == 2 and log["request_id"].nunique() == 1, log
        np.testing.assert_allclose(log["probability"], got["probability"], atol=1e-6)
        assert _metrics(srv)[("payload_log_write_errors_total", ())] == answered
    finally:
        client.stop(srv)


# ------------------------------------------------------------------------- 3. a seeded fuzz
SEED = 20260101
FUZZ_REQUESTS = 300
GARBAGE: list[Any] = [
    None, True, False, 0, -1, 1.5, "", "x", "NaN", "Infinity", "-Infinity", "nan", "1e999",
    [], [None], {}, {"a": [[{"b": []}]]}, [[[[1]]]], 1e308, -1e308, 2**63 - 1, 2**63, -(2**63),
    2**64 - 1, 5e-324, "🛫", "\u0000", "a" * 1000,
]  # fmt: skip
HUGE: list[Any] = [1e308, -1e308, 2**63 - 1, 2**63, -(2**63), 2**64 - 1, 10**30, -(10**30)]
CTYPES = [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/octet-stream", "application/jsön", "application/json; charset=utf-8",
    "APPLICATION/JSON", "", None,
]  # fmt: skip

Body = dict[str, Any]
Request = tuple[str, bytes, str | None]  # (protocol, raw body, content type or None)


def _leaves(body: Any, path: tuple = ()) -> list[tuple]:
    """Every place in a JSON value, as a path of keys and indexes (the root excluded)."""
    if isinstance(body, dict):
        items = list(body.items())
    elif isinstance(body, list):
        items = list(enumerate(body))
    else:
        return []
    out = []
    for key, value in items:
        out.append((*path, key))
        out.extend(_leaves(value, (*path, key)))
    return out


def _parent(body: Any, path: tuple) -> Any:
    for key in path[:-1]:
        body = body[key]
    return body


def _get(body: Any, path: tuple) -> Any:
    return _parent(body, path)[path[-1]]


def _set(rng: random.Random, body: Body, values: list[Any]) -> Body:
    path = rng.choice(_leaves(body))
    _parent(body, path)[path[-1]] = copy.deepcopy(rng.choice(values))
    return body


def _keyed(body: Body) -> list[tuple]:
    return [p for p in _leaves(body) if isinstance(_parent(body, p), dict)]


def m_drop(rng: random.Random, body: Body) -> Any:
    path = rng.choice(_keyed(body))
    del _parent(body, path)[path[-1]]
    return body


def m_rename(rng: random.Random, body: Body) -> Any:
    path = rng.choice(_keyed(body))
    parent = _parent(body, path)
    new = rng.choice([path[-1].upper(), path[-1] + "_", "temperature", "", " ", "inputs", "🛫"])
    parent[new] = parent.pop(path[-1])
    return body


def m_wrong_type(rng: random.Random, body: Body) -> Any:
    return _set(rng, body, GARBAGE)


def m_null(rng: random.Random, body: Body) -> Any:
    return _set(rng, body, [None])


def m_huge(rng: random.Random, body: Body) -> Any:
    return _set(rng, body, HUGE)


def m_long_string(rng: random.Random, body: Body) -> Any:
    return _set(rng, body, ["w" * rng.randint(10_000, 300_000)])


def m_nested(rng: random.Random, body: Body) -> Any:
    deep: Any = 1
    for _ in range(rng.randint(10, 200)):  # deeper: t_deep, as text
        deep = [deep] if rng.random() < 0.5 else {"k": deep}
    return _set(rng, body, [deep])


def m_extra(rng: random.Random, body: Body) -> Any:
    places = [body] + [v for p in _leaves(body) if isinstance(v := _get(body, p), dict)]
    target = rng.choice(places)
    target[rng.choice(["extra", "parameters", "id", "outputs", "temp_f"])] = rng.choice(GARBAGE)
    return body


def m_tensor(rng: random.Random, body: Body) -> Any:
    """V2 only (else a wrong type): a shape, datatype or data that does not fit the tensor."""
    inputs = body.get("inputs")
    tensors = [t for t in inputs if isinstance(t, dict)] if isinstance(inputs, list) else []
    if not tensors:
        return m_wrong_type(rng, body)
    tensor = rng.choice(tensors)
    data = tensor.get("data") if isinstance(tensor.get("data"), list) else []
    n = len(data)
    change = rng.choice(["shape", "datatype", "data"])
    if change == "shape":
        tensor["shape"] = rng.choice(
            [[n + 1], [0], [], [n, 1], [1, n], [-1], ["1"], [1.5], None, n, [2**63]]
        )
    elif change == "datatype":
        tensor["datatype"] = rng.choice([*sorted(V2_DATATYPES), "BOOL", "STRING", "fp32", ""])
    else:
        tensor["data"] = rng.choice([[], [[v] for v in data], "abc", None, data * 2])
    return body


def m_nan_literal(rng: random.Random, body: Body) -> Any:
    # json.dumps writes these as the bare words NaN / Infinity, which JSON does not allow
    return _set(rng, body, [float("nan"), float("inf"), float("-inf")])


def m_top_level(rng: random.Random, body: Body) -> Any:
    return rng.choice([[], [body], "instances", 42, None, True, {"instances": body}])


STRUCTURAL: list[Callable[[random.Random, Body], Any]] = [
    m_drop, m_rename, m_wrong_type, m_null, m_huge, m_long_string, m_nested, m_extra, m_tensor,
    m_nan_literal, m_top_level,
]  # fmt: skip


def _dumps(body: Any) -> bytes:
    return json.dumps(body).encode()


def t_truncate(rng: random.Random, protocol: str, body: Body) -> Request:
    raw = _dumps(body)
    return protocol, raw[: rng.randrange(len(raw))], "application/json"


def t_random_bytes(rng: random.Random, protocol: str, body: Body) -> Request:
    return protocol, rng.randbytes(rng.randint(1, 4096)), "application/json"


def t_empty(rng: random.Random, protocol: str, body: Body) -> Request:
    return protocol, rng.choice([b"", b" ", b"\n", b"null", b"{}", b"[]"]), "application/json"


def t_deep(rng: random.Random, protocol: str, body: Body) -> Request:
    # nesting deeper than any parser's recursion limit
    n = rng.choice([1_000, 5_000, 50_000])
    return protocol, b'{"instances": ' + b"[" * n + b"]" * n + b"}", "application/json"


def t_content_type(rng: random.Random, protocol: str, body: Body) -> Request:
    return protocol, _dumps(body), rng.choice(CTYPES)


def t_duplicate_keys(rng: random.Random, protocol: str, body: Body) -> Request:
    # the same key twice in one object: JSON parsers disagree on which one wins
    raw = _dumps(body).decode()
    key = rng.choice(["instances", "inputs", "name", "datatype", "shape", "data", *FEATURES])
    twin = f'"{key}": {json.dumps(rng.choice(GARBAGE))}, '
    spots = [m.end() for m in re.finditer(r"\{", raw)]
    at = rng.choice(spots)
    raw = (
        raw[:at] + twin + raw[at:]
        if rng.random() < 0.5
        else raw[:at] + raw[at:].replace("}", ", " + twin.rstrip(", ") + "}", 1)
    )
    return protocol, raw.encode(), "application/json"


def t_other_protocol(rng: random.Random, protocol: str, body: Body) -> Request:
    # a V1 body sent to the V2 route, or the other way round
    return ("v2" if protocol == "v1" else "v1"), _dumps(body), "application/json"


TEXTUAL: list[Callable[[random.Random, str, Body], Request]] = [
    t_truncate, t_random_bytes, t_empty, t_deep, t_content_type, t_duplicate_keys,
    t_other_protocol,
]  # fmt: skip


def _valid_bodies(rows) -> list[tuple[str, Body]]:
    bodies = []
    for start, n in ((0, 1), (1, 2), (3, 5), (8, 12)):
        part = rows.iloc[start : start + n]
        bodies += [("v1", {"instances": client.instances(part)})]
        bodies += [("v2", {"inputs": client.v2_inputs(part)})]
    return bodies


def _mutate(rng: random.Random, protocol: str, body: Body) -> tuple[str, Request]:
    """One or two structural mutations, or one on the text: (the mutations' names, request)."""
    body = copy.deepcopy(body)
    if rng.random() < 0.25:
        textual = rng.choice(TEXTUAL)
        return textual.__name__, textual(rng, protocol, body)
    names = []
    for _ in range(1 if rng.random() < 0.7 else 2):
        mutation = rng.choice(STRUCTURAL)
        if isinstance(body, dict) and _leaves(body):  # not after m_top_level made it a list
            names.append(mutation.__name__)
            body = mutation(rng, body)
    return "+".join(names), (protocol, _dumps(body), "application/json")


def _post(server, protocol: str, raw: bytes, ctype: str | None) -> tuple[int | None, bytes]:
    """(status, body), or (None, what went wrong) when no HTTP answer came back."""
    host, port = server.url.removeprefix("http://").split(":")
    path = f"/v1/models/{NAME}:predict" if protocol == "v1" else f"/v2/models/{NAME}/infer"
    conn = http.client.HTTPConnection(host, int(port), timeout=15)
    headers = {} if ctype is None else {"Content-Type": ctype}
    try:
        conn.request("POST", path, body=raw, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException) as e:
        return None, repr(e).encode()
    finally:
        conn.close()


def _scores(answer: bytes) -> list | None:
    """The probabilities in a 200 answer, V1 or V2 (None when they are not where they belong)."""
    try:
        parsed = json.loads(answer)
        if "predictions" in parsed:
            return [p["probability"] for p in parsed["predictions"]]
        return next(o["data"] for o in parsed["outputs"] if o["name"] == "probability")
    except (ValueError, KeyError, TypeError, StopIteration):
        return None


def _problem(status: int | None, answer: bytes) -> str | None:
    """What is wrong with one answer, or None: no answer, a 5xx, a 4xx without a JSON error,
    a 200 without a probability from 0 to 1 for each row."""
    if status is None:
        return f"no HTTP answer: {answer.decode(errors='replace')}"
    if status >= 500:
        return f"HTTP {status}: {answer[:300]!r}"
    if status == 200:
        scores = _scores(answer)
        if not scores or not all(isinstance(p, float | int) and 0 <= p <= 1 for p in scores):
            return f"HTTP 200 without valid probabilities: {answer[:300]!r}"
    if 400 <= status < 500:
        try:
            error = json.loads(answer).get("error")
        except (ValueError, AttributeError):
            return f"HTTP {status} without a JSON object: {answer[:300]!r}"
        if not isinstance(error, str) or not error.strip():
            return f"HTTP {status} without a non-empty 'error': {answer[:300]!r}"
    return None


def test_a_seeded_fuzz_of_v1_and_v2_gets_an_answer_and_never_a_5xx(server, rows, expected):
    """300 seeded mutations of valid V1/V2 bodies: every one answered, no 5xx, every 4xx explained."""
    rng = random.Random(SEED)
    valid = _valid_bodies(rows)
    tally: Counter = Counter()
    problems = []
    for i in range(FUZZ_REQUESTS):
        protocol, body = rng.choice(valid)
        names, (protocol, raw, ctype) = _mutate(rng, protocol, body)
        status, answer = _post(server, protocol, raw, ctype)
        tally[status or "no answer"] += 1
        problem = _problem(status, answer)
        if problem:
            problems.append(f"#{i} {names} ({protocol}, {len(raw):,} bytes, {ctype}): {problem}")
    codes = dict(sorted(tally.items(), key=str))
    summary = f"fuzz: seed {SEED}, {FUZZ_REQUESTS} requests, status codes {codes}"
    print(summary)
    assert not problems, summary + "\n" + "\n".join(problems[:20])
    assert tally[200] < FUZZ_REQUESTS, summary  # the mutations did break the requests
    assert _healthy(server), summary
    _predicts_correctly(server, rows, expected)
