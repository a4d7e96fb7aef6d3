"""The serving fast paths give exactly what the plain ones gave: the score histogram counted per
bucket with numpy, the input counts, the payload log's lines, and the V2 JSON answer."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("kserve")


def test_the_score_histogram_counted_with_numpy_equals_one_observe_per_row():
    from prometheus_client import CollectorRegistry

    from reference.serve.telemetry import Telemetry

    rng = np.random.default_rng(3)
    proba = np.concatenate([rng.random(500), [0.0, 0.05, 0.1, 1.0, 0.35]])  # bounds included
    label = (proba >= 0.5).astype(np.int64)
    fast, slow = Telemetry.create(CollectorRegistry()), Telemetry.create(CollectorRegistry())
    fast.observe("1", proba, label, {}, {}, {})
    for p in proba:
        slow.score.labels("1").observe(float(p))

    def samples(t):
        return {
            (s.name, tuple(sorted(s.labels.items()))): round(s.value, 9)
            for m in t.score.collect()
            for s in m.samples
            if not s.name.endswith("_created")
        }

    assert samples(fast) == samples(slow)


def test_the_input_counts_of_a_few_rows_equal_those_of_many():
    from reference.features import CATEGORICAL, FEATURES, NUMERIC, RANGES
    from reference.serve.predictor import _input_counts

    col, (low, high) = next(iter(RANGES.items()))
    few = {f: [1.0, None, float("nan")] for f in FEATURES}
    few[col] = [low - 1, None, high + 1]  # two out of range, one missing
    many = {f: v * 6 for f, v in few.items()}  # 18 rows: the numpy path
    missing, _, out_of_range = _input_counts(few, {})
    missing6, _, out_of_range6 = _input_counts(many, {})
    assert out_of_range[col] == 2 and out_of_range6[col] == 12
    assert {c: 6 * n for c, n in out_of_range.items()} == out_of_range6
    assert {c: 6 * n for c, n in missing.items()} == missing6
    assert set(missing) == {*CATEGORICAL, *NUMERIC}


def test_the_payload_lines_are_one_orjson_line_per_record(tmp_path):
    import orjson

    from reference.serve.payload_log import PayloadLog, _json_lines

    # a client's strings may hold what separates records in the one orjson array
    tricky = ['},{"request_id":"x"}', 'a\\"},{"request_id":', "\n", "é", ""]
    records = [
        {"request_id": rid, "row": i, "features": {"carrier": rid}, "probability": 0.5, "label": 1}
        for i, rid in enumerate(tricky)
    ]
    assert _json_lines(records) == b"".join(orjson.dumps(r) + b"\n" for r in records)
    assert _json_lines([]) == b""
    log = PayloadLog(tmp_path)
    columns = {"carrier": tricky, "temp": [1.5, None, 3, -0.0, 1e-7]}
    proba = np.array([0.1234564, 0.5, 1e-7, 0.9999999, 0.25])
    assert log.append('id "1"', "3", columns, proba, (proba >= 0.5).astype(np.int64))
    log.close()
    lines = log.path.read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == [
        {
            "request_id": 'id "1"',
            "row": i,
            "time": orjson.loads(lines[i])["time"],
            "model_version": "3",
            "features": {"carrier": c, "temp": t},
            "probability": round(p, 6),
            "label": int(p >= 0.5),
        }
        for i, (c, t, p) in enumerate(zip(tricky, columns["temp"], proba.tolist(), strict=True))
    ]


def test_the_v2_json_answer_is_the_bytes_kserve_and_fastapi_write():
    import orjson
    from fastapi.encoders import jsonable_encoder
    from kserve import InferOutput, InferResponse
    from kserve.protocol.rest.v2_datamodels import InferenceResponse

    from reference.serve.predictor import _v2_json_answer

    proba = np.array([0.1234564, 0.5, 1e-7, 0.9999999, 0.25, 0.0])
    label = (proba >= 0.5).astype(np.int64)
    theirs, _ = InferResponse(
        response_id="r1",
        model_name="flight-delay",
        model_version="3",
        infer_outputs=[
            InferOutput("probability", [len(proba)], "FP64", proba.round(6)),
            InferOutput("label", [len(label)], "INT64", label),
        ],
    ).to_rest()
    # what KServe's V2 route and FastAPI (ORJSONResponse) make of it
    expected = orjson.dumps(jsonable_encoder(InferenceResponse.model_validate(theirs)))
    assert _v2_json_answer("r1", "flight-delay", "3", proba, label) == expected
