"""The V2 body's structure, checked before KServe reads it: JSON tensors, and the binary-tensor
extension (raw tensor bytes after a JSON header of ``inference-header-content-length`` bytes).

KServe answers a V2 body whose shapes do not match its data with a 500, and reads binary sizes
that do not add up past the end: these pure functions raise ``BadRequest`` (see
``reference.serve.schema``) that says what is wrong instead. The guard calls them on the raw
body; ``schema.parse_tensors`` then checks the values of each feature.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from reference.serve.schema import BadRequest

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
_NULLABLE_NUMBER_TYPES = {int, float, type(None)}
_LENGTH = struct.Struct("<I")  # a BYTES element's length, in the binary-tensor extension


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
        # the checks below in C-level passes over the types first; the value-by-value ones
        # only where those cannot tell (they say what is wrong)
        kinds = set(map(type, data))
        if any(issubclass(k, list) for k in kinds):
            flat = _flatten(data)
            kinds = set(map(type, flat))
        else:
            flat = data
        if len(flat) != math.prod(shape):
            raise BadRequest(
                400, f"{where}: shape {shape} says {math.prod(shape)} values, data has {len(flat)}"
            )
        if datatype == "BYTES":
            if kinds != {str} and not all(isinstance(v, str) for v in flat):
                raise BadRequest(400, f"{where}: BYTES data must be strings")
        elif not kinds <= _NULLABLE_NUMBER_TYPES and not all(
            v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in flat
        ):
            raise BadRequest(400, f"{where}: {datatype} data must be numbers")
        elif type(None) in kinds and not datatype.startswith("FP"):
            raise BadRequest(
                400, f"{where}: null is only allowed in FP tensors (as a missing reading)"
            )
        elif datatype in INT_RANGES:
            low, high = INT_RANGES[datatype]
            if kinds == {int} and low <= min(flat) and max(flat) <= high:
                continue
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
    # BYTES: each element is a 4-byte little-endian length, then that many bytes. ASCII bytes
    # throughout (codes, and lengths under 128) are UTF-8 text whichever way they are cut
    text = chunk.isascii()
    found, at, end = 0, 0, len(chunk)
    while at < end:
        if at + 4 > end:
            raise BadRequest(400, f"{where}: BYTES data ends inside an element's 4-byte length")
        (length,) = _LENGTH.unpack_from(chunk, at)
        if at + 4 + length > end:
            raise BadRequest(400, f"{where}: BYTES element {found} is cut short")
        if not text:
            try:
                chunk[at + 4 : at + 4 + length].decode()
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
