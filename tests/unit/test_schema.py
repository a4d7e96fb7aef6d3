"""The request contract, without a server: what is accepted, and what each mistake says
(reference.serve.schema, and the V2 body's structure in reference.serve.tensors)."""

from __future__ import annotations

import numpy as np
import pytest

from reference.features import FEATURES
from reference.serve.schema import BadRequest, Limits, parse_instances, parse_tensors, to_frame
from reference.serve.tensors import check_v2_structure, split_binary_request

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


# Odd values a client sends: each must get the same answer from the column-wise fast paths as
# from the value-by-value checks (the fast paths only ever accept; a mistake is always named by
# the checks, so the message cannot change).
ODD = [None, True, 0, -1, 5, 24, 3.0, 3.5, float("nan"), float("inf"), "", "UA", "5", 10**400, []]


def _answer(parse, *args):
    try:
        return "ok", parse(*args)
    except BadRequest as e:
        return e.status, e.message
    except Exception as e:  # what the checks raise beyond BadRequest, the fast path must too
        return type(e).__name__, str(e)


def _same(a, b) -> bool:
    """Equal answers, NaN equal to NaN, and the same types (3 is not 3.0 in the payload log)."""
    if a[0] != "ok" or b[0] != "ok":
        return a == b
    return a[1].keys() == b[1].keys() and all(
        len(x) == len(y)
        and all(
            type(u) is type(v) and (u == v or u != u and v != v) for u, v in zip(x, y, strict=True)
        )
        for x, y in zip(a[1].values(), b[1].values(), strict=True)
    )


@pytest.mark.parametrize("field", FEATURES)
def test_v1_column_checks_answer_as_the_row_checks(field, monkeypatch):
    import reference.serve.schema as schema

    more = [ROW] * 8  # enough rows for the column-wise checks (a few take the row checks)
    cases = [[ROW, ROW | {field: value}, *more] for value in ODD]
    cases += [
        [ROW, {k: ROW[k] for k in reversed(FEATURES)}, *more],  # another key order: the same
        [ROW, {k: v for k, v in ROW.items() if k != field}, *more],  # a field missing
        [ROW, ROW | {"extra": 1}, *more],
        [ROW, [ROW[f] for f in FEATURES], *more],  # a row that is no object
    ]
    assert schema._valid_columns(cases[-4]) is not None  # the fast path takes a good batch
    fast = [_answer(parse_instances, rows, Limits()) for rows in cases]
    monkeypatch.setattr(schema, "_valid_columns", lambda records: None)
    slow = [_answer(parse_instances, rows, Limits()) for rows in cases]
    assert all(_same(a, b) for a, b in zip(fast, slow, strict=True)), [
        (a, b) for a, b in zip(fast, slow, strict=True) if not _same(a, b)
    ]
    assert fast[-4][0] == "ok" and fast[-4][1] == slow[-4][1]


def _good_tensors() -> dict:
    return {
        f: np.array(
            [ROW[f] if ROW[f] is not None else np.nan] * 10,  # enough rows for the fast path
            dtype=object if isinstance(ROW[f], str) else float,
        )
        for f in FEATURES
    }


def _tensors(field, array) -> dict:
    return _good_tensors() | {field: np.resize(array, 10)}


V2_ODD = [
    np.array([1.0, np.nan, 3.0]),
    np.array([1.0, np.inf, 3.0]),
    np.array([5.0, 6.0, 7.0]),  # whole floats for a calendar field
    np.array([5.0, 5.5, 7.0]),
    np.array([1, 99, 3], dtype=np.int64),
    np.array([1, 2, 3], dtype=np.uint8),
    np.array([1, 2, 3], dtype=np.float32),
    np.array([True, False, True]),
    np.array([b"UA", b"DL", b"AA"], dtype=object),
    np.array([b"UA", b"", b"AA"], dtype=object),
    np.array([b"UA", b"\xff", b"AA"], dtype=object),
    np.array(["UA", "DL", "AA"], dtype=object),
    np.array(["UA", 3, "AA"], dtype=object),
    np.array(["UA", "DL", "AA"]),  # numpy text, not objects
]


@pytest.mark.parametrize("field", FEATURES)
def test_v2_column_checks_answer_as_the_value_checks(field, monkeypatch):
    import reference.serve.schema as schema

    assert schema._valid_tensor(field, _good_tensors()[field]) is not None  # the fast path
    fast = [_answer(parse_tensors, _tensors(field, a), Limits()) for a in V2_ODD]
    monkeypatch.setattr(schema, "_valid_tensor", lambda field, array: None)
    slow = [_answer(parse_tensors, _tensors(field, a), Limits()) for a in V2_ODD]
    assert all(_same(a, b) for a, b in zip(fast, slow, strict=True)), [
        (a, b) for a, b in zip(fast, slow, strict=True) if not _same(a, b)
    ]


@pytest.mark.parametrize(
    ("datatype", "data", "words"),
    [
        ("INT64", [1, 2, 3], None),
        ("INT64", [[1, 2], [3]], None),  # nested lists count flattened
        ("INT64", [1.0, 2, 3], None),  # a whole float is a whole number
        ("INT64", [1, 2.5, 3], "whole numbers from -9,223,372,036,854,775,808 to"),
        ("INT8", [1, 200, 3], "from -128 to 127, got 200"),
        ("UINT8", [1, -1, 3], "got -1"),
        ("INT64", [1, None, 3], "null is only allowed in FP tensors"),
        ("FP64", [1.5, None, 3], None),
        ("FP32", [1, True, 3], "FP32 data must be numbers"),
        ("INT64", [1, "2", 3], "INT64 data must be numbers"),
        ("BYTES", ["a", "b", "c"], None),
        ("BYTES", ["a", 1, "c"], "BYTES data must be strings"),
        ("INT64", [[1], 2, [True]], "INT64 data must be numbers"),
    ],
)
def test_v2_json_tensor_values(datatype, data, words):
    body = {"inputs": [{"name": "x", "shape": [3], "datatype": datatype, "data": data}]}
    if words is None:
        check_v2_structure(body)
        return
    with pytest.raises(BadRequest) as e:
        check_v2_structure(body)
    assert e.value.status == 400 and words in e.value.message, e.value.message


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"\x02\x00\x00\x00UA\x02\x00", "ends inside an element's 4-byte length"),
        (b"\x02\x00\x00\x00UA\x05\x00\x00\x00DL", "BYTES element 1 is cut short"),
        (b"\x02\x00\x00\x00UA\x02\x00\x00\x00\xff\xfe", "BYTES element 1 is not UTF-8 text"),
        (b"\x02\x00\x00\x00UA", "shape [2] says 2 values, data has 1"),
        (b"\x02\x00\x00\x00UA\x02\x00\x00\x00\xc3\xa9", None),  # "é": UTF-8, not ASCII
        (b"\x02\x00\x00\x00UA" + (200).to_bytes(4, "little") + b"x" * 200, None),  # length > 127
    ],
)
def test_binary_bytes_elements_are_counted_and_must_be_text(raw, words):
    header = {
        "inputs": [
            {
                "name": "carrier",
                "shape": [2],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(raw)},
            }
        ]
    }
    body, length = _pack(header, raw)
    if words is None:
        assert split_binary_request(body, length) == header
        return
    with pytest.raises(BadRequest) as e:
        split_binary_request(body, length)
    assert e.value.status == 400 and words in e.value.message, e.value.message
