"""The real KServe ModelServer, as a process on a free loopback port, serving a registered champion.

The labs' champion checkpoint (one real pipeline run per test session, copied) registers the
champion; the server loads it by registry URI. Every malformed request must get a 4xx that names the problem, and the server
must keep serving after each one.
"""

from __future__ import annotations

import json
import socket
import urllib.request

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from reference import registry
from reference.model import load_bundle
from reference.serve import client
from reference.serve.payload_log import read_payload_log

pytestmark = pytest.mark.integration
NAME = "flight-delay"


@pytest.fixture(scope="module")
def settings(champion_settings):
    return champion_settings


@pytest.fixture(scope="module")
def server(champion_server):
    return champion_server


@pytest.fixture(scope="module")
def rows(champion_rows):
    return champion_rows


def _v1(server):
    return f"{server.url}/v1/models/{NAME}:predict"


def _v2(server):
    return f"{server.url}/v2/models/{NAME}/infer"


def _healthy(server) -> bool:
    return client.get_status(f"{server.url}/v2/models/{NAME}/ready") == 200


def _metrics(server) -> dict:
    text = urllib.request.urlopen(f"{server.url}/metrics", timeout=5).read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_listens_on_loopback_only(server):
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    others = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {
        "127.0.0.1"
    }
    for address in others:
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=2).close()


def test_v1_and_v2_agree_and_equal_in_process_predictions(settings, server, rows, tmp_path):
    champion = registry.version_by_alias(settings, registry.CHAMPION)
    v1 = client.predict(server.url, rows, NAME, "v1")
    v2 = client.predict(server.url, rows, NAME, "v2")
    assert set(v1["model_version"]) == {str(champion.version)}
    assert set(v2["model_version"]) == {str(champion.version)}
    np.testing.assert_allclose(v1["probability"], v2["probability"], atol=1e-6)
    bundle = load_bundle(registry.download_bundle(settings, str(champion.version), tmp_path))
    np.testing.assert_allclose(v1["probability"], bundle.predict_proba(rows), atol=1e-6)
    assert ((v1["probability"] >= 0.5).astype(int) == v1["label"]).all()


def test_a_v2_json_answer_says_its_content_type_and_length(server, rows):
    # the predictor encodes it; KServe sends those bytes bare and the guard names them
    body = json.dumps({"inputs": client.v2_inputs(rows.head(3))}).encode()
    req = urllib.request.Request(
        _v2(server), data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
        assert resp.headers["content-type"] == "application/json"
        assert int(resp.headers["content-length"]) == len(raw)
        assert "transfer-encoding" not in resp.headers
    answer = json.loads(raw)
    assert [(o["name"], o["shape"]) for o in answer["outputs"]] == [
        ("probability", [3]),
        ("label", [3]),
    ]


@pytest.mark.parametrize("ctype", ["application/json; charset=utf-8", "Application/JSON", ""])
def test_v1_json_under_another_spelling_of_its_content_type_is_answered(server, rows, ctype):
    # KServe parses V1 only under exactly "application/json"; the guard says that to it
    body = json.dumps({"instances": client.instances(rows.head(2))}).encode()
    status, answer = client.request(_v1(server), body, ctype)
    assert status == 200 and len(answer["predictions"]) == 2, answer


def _instance(rows, **changes):
    item = client.instances(rows.head(1))[0]
    item.update(changes)
    return item


BAD = [
    # (case, body or raw bytes, content type, V1 or V2, status, words the message must contain)
    ("not JSON", b"{not json", "application/json", "v1", 400, ["not valid JSON"]),
    (
        "NaN literal",
        b'{"instances": [{"temp": NaN}]}',
        "application/json",
        "v1",
        400,
        ["not valid JSON"],
    ),
    (
        "wrong content type",
        b"carrier=UA",
        "text/plain",
        "v1",
        415,
        ["text/plain", "application/json"],
    ),
    ("no instances", {"rows": []}, "application/json", "v1", 400, ["no 'instances'"]),
    ("V2 body on V1", {"inputs": []}, "application/json", "v1", 400, ["V2 protocol"]),
    (
        "instances not a list",
        {"instances": {"carrier": "UA"}},
        "application/json",
        "v1",
        400,
        ["must be a list"],
    ),
    ("empty batch", {"instances": []}, "application/json", "v1", 400, ["empty"]),
    (
        "row not an object",
        {"instances": [["UA", "EWR"]]},
        "application/json",
        "v1",
        400,
        ["instances[0]", "object"],
    ),
    ("missing field", "drop:temp", "application/json", "v1", 400, ["missing field", "temp"]),
    (
        "renamed field",
        "rename:temp:temperature",
        "application/json",
        "v1",
        400,
        ["unknown field", "temperature", "did you mean 'temp'"],
    ),
    (
        "string for a number",
        "set:distance:far",
        "application/json",
        "v1",
        400,
        ["distance", "must be a number"],
    ),
    (
        "bool for a number",
        "set:temp:true",
        "application/json",
        "v1",
        400,
        ["temp", "must be a number"],
    ),
    ("hour out of range", "set:hour:25", "application/json", "v1", 400, ["hour", "0 to 23"]),
    (
        "fractional weekday",
        "set:weekday:2.5",
        "application/json",
        "v1",
        400,
        ["weekday", "integer"],
    ),
    (
        "null carrier",
        "set:carrier:None",
        "application/json",
        "v1",
        400,
        ["carrier", "null", "required"],
    ),
    ("number for a carrier", "set:carrier:7", "application/json", "v1", 400, ["carrier", "string"]),
    ("batch over the limit", "many:65", "application/json", "v1", 413, ["65 rows", "at most 64"]),
    ("V2 shape vs data", "v2:shape", "application/json", "v2", 400, ["shape [3]", "data has 1"]),
    ("V2 2-D tensor", "v2:2d", "application/json", "v2", 400, ["1-D"]),
    ("V2 missing input", "v2:drop", "application/json", "v2", 400, ["missing input", "temp"]),
    ("V2 unknown datatype", "v2:dtype", "application/json", "v2", 400, ["unknown datatype"]),
    ("V2 no inputs", {"inputs": []}, "application/json", "v2", 400, ["'inputs'"]),
    ("V2 strings in FP tensor", "v2:fpstr", "application/json", "v2", 400, ["must be numbers"]),
]


def _body(spec, rows):
    if not isinstance(spec, str):
        return spec
    kind, *args = spec.split(":")
    if kind == "drop":
        item = _instance(rows)
        del item[args[0]]
        return {"instances": [item]}
    if kind == "rename":
        item = _instance(rows)
        item[args[1]] = item.pop(args[0])
        return {"instances": [item]}
    if kind == "set":
        value = {"None": None, "true": True}.get(args[1], args[1])
        value = (
            json.loads(value)
            if isinstance(value, str) and value.replace(".", "").isdigit()
            else value
        )
        return {"instances": [_instance(rows, **{args[0]: value})]}
    if kind == "many":
        return {"instances": client.instances(rows.head(1)) * int(args[0])}
    inputs = client.v2_inputs(rows.head(1))
    if args[0] == "shape":
        inputs[0]["shape"] = [3]
    elif args[0] == "2d":
        inputs[0]["shape"], inputs[0]["data"] = [1, 1], [inputs[0]["data"]]
    elif args[0] == "drop":
        inputs = [i for i in inputs if i["name"] != "temp"]
    elif args[0] == "dtype":
        inputs[0]["datatype"] = "STRING"
    elif args[0] == "fpstr":
        temp = next(i for i in inputs if i["name"] == "temp")
        temp["data"] = ["warm"]
    return {"inputs": inputs}


@pytest.mark.fault
@pytest.mark.parametrize(
    ("case", "spec", "ctype", "protocol", "status", "words"), BAD, ids=[b[0] for b in BAD]
)
def test_bad_input_gets_a_clear_4xx_and_the_server_keeps_serving(
    server, rows, case, spec, ctype, protocol, status, words
):
    body = _body(spec, rows)
    url = _v1(server) if protocol == "v1" else _v2(server)
    got, answer = client.request(
        url, body if isinstance(body, bytes) else json.dumps(body).encode(), ctype
    )
    assert got == status, (case, answer)
    message = answer.get("error", "")
    for word in words:
        assert word in message, (case, message)
    assert _healthy(server)
    assert client.predict(server.url, rows.head(2), NAME)["probability"].between(0, 1).all()


@pytest.mark.fault
def test_an_oversized_body_is_refused_before_it_is_read(server):
    # the server answers from the Content-Length header alone, as a proxy would, and keeps serving
    import http.client

    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", f"/v1/models/{NAME}:predict")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(5 << 20))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413
    assert "limit" in json.loads(response.read())["error"]
    conn.close()
    assert _healthy(server)


def test_unseen_category_is_scored_and_counted(server, rows):
    before = _metrics(server).get(
        ("model_feature_unknown_category_total", (("feature", "carrier"),)), 0.0
    )
    status, answer = client.request(_v1(server), {"instances": [_instance(rows, carrier="ZZ")]})
    assert status == 200 and 0 <= answer["predictions"][0]["probability"] <= 1
    after = _metrics(server)[("model_feature_unknown_category_total", (("feature", "carrier"),))]
    assert after == before + 1


def test_metrics_describe_the_predictions_and_the_requests(settings, server, rows):
    version = str(registry.version_by_alias(settings, registry.CHAMPION).version)
    client.predict(server.url, rows, NAME)
    client.request(_v1(server), {"instances": []})
    m = _metrics(server)
    scored = m[("model_rows_total", (("model_version", version),))]
    positives = m.get(("model_predictions_total", (("label", "1"), ("model_version", version))), 0)
    negatives = m[("model_predictions_total", (("label", "0"), ("model_version", version)))]
    assert scored == positives + negatives >= len(rows)
    assert m[("model_prediction_score_count", (("model_version", version),))] == scored
    assert (
        m[
            (
                "model_requests_total",
                (("code", "200"), ("model_version", version), ("protocol", "v1")),
            )
        ]
        >= 1
    )
    assert (
        m[
            (
                "model_requests_total",
                (("code", "400"), ("model_version", version), ("protocol", "v1")),
            )
        ]
        >= 1
    )
    assert (
        m[("model_request_latency_seconds_count", (("model_version", version), ("protocol", "v1")))]
        >= 2
    )


def test_payload_log_records_every_prediction_with_the_request_id(settings, server, rows):
    req = urllib.request.Request(
        _v1(server),
        data=json.dumps({"instances": client.instances(rows.head(3))}).encode(),
        headers={"Content-Type": "application/json", "x-request-id": "flight-batch-42"},
    )
    urllib.request.urlopen(req, timeout=10).read()
    log = read_payload_log(settings.workspace / "serving" / "payload")
    mine = log[log["request_id"] == "flight-batch-42"]
    assert list(mine["row"]) == [0, 1, 2]
    assert mine["carrier"].tolist() == rows.head(3)["carrier"].tolist()
    assert mine["probability"].between(0, 1).all()


@pytest.mark.fault
def test_sigterm_shuts_down_cleanly(settings):
    srv = client.start(settings, name=NAME)
    port = int(srv.url.rsplit(":", 1)[1])
    assert client.stop(srv) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.fault
def test_silent_failure_is_healthy_and_200_but_the_scores_collapse(settings, rows):
    srv = client.start(settings, name=NAME, args=["--fault", "constant"])
    try:
        out = client.predict(srv.url, rows, NAME)  # 200 OK
        assert _healthy(srv)
        assert client.get_status(f"{srv.url}/") == 200  # liveness: green
        assert out["probability"].nunique() == 1  # ... and garbage
        m = _metrics(srv)
        buckets = {
            dict(k[1])["le"]: v for k, v in m.items() if k[0] == "model_prediction_score_bucket"
        }
        counts = np.diff([0.0] + [buckets[b] for b in sorted(buckets, key=lambda b: float(b))])
        assert counts.max() == len(rows)  # every score in one bucket: what the alert rule looks for
    finally:
        client.stop(srv)
