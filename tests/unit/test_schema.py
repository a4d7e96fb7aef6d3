"""The request contract, without a server: what is accepted, and what each mistake says."""

from __future__ import annotations

import numpy as np
import pytest

from reference.features import FEATURES
from reference.serve.schema import (
    BadRequest,
    Limits,
    check_v2_structure,
    parse_instances,
    parse_tensors,
    split_binary_request,
    to_frame,
)

ROW = {
    "carrier": "UA",
    "origin": "EWR",
    "dest": "IAH",
    "hour": 5,
    "weekday": 1,
    "distance": 1400,
    "month": 1,
    "temp": 39.0,
    "dewp": 28.0,
    "humid": 64.4,
    "wind_dir": 260,
    "wind_speed": 12.7,
    "precip": 0,
    "pressure": None,
    "visib": 10,
}


def test_a_good_row_becomes_columns_and_a_typed_frame():
    columns = parse_instances([ROW, ROW | {"carrier": "ZZ"}], Limits())
    assert list(columns) == list(FEATURES) and columns["carrier"] == ["UA", "ZZ"]
    frame = to_frame(columns)
    assert frame["hour"].dtype == "int64" and np.isnan(frame.loc[0, "pressure"])


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"temperature": 1.0}, 400, ["unknown field", "did you mean 'temp'"]),
        ({"hour": 24}, 400, ["hour", "0 to 23"]),
        ({"distance": "far"}, 400, ["distance", "number"]),
        ({"carrier": None}, 400, ["carrier", "required"]),
        ({"temp": float("inf")}, 400, ["temp", "finite"]),
    ],
)
def test_mistakes_name_the_field_and_the_rule(change, status, words):
    with pytest.raises(BadRequest) as err:
        parse_instances([ROW | change], Limits())
    assert err.value.status == status
    assert all(w in err.value.message for w in words), err.value.message


def test_batch_limits():
    with pytest.raises(BadRequest, match="empty"):
        parse_instances([], Limits())
    with pytest.raises(BadRequest) as err:
        parse_instances([ROW] * 3, Limits(max_batch=2))
    assert err.value.status == 413


def test_v2_tensors_and_their_shapes():
    tensors = {
        f: np.array(
            [ROW[f] if ROW[f] is not None else np.nan],
            dtype=object if isinstance(ROW[f], str) else float,
        )
        for f in FEATURES
    }
    assert parse_tensors(tensors, Limits())["pressure"] == [None]  # NaN in an FP tensor: missing
    body = {"inputs": [{"name": "temp", "shape": [3], "datatype": "FP32", "data": [1.0]}]}
    with pytest.raises(BadRequest, match=r"shape \[3\] says 3 values, data has 1"):
        check_v2_structure(body)


def _binary(rows: int = 2) -> tuple[dict, bytes]:
    """A binary-tensor request: one BYTES and one FP64 tensor, as tritonclient lays them out."""
    codes = b"".join(len(c).to_bytes(4, "little") + c for c in [b"UA", b"DL"][:rows])
    distance = np.arange(rows, dtype=np.float64).tobytes()
    header = {
        "inputs": [
            {"name": "carrier", "shape": [rows], "datatype": "BYTES",
             "parameters": {"binary_data_size": len(codes)}},
            {"name": "distance", "shape": [rows], "datatype": "FP64",
             "parameters": {"binary_data_size": len(distance)}},
        ]
    }  # fmt: skip
    return header, codes + distance


def _pack(header: dict, raw: bytes) -> tuple[bytes, str]:
    import json

    head = json.dumps(header).encode()
    return head + raw, str(len(head))


def test_a_binary_request_is_split_into_its_header():
    header, raw = _binary()
    body, length = _pack(header, raw)
    assert split_binary_request(body, length) == header


@pytest.mark.parametrize(
    ("spoil", "words"),
    [
        (lambda h, r: (h, r + b"x"), "1 bytes after the tensors"),
        (lambda h, r: (h, r[:-1]), "only 15 bytes are left"),
        (
            lambda h, r: ({"inputs": [h["inputs"][0], {**h["inputs"][1], "shape": [3]}]}, r),
            "shape [3] of FP64 is 24 bytes, binary_data_size says 16",
        ),
        (
            lambda h, r: ({"inputs": [{**h["inputs"][0], "shape": [3]}, h["inputs"][1]]}, r),
            "shape [3] says 3 values, data has 2",
        ),
        (lambda h, r: ({**h, "outputs": [{"name": "score"}]}, r), "unknown output(s) ['score']"),
    ],
)
def test_a_binary_request_that_does_not_add_up_is_refused(spoil, words):
    body, length = _pack(*spoil(*_binary()))
    with pytest.raises(BadRequest) as e:
        split_binary_request(body, length)
    assert e.value.status == 400 and words in e.value.message


@pytest.mark.parametrize(
    ("length", "words"), [("many", "a number of bytes"), ("9999", "the body has")]
)
def test_the_header_length_must_fit_the_body(length, words):
    body, _ = _pack(*_binary())
    with pytest.raises(BadRequest, match=words):
        split_binary_request(body, length)


def test_binary_sizes_in_a_json_request_are_refused():
    header, _ = _binary()
    with pytest.raises(BadRequest, match="needs the binary tensor extension"):
        check_v2_structure(header)
