"""The guard: ASGI middleware in front of KServe's prediction routes, for requests it answers badly.

KServe answers some mistakes with a 500 (a V2 shape that does not match its data), reads a
wrong content type as bytes, and takes a body of any size. The guard answers those with a 4xx
that says what is wrong (415, 413, bad JSON, V2 shapes and binary sizes), in the same
``{"error": "..."}`` as every other refusal, and counts every prediction request by status and
latency for the monitoring. ``reference.serve.workers`` puts it in front of every worker.
"""

from __future__ import annotations

import asyncio
import json
import time

from reference.serve.schema import BadRequest, Limits
from reference.serve.tensors import check_v2_structure, split_binary_request

PREDICT_SUFFIXES = (":predict", "/infer")
INFERENCE_HEADER = b"inference-header-content-length"  # the JSON header's size, binary requests
# How much of a refused body the server still reads (and drops) before it closes, so that a
# client which sends everything before reading gets the 4xx instead of a reset (see Guard.reply).
# 16 MiB on loopback or a LAN takes well under a second; the time bound stops a slow client
# from holding the connection, and a declared body over the byte bound is not read at all.
DRAIN_MAX_BYTES = 16 << 20
UNRECOGNIZED = "Unrecognized request format: "  # KServe's V1 answer to a body orjson cannot read
DRAIN_MAX_SECONDS = 5.0


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
        try:
            await self._guarded(scope, receive, send, protocol, status)
        finally:
            # every prediction request, the guard's own refusals included: a client sending
            # the wrong content type is a rising 4xx rate on the dashboard, not silence
            if self.telemetry is not None:
                version = self.version()
                self.telemetry.requests.labels(version, protocol, str(status["code"])).inc()
                self.telemetry.latency.labels(version, protocol).observe(
                    time.perf_counter() - started
                )

    async def _guarded(self, scope, receive, send, protocol: str, status: dict) -> None:
        """Check the request, answer a refusal itself or pass it on; ``status["code"]``: the
        status sent."""

        async def reply(code: int, message: str, unread: int | None = None):
            """Answer with {"error": message}; ``unread``: the body is not read yet (bytes so far)."""
            status["code"] = code
            body = json.dumps({"error": message}).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            if unread is None:
                await send({"type": "http.response.start", "status": code, "headers": headers})
                return await send({"type": "http.response.body", "body": body})
            # A refusal before the body is read, done as nginx's lingering close: the whole answer
            # goes out at once (a client that waits for it, like curl, reads it now), then the
            # connection closes only after the rest of the body is read and dropped. A client
            # that sends everything before it reads (urllib, many SDKs) would otherwise get
            # "connection reset" instead of this message: closing a socket with unread bytes in
            # it makes the kernel answer RST, which throws away what we had sent.
            headers.append((b"connection", b"close"))  # a refused body: not worth a keep-alive
            await send({"type": "http.response.start", "status": code, "headers": headers})
            declared = _content_length(scope)
            if declared is not None and declared > DRAIN_MAX_BYTES:
                # too much to read for nothing: close at once (that client may see a reset)
                return await send({"type": "http.response.body", "body": body})
            await send({"type": "http.response.body", "body": body, "more_body": True})
            await _drain(receive, DRAIN_MAX_BYTES - unread, DRAIN_MAX_SECONDS)
            await send({"type": "http.response.body", "body": b""})

        try:
            headers = dict(scope.get("headers") or [])
            ctype = headers.get(b"content-type", b"application/json").split(b";")[0].strip().lower()
            # V2's binary-tensor extension: a JSON header of this many bytes, then raw tensors
            header_length = headers.get(INFERENCE_HEADER) if protocol == "v2" else None
            allowed = (b"application/json", b"") + (
                (b"application/octet-stream",) if header_length is not None else ()
            )
            if ctype not in allowed:
                return await reply(
                    415,
                    f"content type {ctype.decode(errors='replace')!r} is not supported: "
                    "send application/json"
                    + (
                        " (or V2 binary tensors, with inference-header-content-length)"
                        if protocol == "v2"
                        else ""
                    ),
                    unread=0,
                )
            encoding = headers.get(b"content-encoding", b"identity").strip().lower()
            if encoding not in (b"identity", b""):
                return await reply(
                    415,
                    f"content encoding {encoding.decode(errors='replace')!r} is not supported: "
                    "send the body uncompressed",
                    unread=0,
                )
            declared = _content_length(scope)
            if declared is not None and declared > self.limits.max_body_bytes:
                return await reply(
                    413,
                    f"the body is {declared:,} bytes; the limit is {self.limits.max_body_bytes:,}",
                    unread=0,
                )
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if len(body) > self.limits.max_body_bytes:
                    return await reply(
                        413,
                        f"the body is over the limit of {self.limits.max_body_bytes:,} bytes",
                        unread=len(body),
                    )
                if not message.get("more_body"):
                    break
            if header_length is not None:
                split_binary_request(body, header_length.decode(errors="replace"))
                scope = _with_content_type(scope, b"application/octet-stream")  # KServe: bytes
            elif protocol == "v2":
                check_v2_structure(_parse_v2_json(body))
                scope = _with_content_type(scope, b"application/json")  # tritonclient sends none
            elif b"ce-specversion" in headers:
                # a CloudEvent: KServe reads it its own way; say here if it is no JSON
                import orjson  # KServe's own parser: it rejects NaN and Infinity, as JSON does

                try:
                    orjson.loads(body)
                except orjson.JSONDecodeError as e:
                    return await reply(400, f"the body is not valid JSON: {e}")
            else:
                # KServe parses the body (orjson, once; a body that is not JSON comes back as its
                # 400 "Unrecognized request format: ...", reworded by _rewrite), but only under
                # exactly this content type: "application/json; charset=utf-8" or none at all
                # would reach the model as bytes
                if headers.get(b"content-type") != b"application/json":
                    scope = _with_content_type(scope, b"application/json")
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
            # KServe answers InvalidInput with 400 {"error": "[413] ..."}: restore the status;
            # FastAPI answers a V2 body its model rejects with 422 {"detail": [...]}: say it in
            # the same {"error": "..."} as every other refusal
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                if message["status"] in (400, 422):
                    held["start"] = message
                    return
                if protocol == "v2" and not _named(message, b"content-type", INFERENCE_HEADER):
                    held["bare"] = message  # the predictor's V2 JSON, sent as bytes: see below
                    return
                return await send(message)
            if "bare" in held:
                # KServe sends an answer the model encoded itself as raw bytes, without a content
                # type or length (a binary answer says inference-header-content-length instead)
                held.setdefault("body", b"")
                held["body"] += message.get("body", b"")
                if message.get("more_body"):
                    return
                headers = [
                    *held["bare"]["headers"],
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(held["body"])).encode()),
                ]
                await send({**held["bare"], "headers": headers})
                return await send({"type": "http.response.body", "body": held["body"]})
            if "start" in held:
                held.setdefault("body", b"")
                held["body"] += message.get("body", b"")
                if message.get("more_body"):
                    return
                code, payload = _rewrite(held["start"]["status"], held["body"], protocol)
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

        await self.app(scope, replay, send_rewriting)


def _parse_v2_json(body: bytes):
    """V2 JSON as KServe's V2 route reads it (the stdlib's parser, through FastAPI): NaN is
    accepted there, and it is how tritonclient writes a missing reading in an FP tensor."""
    import orjson

    try:
        return orjson.loads(body)  # the fast path: strict JSON
    except orjson.JSONDecodeError as e:
        strict = e
    try:
        return json.loads(body)  # NaN and Infinity
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the stack
        raise BadRequest(400, f"the body is not valid JSON: {strict}") from None


def _named(message: dict, *names: bytes) -> bool:
    """Whether a response start message has a header of one of these (lower-case) names."""
    return any(k.lower() in names for k, _ in message.get("headers") or [])


def _with_content_type(scope, ctype: bytes):
    headers = [(k, v) for k, v in scope.get("headers") or [] if k != b"content-type"]
    return {**scope, "headers": [*headers, (b"content-type", ctype)]}


def _content_length(scope) -> int | None:
    """The declared Content-Length, or None (chunked, absent, or not a number)."""
    value = dict(scope.get("headers") or []).get(b"content-length", b"")
    return int(value) if value.isdigit() else None


async def _drain(receive, max_bytes: int, max_seconds: float) -> None:
    """Read and drop the rest of a refused body: until it ends, the client leaves, or a bound."""
    read = 0
    try:
        async with asyncio.timeout(max_seconds):
            while read < max_bytes:
                message = await receive()
                if message["type"] != "http.request":  # http.disconnect: the client is gone
                    return
                read += len(message.get("body", b""))
                if not message.get("more_body"):
                    return
    except TimeoutError:
        return  # a slow or stalled client: stop waiting for it and close


def _rewrite(code: int, body: bytes, protocol: str = "v1") -> tuple[int, bytes]:
    """KServe's 400 "[413] ..." as a 413; FastAPI's 422 validation detail as a 400 that says it;
    KServe's V1 "Unrecognized request format: <orjson's error>" in the guard's own words."""
    import orjson

    try:
        answer = orjson.loads(body)  # KServe wrote it with orjson: strict JSON, read faster
    except orjson.JSONDecodeError:
        return code, body
    if not isinstance(answer, dict):
        return code, body
    if code == 422 and isinstance(answer.get("detail"), list):
        return 400, json.dumps({"error": _validation_message(answer["detail"])}).encode()
    error = answer.get("error", "")
    if protocol == "v1" and code == 400 and isinstance(error, str):
        reason = error.removeprefix(UNRECOGNIZED)
        if reason != error:
            return 400, json.dumps({"error": f"the body is not valid JSON: {reason}"}).encode()
    if (
        isinstance(error, str)
        and error.startswith("[")
        and error[1:4].isdigit()
        and error[4:6] == "] "
    ):
        return int(error[1:4]), json.dumps({"error": error[6:]}).encode()
    return code, body


def _validation_message(detail: list) -> str:
    """FastAPI's list of errors as one line: "inputs[9].data: Input should be a valid list"."""
    parts = []
    for item in detail:
        if not isinstance(item, dict):
            continue
        loc = [p for p in item.get("loc", []) if p not in ("body", "InferenceRequest")]
        if loc == ["bytes"]:
            continue  # the other half of KServe's Union[InferenceRequest, bytes]: never the issue
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        parts.append(f"{where or 'the body'}: {item.get('msg', 'is not valid')}")
    found = "; ".join(parts[:3]) or "it does not match the V2 inference request"
    return f"the request is not a valid V2 inference request: {found}"
