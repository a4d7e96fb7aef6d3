"""The Level 2 parts that need no server: router config and split, the replay's clock and late
labels, the persisted state."""

from __future__ import annotations

import datetime as dt
import json
import os

import numpy as np
import pandas as pd
import pytest

from reference.loop.router import RouterConfig, goes_to_candidate, scores_of
from reference.loop.state import EventLog, LoopState
from reference.loop.traffic import Ledger, Traffic, instances, landed_month, scenario

BASE = RouterConfig.from_dict({"champion": {"url": "http://127.0.0.1:1", "version": "1"}})
CAND = {"url": "http://127.0.0.1:2", "version": "2"}


@pytest.mark.parametrize(
    "values,message",
    [
        ({"mode": "canary"}, "needs a candidate"),
        ({"mode": "mirror", "candidate": CAND}, "mode must be one of"),
        ({"percent": 120, "candidate": CAND, "mode": "canary"}, "within 0-100"),
        ({"percent": "ten"}, "must be numbers"),
        ({"candidate": {"url": "127.0.0.1:2"}}, "candidate must be"),
        ({"champion": None}, "champion is required"),
        ({"canary": 10}, "unknown config key"),
        ({"timeout_s": 0}, "timeout_s"),
    ],
)
def test_router_config_refuses_mistakes_with_a_reason(values, message):
    with pytest.raises(ValueError, match=message):
        RouterConfig.from_dict(values, BASE)


def test_router_config_merges_a_partial_update():
    cfg = RouterConfig.from_dict({"mode": "canary", "percent": 25, "candidate": CAND}, BASE)
    assert cfg.champion.version == "1" and cfg.candidate.url == CAND["url"] and cfg.percent == 25
    back = RouterConfig.from_dict({"mode": "off", "candidate": None}, cfg)
    assert back.candidate is None and back.champion == cfg.champion


def test_canary_split_is_sticky_and_close_to_the_percent():
    ids = [f"2013-09-01-{i:04d}" for i in range(20_000)]
    share = np.mean([goes_to_candidate(i, 25) for i in ids])
    assert 0.23 < share < 0.27
    assert all(goes_to_candidate(i, 25) == goes_to_candidate(i, 25) for i in ids[:100])
    assert not any(goes_to_candidate(i, 0) for i in ids[:1000])
    assert all(goes_to_candidate(i, 100) for i in ids[:1000])


def test_scores_of_v1_and_v2_answers():
    v1 = {"predictions": [{"probability": 0.2, "label": 0}, {"probability": 0.7, "label": 1}]}
    v2 = {"outputs": [{"name": "label", "data": [0]}, {"name": "probability", "data": [0.3]}]}
    assert scores_of(json.dumps(v1).encode()) == [0.2, 0.7]
    assert scores_of(json.dumps(v2).encode()) == [0.3]
    assert scores_of(b"not json") is None and scores_of(b'{"error": "x"}') is None


@pytest.mark.parametrize(
    "day,delay,month",
    [
        # at the end of the day: July 31's outcomes are known at the end of Aug 1 with delay 1
        ("2013-07-31", 1, 6),
        ("2013-07-31", 0, 7),
        ("2013-08-01", 1, 7),
        ("2013-08-31", 1, 7),
        ("2013-09-01", 1, 8),
        ("2013-01-15", 1, 0),
    ],
)
def test_landed_month(day, delay, month):
    assert landed_month(dt.date.fromisoformat(day), delay) == month


def _flights():
    sched = pd.to_datetime(["2013-07-01 08:00", "2013-07-01 09:00", "2013-07-02 08:00"])
    return pd.DataFrame(
        {
            "row_id": [10, 11, 12],
            "sched_dep": sched,
            "temp": [80.0, 81.0, 82.0],
            "dewp": [60.0, 61.0, 62.0],
            "carrier": ["UA", "AA", "B6"],
            "delayed": [1.0, np.nan, 0.0],
            "arr_delay": [30.0, np.nan, 0.0],
        }
    )


def test_labels_arrive_late_and_cancelled_flights_never():
    t = Traffic(_flights(), scenario("natural"))
    ids = np.array([10, 11, 12])
    assert np.isnan(t.labels(ids, dt.date(2013, 7, 1), 1)).all()  # nothing landed yet
    on_2nd = t.labels(ids, dt.date(2013, 7, 2), 1)
    assert on_2nd[0] == 1.0 and np.isnan(on_2nd[1]) and np.isnan(on_2nd[2])
    assert t.labels(ids, dt.date(2013, 7, 3), 1)[2] == 0.0


def test_traffic_faults_start_on_their_day_and_the_label_is_never_sent():
    t = Traffic(
        _flights(),
        scenario("rename-column").__class__(
            "x", "", traffic_fault="rename_column", fault_from="2013-07-02"
        ),
    )
    before, after = t.frame(dt.date(2013, 7, 1)), t.frame(dt.date(2013, 7, 2))
    assert "temp" in before and "temp" not in after and "temperature" in after
    sent = instances(before)
    assert sent[0]["temp"] == 80.0 and "delayed" not in sent[0] and "arr_delay" not in sent[0]
    assert t.frame(dt.date(2013, 7, 5)).empty


def test_unknown_scenario_names_the_known_ones():
    with pytest.raises(ValueError, match="natural, bad-challenger"):
        scenario("chaos-monkey")


def test_state_round_trips_and_ledger_and_events_append(tmp_path):
    st = LoopState(day="2013-08-05", phase="canary", candidate={"version": "2"})
    st.decided["1"] = "promoted"
    st.save(tmp_path / "state.json")
    back = LoopState.load(tmp_path / "state.json")
    assert back == st and not (tmp_path / "state.tmp").exists()
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.add([("r1", "2013-08-05", [1, 2])])
    assert Ledger(tmp_path / "ledger.jsonl").rows == {"r1": ("2013-08-05", [1, 2])}
    log = EventLog(tmp_path / "events.jsonl")
    log.append("2013-08-05", "promote", ["better"], "2", auc=np.float64(0.7))
    assert log.read()[0]["metrics"]["auc"] == 0.7 and log.read()[0]["version"] == "2"


def test_a_second_workspace_in_the_same_process_gets_its_own_store(tmp_path, monkeypatch):
    """MLflow's set_tracking_uri exports MLFLOW_TRACKING_URI; registry.client must not leak it
    (two Level 2 stories, a notebook with two workspaces)."""
    from reference import registry
    from reference.config import get_settings

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = get_settings(tmp_path / "one")
    registry.client(first)
    second = get_settings(tmp_path / "two")
    assert str(tmp_path / "two") in second.tracking_uri
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_the_router_log_is_read_incrementally_and_a_half_written_line_waits(tmp_path):
    from reference.config import get_settings
    from reference.loop.controller import Controller

    controller = Controller(get_settings(tmp_path / "ws"))
    log = controller.dir / "router.jsonl"
    log.parent.mkdir(parents=True)
    first = {"request_id": "a", "seq": 1}
    log.write_text(json.dumps(first) + "\n" + '{"request_id": "b", "se')  # b is mid-write
    assert controller._router_log() == {"a": first}
    with log.open("a") as f:
        f.write('q": 2}\n' + json.dumps({"request_id": "a", "seq": 3}) + "\n")
    lines = controller._router_log()
    assert lines["b"] == {"request_id": "b", "seq": 2}
    assert lines["a"]["seq"] == 3  # a replayed request id keeps its latest answer


def test_a_torn_event_line_is_skipped_and_the_next_one_is_whole(tmp_path):
    # a controller killed mid-append leaves half a line without a newline
    log = EventLog(tmp_path / "events.jsonl")
    log.append("2013-08-01", "check")
    with (tmp_path / "events.jsonl").open("a") as f:
        f.write('{"time": 1, "day": "2013-08-0')
    assert [e["kind"] for e in log.read()] == ["check"]
    log.append("2013-08-02", "retrain")
    assert [e["kind"] for e in log.read()] == ["check", "retrain"]
    # damage in the middle of the log that is not a torn append is an error that says where
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    lines.insert(1, "not json at all")
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        log.read()


@pytest.mark.parametrize("text", ['{"day": "2013-08-0', "[1, 2]", ""])
def test_an_unreadable_state_file_says_what_to_do(tmp_path, text):
    path = tmp_path / "state.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="mlops-lab loop --fresh"):
        LoopState.load(path)


def _backend(probability: float):
    """A stand-in model server answering V1 with one fixed score per row: what the router
    does with the answers is under test here, not a model (the loop tests use real servers)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def predict(request: Request):
        rows = json.loads(await request.body())["instances"]
        return JSONResponse({"predictions": [{"probability": probability} for _ in rows]})

    return Starlette(routes=[Route("/v1/models/m:predict", predict, methods=["POST"])])


def _route_all(tmp_path, **config) -> list[dict]:
    """200 requests through a Router in ``config``; its log lines, once the copies are in."""
    import asyncio

    import httpx

    from reference.loop.router import Router

    apps = {"champion.test": _backend(0.2), "candidate.test": _backend(0.7)}

    async def run():
        mounts = {f"http://{host}": httpx.ASGITransport(app) for host, app in apps.items()}
        async with httpx.AsyncClient(mounts=mounts) as client:
            base = {"champion": {"url": "http://champion.test", "version": "1"}}
            router = Router(RouterConfig.from_dict(base), tmp_path / "router.jsonl", client)
            router.configure(
                {"candidate": {"url": "http://candidate.test", "version": "2"}} | config
            )
            body = json.dumps({"instances": [{}, {}]}).encode()
            answers = [
                await router.handle("/v1/models/m:predict", body, "application/json", f"r{i}")
                for i in range(200)
            ]
            await asyncio.gather(*router._pending)  # the background copies finish and log
            return answers

    answers = asyncio.run(run())
    assert all(code == 200 for code, *_ in answers)
    return [json.loads(line) for line in (tmp_path / "router.jsonl").read_text().splitlines()]


def test_a_mirrored_canary_pairs_every_request_and_answers_only_its_share(tmp_path):
    lines = _route_all(tmp_path, mode="canary", percent=25)
    assert len(lines) == 200 and all(line["mode"] == "canary" for line in lines)
    # every request carries both models' scores: the paired test sees all the flights ...
    assert all(line["candidate"]["scores"] == [0.7, 0.7] for line in lines)
    assert all(line["champion"]["scores"] == [0.2, 0.2] for line in lines)
    # ... while users got the candidate's answer only on its sticky 25%
    served = [line["served_by"] == "candidate" for line in lines]
    assert served == [goes_to_candidate(f"r{i}", 25) for i in range(200)] and 30 < sum(served) < 70


def test_without_mirror_the_canary_pairs_only_the_candidates_share(tmp_path):
    lines = _route_all(tmp_path, mode="canary", percent=25, mirror=False)
    paired = [line for line in lines if line["candidate"] is not None]
    assert paired and all(line["served_by"] == "candidate" for line in paired)
    assert len(paired) == sum(goes_to_candidate(f"r{i}", 25) for i in range(200))


def test_router_config_refuses_a_mirror_that_is_not_a_boolean():
    with pytest.raises(ValueError, match="mirror must be true or false"):
        RouterConfig.from_dict({"mirror": "yes"}, BASE)
