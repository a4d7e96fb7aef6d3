"""The request contract of the predictor: what a well-formed request is, and what each mistake says.

Pure functions, no server: every predictable mistake raises ``BadRequest`` with an HTTP status and
a message that names the field, the row and what was expected, so a client can fix its request
without reading server logs. An unseen category or an odd weather reading is *not* a mistake: the
row is scored (unknown bucket, imputation) and counted by the monitoring instead.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reference.features import FEATURES

STRINGS = ("carrier", "origin", "dest")
CALENDAR = {"hour": (0, 23), "weekday": (0, 6), "month": (1, 12)}  # a wrong hour is a bug, not data
REQUIRED = (*STRINGS, *CALENDAR, "distance")
NULLABLE = tuple(f for f in FEATURES if f not in REQUIRED)  # weather: sensors go missing
V2_DATATYPES = {
    "BYTES",
    "FP16",
    "FP32",
    "FP64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
}
# bytes per element in the binary-tensor extension (BYTES elements carry their own lengths)
ITEMSIZE = {"FP16": 2, "FP32": 4, "FP64": 8} | {
    f"{kind}INT{b}": b // 8 for kind in ("", "U") for b in (8, 16, 32, 64)
}
OUTPUTS = ("probability", "label")  # what the model answers, by name
# what numpy can hold in each integer datatype: a value outside it is an OverflowError (a 500)
INT_RANGES = {f"INT{b}": (-(2 ** (b - 1)), 2 ** (b - 1) - 1) for b in (8, 16, 32, 64)} | {
    f"UINT{b}": (0, 2**b - 1) for b in (8, 16, 32, 64)
}


class BadRequest(Exception):
    """A request the client must fix: ``status`` is the HTTP code (400, 413), ``message`` says what."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    """How much one request may carry: rows (413 above) and body bytes."""

    max_batch: int = 1024  # rows in one request
    max_body_bytes: int = 1 << 20  # 1 MiB: about 2,000 rows of V1 JSON


def _suggest(name: str) -> str:
    # "temperature" for "temp", "dep_hour" for "hour": prefixes and suffixes first, then spelling
    lowered = name.lower()
    close = [
        f for f in FEATURES if lowered.startswith(f) or lowered.endswith(f) or f.startswith(lowered)
    ]
    close = close or difflib.get_close_matches(lowered, FEATURES, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_value(field: str, value: Any, where: str) -> None:
    if value is None:
        if field in REQUIRED:
            raise BadRequest(400, f"{where}: '{field}' is null; it is required")
        return
    if field in STRINGS:
        if not isinstance(value, str) or not value:
            raise BadRequest(400, f"{where}: '{field}' must be a non-empty string, got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(
            400, f"{where}: '{field}' must be a number, got {type(value).__name__} {value!r}"
        )
    if not math.isfinite(value):
        raise BadRequest(400, f"{where}: '{field}' must be a finite number, got {value!r}")
    if field in CALENDAR:
        low, high = CALENDAR[field]
        if value != int(value) or not low <= value <= high:
            raise BadRequest(
                400, f"{where}: '{field}' must be an integer from {low} to {high}, got {value!r}"
            )


def parse_instances(records: Any, limits: Limits) -> dict[str, list]:
    """V1 ``instances``: a list of objects, one per flight, with exactly the feature fields."""
    if not isinstance(records, list):
        raise BadRequest(
            400, f"'instances' must be a list of objects, got {type(records).__name__}"
        )
    _check_size(len(records), limits)
    expected = set(FEATURES)
    for i, row in enumerate(records):
        where = f"instances[{i}]"
        if not isinstance(row, dict):
            raise BadRequest(
                400,
                f"{where} must be an object with fields {list(FEATURES)}, got {type(row).__name__}",
            )
        keys = set(row)
        if keys != expected:
            unknown = sorted(keys - expected)
            missing = sorted(expected - keys)
            parts = []
            if missing:
                parts.append(f"missing field(s) {missing}")
            if unknown:
                parts.append(
                    "unknown field(s) " + ", ".join(f"'{u}'{_suggest(u)}" for u in unknown)
                )
            raise BadRequest(400, f"{where}: " + "; ".join(parts))
        for field in FEATURES:
            _check_value(field, row[field], where)
    return {f: [row[f] for row in records] for f in FEATURES}


def parse_tensors(columns: dict[str, np.ndarray], limits: Limits) -> dict[str, list]:
    """V2 ``inputs``: one 1-D tensor per feature, all the same length."""
    names = set(columns)
    expected = set(FEATURES)
    if names != expected:
        missing, unknown = sorted(expected - names), sorted(names - expected)
        parts = []
        if missing:
            parts.append(f"missing input(s) {missing}")
        if unknown:
            parts.append("unknown input(s) " + ", ".join(f"'{u}'{_suggest(u)}" for u in unknown))
        raise BadRequest(400, "inputs: " + "; ".join(parts))
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) != 1:
        raise BadRequest(400, f"inputs must all have the same length, got {lengths}")
    _check_size(next(iter(lengths.values())), limits)
    out = {}
    for field in FEATURES:
        values = [v.decode() if isinstance(v, bytes) else v for v in columns[field].tolist()]
        # a null in an FP tensor arrives as NaN: a missing reading where that is allowed
        values = [
            None if field in NULLABLE and isinstance(v, float) and v != v else v for v in values
        ]
        for i, value in enumerate(values):
            _check_value(field, value, f"inputs['{field}'][{i}]")
        out[field] = values
    return out


def to_frame(columns: dict[str, list]) -> pd.DataFrame:
    """The parsed columns as a typed DataFrame (for notebooks and the payload log reader)."""
    frame = pd.DataFrame(columns, columns=list(FEATURES))
    for col in CALENDAR:
        frame[col] = frame[col].astype("int64")
    for col in ("distance", *NULLABLE):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame


def split_binary_request(body: bytes, header_length: str) -> dict:
    """The binary-tensor extension: the first ``header_length`` bytes (the request's
    ``inference-header-content-length``) are the JSON inference header, then each input that
    says ``binary_data_size`` has that many raw bytes, in order. Returns the header, checked
    with ``check_v2_structure`` against those bytes."""
    if not header_length.strip().isdigit():
        raise BadRequest(
            400,
            f"inference-header-content-length must be a number of bytes, got {_short(header_length)}",
        )
    n = int(header_length)
    if not 0 < n <= len(body):
        raise BadRequest(
            400,
            f"inference-header-content-length is {n:,} but the body has {len(body):,} bytes",
        )
    try:
        header = json.loads(body[:n])  # the stdlib's parser, as for V2 JSON: NaN is a reading
    except ValueError as e:
        raise BadRequest(
            400,
            f"the first {n:,} bytes (inference-header-content-length) are not a JSON "
            f"inference header: {e}",
        ) from None
    check_v2_structure(header, binary=body[n:])
    return header


def check_v2_structure(body: Any, binary: bytes | None = None) -> None:
    """What KServe would otherwise answer with a 500: shapes that don't match the data, odd types.
    ``binary``: the bytes after the header of a binary-tensor request."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise BadRequest(400, "a V2 request needs a non-empty 'inputs' list of tensors")
    _check_outputs(body.get("outputs"))
    offset = 0
    for i, tensor in enumerate(body["inputs"]):
        where = f"inputs[{i}]"
        if not isinstance(tensor, dict):
            raise BadRequest(400, f"{where} must be an object with name, shape, datatype, data")
        size = _binary_size(tensor, where, binary is not None)
        needed = (
            ("name", "shape", "datatype")
            if size is not None
            else ("name", "shape", "datatype", "data")
        )
        missing = [k for k in needed if k not in tensor]
        if missing:
            raise BadRequest(400, f"{where} is missing {missing}")
        if not isinstance(tensor["name"], str) or not tensor["name"]:
            raise BadRequest(
                400, f"{where}: name must be a non-empty string, got {_short(tensor['name'])}"
            )
        where = f"input '{tensor['name']}'"
        shape, data, datatype = tensor["shape"], tensor.get("data"), tensor["datatype"]
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise BadRequest(
                400,
                f"{where}: shape must be a list of non-negative integers, got {_short(shape)}",
            )
        if len(shape) != 1:
            raise BadRequest(
                400, f"{where}: shape must be 1-D [rows] (one tensor per feature), got {shape}"
            )
        if not isinstance(datatype, str) or datatype not in V2_DATATYPES:
            raise BadRequest(
                400,
                f"{where}: unknown datatype {_short(datatype)}; use one of {sorted(V2_DATATYPES)}",
            )
        if size is not None:
            chunk = binary[offset : offset + size]
            if len(chunk) < size:
                raise BadRequest(
                    400,
                    f"{where}: binary_data_size is {size:,} but only {len(chunk):,} bytes are "
                    "left in the body",
                )
            offset += size
            _check_binary(where, datatype, shape, chunk)
            continue
        if not isinstance(data, list):
            raise BadRequest(400, f"{where}: data must be a list of values, got {_short(data)}")
        flat = _flatten(data)
        if len(flat) != math.prod(shape):
            raise BadRequest(
                400, f"{where}: shape {shape} says {math.prod(shape)} values, data has {len(flat)}"
            )
        if datatype == "BYTES":
            if not all(isinstance(v, str) for v in flat):
                raise BadRequest(400, f"{where}: BYTES data must be strings")
        elif not all(
            v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in flat
        ):
            raise BadRequest(400, f"{where}: {datatype} data must be numbers")
        elif any(v is None for v in flat) and not datatype.startswith("FP"):
            raise BadRequest(
                400, f"{where}: null is only allowed in FP tensors (as a missing reading)"
            )
        elif datatype in INT_RANGES:
            low, high = INT_RANGES[datatype]
            wrong = [v for v in flat if not _whole(v) or not low <= v <= high]
            if wrong:
                raise BadRequest(
                    400,
                    f"{where}: {datatype} data must be whole numbers from {low:,} to {high:,}, "
                    f"got {wrong[0]!r}",
                )

    if binary is not None and offset != len(binary):
        raise BadRequest(
            400,
            f"the body has {len(binary) - offset:,} bytes after the tensors its header describes",
        )


def _check_outputs(outputs: Any) -> None:
    if outputs is None:
        return
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise BadRequest(400, "'outputs' must be a list of objects with a name")
    unknown = [o["name"] for o in outputs if o["name"] not in OUTPUTS]
    if unknown:
        raise BadRequest(
            400,
            f"unknown output(s) {unknown}: this model answers 'probability' and 'label'",
        )


def _binary_size(tensor: dict, where: str, extension: bool) -> int | None:
    """The input's ``parameters.binary_data_size``, or None when its data is JSON."""
    parameters = tensor.get("parameters")
    if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
        return None
    size = parameters["binary_data_size"]
    if not extension:
        raise BadRequest(
            400,
            f"{where}: binary_data_size needs the binary tensor extension: send the header's "
            "length in inference-header-content-length and the raw bytes after it",
        )
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadRequest(
            400, f"{where}: binary_data_size must be a number of bytes, got {_short(size)}"
        )
    return size


def _check_binary(where: str, datatype: str, shape: list, chunk: bytes) -> None:
    """An input's raw bytes hold exactly ``shape`` elements of ``datatype``."""
    count = math.prod(shape)
    if datatype != "BYTES":
        expected = count * ITEMSIZE[datatype]
        if len(chunk) != expected:
            raise BadRequest(
                400,
                f"{where}: shape {shape} of {datatype} is {expected:,} bytes, "
                f"binary_data_size says {len(chunk):,}",
            )
        return
    # BYTES: each element is a 4-byte little-endian length, then that many bytes
    found, at = 0, 0
    while at < len(chunk):
        if at + 4 > len(chunk):
            raise BadRequest(400, f"{where}: BYTES data ends inside an element's 4-byte length")
        length = int.from_bytes(chunk[at : at + 4], "little")
        value = chunk[at + 4 : at + 4 + length]
        if len(value) < length:
            raise BadRequest(400, f"{where}: BYTES element {found} is cut short")
        try:
            value.decode()
        except UnicodeDecodeError:
            raise BadRequest(400, f"{where}: BYTES element {found} is not UTF-8 text") from None
        found, at = found + 1, at + 4 + length
    if found != count:
        raise BadRequest(400, f"{where}: shape {shape} says {count} values, data has {found}")


def _whole(value: int | float) -> bool:
    return isinstance(value, int) or value.is_integer()  # 3.0 is whole; 1.5, inf and NaN are not


def _short(value: Any, limit: int = 60) -> str:
    """A value for an error message, cut short: a fuzzed request can hold megabytes."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _flatten(data: Any) -> list:
    if isinstance(data, list):
        out = []
        for item in data:
            out.extend(_flatten(item)) if isinstance(item, list) else out.append(item)
        return out
    return [data]


def _check_size(n: int, limits: Limits) -> None:
    if n == 0:
        raise BadRequest(400, "the batch is empty: send at least one row")
    if n > limits.max_batch:
        raise BadRequest(
            413,
            f"the batch has {n} rows; this server accepts at most {limits.max_batch} per request",
        )
