"""V2 as the Open Inference Protocol defines it, spoken by NVIDIA's tritonclient and by hand.

The real model server (the session's champion, one server for this module): its model metadata
names every input and output, tritonclient's JSON and binary-tensor modes get the same answers
as our own V1 client, and a binary request whose sizes do not add up gets a 4xx that says which
tensor is wrong, while the server keeps serving.
"""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

from reference.features import FEATURES
from reference.serve import client

tritonclient_http = pytest.importorskip(
    "tritonclient.http", reason="tritonclient[http] is a test dependency: make setup installs it"
)

pytestmark = pytest.mark.integration
NAME = "flight-delay"


@pytest.fixture(scope="module")
def server(champion_server):
    return champion_server


@pytest.fixture(scope="module")
def rows(champion_rows):
    return champion_rows


@pytest.fixture(scope="module")
def expected(server, rows):
    return client.predict(server.url, rows, NAME, "v1")


def _datatype(values: np.ndarray) -> str:
    if values.dtype == object or values.dtype.kind in "OUS":
        return "BYTES"
    return "INT64" if values.dtype.kind in "iu" else "FP64"


def _tensor(rows, feature: str) -> tuple[np.ndarray, str]:
    values = rows[feature].to_numpy()
    datatype = _datatype(values)
    if datatype == "BYTES":
        return np.array([str(v).encode() for v in values], dtype=np.object_), datatype
    return values.astype(np.int64 if datatype == "INT64" else np.float64), datatype


def test_model_metadata_names_every_input_and_output(server):
    meta = json.loads(urllib.request.urlopen(f"{server.url}/v2/models/{NAME}", timeout=5).read())
    assert [i["name"] for i in meta["inputs"]] == list(FEATURES)
    kinds = {i["name"]: i["datatype"] for i in meta["inputs"]}
    assert kinds["carrier"] == "BYTES" and kinds["hour"] == "INT64" and kinds["temp"] == "FP64"
    assert all(i["shape"] == [-1] for i in meta["inputs"])
    assert [(o["name"], o["datatype"]) for o in meta["outputs"]] == [
        ("probability", "FP64"),
        ("label", "INT64"),
    ]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_gets_the_same_answers_as_our_client(server, rows, expected, binary):
    triton = tritonclient_http.InferenceServerClient(url=server.url.removeprefix("http://"))
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready(NAME)
    meta = triton.get_model_metadata(NAME)
    inputs = []
    for spec in meta["inputs"]:  # the contract, discovered from the server
        values, datatype = _tensor(rows, spec["name"])
        assert datatype == spec["datatype"], spec
        tensor = tritonclient_http.InferInput(spec["name"], [len(rows)], datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    assert rows[["temp", "wind_dir", "pressure"]].isna().any().any(), "no missing reading to send"
    outputs = [
        tritonclient_http.InferRequestedOutput(o["name"], binary_data=binary)
        for o in meta["outputs"]
    ]
    result = triton.infer(NAME, inputs, outputs=outputs)
    np.testing.assert_allclose(result.as_numpy("probability"), expected["probability"], atol=1e-6)
    np.testing.assert_array_equal(result.as_numpy("label"), expected["label"].to_numpy())
    raw = result.get_response()
    if binary:  # the answer's tensors came back as raw bytes, not JSON lists
        assert all("data" not in o for o in raw["outputs"])
        assert all(o["parameters"]["binary_data_size"] > 0 for o in raw["outputs"])
    else:
        assert all(isinstance(o["data"], list) for o in raw["outputs"])


def _binary_request(rows) -> tuple[dict, list[bytes]]:
    """A binary-tensor request by hand: the header, and each input's raw bytes."""
    header, chunks = {"inputs": []}, []
    for feature in FEATURES:
        values, datatype = _tensor(rows, feature)
        if datatype == "BYTES":
            raw = b"".join(len(v).to_bytes(4, "little") + v for v in values)
        else:
            raw = values.tobytes()
        header["inputs"].append(
            {
                "name": feature,
                "shape": [len(rows)],
                "datatype": datatype,
                "parameters": {"binary_data_size": len(raw)},
            }
        )
        chunks.append(raw)
    return header, chunks


def _send(server, header: dict, chunks: list[bytes], length: str | None = None, **headers):
    head = json.dumps(header).encode()
    extra = {"Inference-Header-Content-Length": length or str(len(head)), **headers}
    return client.request(
        f"{server.url}/v2/models/{NAME}/infer",
        head + b"".join(chunks),
        "application/octet-stream",
        headers=extra,
    )


def _spoil(case: str, header: dict, chunks: list[bytes]):
    first = header["inputs"]
    if case == "size":  # distance: one FP64 row is 8 bytes, say 4 and send 4
        i = FEATURES.index("distance")
        first[i]["parameters"]["binary_data_size"] = 4
        chunks[i] = chunks[i][:4]
    elif case == "short":
        chunks[-1] = chunks[-1][:-3]
    elif case == "extra":
        chunks.append(b"\x00" * 5)
    elif case == "utf8":
        bad = b"\xff\xfe"
        chunks[0] = len(bad).to_bytes(4, "little") + bad
        first[0]["parameters"]["binary_data_size"] = len(chunks[0])
    elif case == "output":
        header["outputs"] = [{"name": "score"}]
    return header, chunks


BAD_BINARY = [
    ("size", ["input 'distance'", "is 8 bytes", "says 4"]),
    ("short", ["input 'visib'", "only", "left in the body"]),
    ("extra", ["5 bytes after the tensors"]),
    ("utf8", ["input 'carrier'", "not UTF-8"]),
    ("output", ["unknown output", "'score'", "'probability' and 'label'"]),
]


@pytest.mark.fault
@pytest.mark.parametrize(("case", "words"), BAD_BINARY, ids=[c for c, _ in BAD_BINARY])
def test_a_binary_request_that_does_not_add_up_gets_a_clear_400(server, rows, case, words):
    header, chunks = _spoil(case, *_binary_request(rows.head(1)))
    status, answer = _send(server, header, chunks)
    assert status == 400, answer
    for word in words:
        assert word in answer["error"], answer
    assert client.predict(server.url, rows.head(2), NAME)["probability"].between(0, 1).all()


@pytest.mark.fault
def test_the_binary_header_length_is_checked(server, rows):
    header, chunks = _binary_request(rows.head(1))
    status, answer = _send(server, header, chunks, length="lots")
    assert (status, "must be a number of bytes" in answer["error"]) == (400, True), answer
    status, answer = _send(server, header, chunks, length="999999")
    assert (status, "but the body has" in answer["error"]) == (400, True), answer


@pytest.mark.fault
def test_binary_sizes_without_the_extension_header_are_refused(server, rows):
    header, _ = _binary_request(rows.head(1))
    status, answer = client.request(f"{server.url}/v2/models/{NAME}/infer", header)
    assert status == 400 and "needs the binary tensor extension" in answer["error"], answer


@pytest.mark.fault
def test_a_compressed_body_is_refused_with_a_415(server, rows):
    body = {"inputs": client.v2_inputs(rows.head(1))}
    status, answer = client.request(
        f"{server.url}/v2/models/{NAME}/infer", body, headers={"Content-Encoding": "gzip"}
    )
    assert status == 415 and "send the body uncompressed" in answer["error"], answer


def test_a_correct_binary_request_by_hand_is_answered(server, rows, expected):
    status, answer = _send(server, *_binary_request(rows))
    assert status == 200, answer
    probability = next(o for o in answer["outputs"] if o["name"] == "probability")
    np.testing.assert_allclose(probability["data"], expected["probability"], atol=1e-6)
