"""A real Prometheus (reference.promserver) scraping a stand-in model server, with the real rules.

The pure parts (durations, the lab copy of the rules, the config) need nothing. The server tests
need the ``prometheus`` binary (Debian's ``prometheus`` package) and skip, naming it, without.
The stand-in exports the predictor's metric names (reference.serve.telemetry) from a thread, so
the test needs no model and no KServe: a constant score, or a healthy spread of scores.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server

from reference import promserver
from reference.serve.client import free_port
from reference.serve.telemetry import Telemetry

needs_prometheus = pytest.mark.skipif(
    promserver.binary() is None,
    reason="the prometheus server binary is not installed (apt-get install prometheus)",
)


# ---- pure -------------------------------------------------------------------------------------


def test_parse_duration_reads_prometheus_durations():
    assert promserver.parse_duration("5m") == 300
    assert promserver.parse_duration("1h30m") == 5400
    assert promserver.parse_duration("250ms") == 0.25
    for bad in ("5", "five minutes", "5m junk", ""):
        with pytest.raises(ValueError, match="not a Prometheus duration"):
            promserver.parse_duration(bad)


def test_lab_rules_scale_every_for_and_keep_the_expressions(tmp_path):
    original = yaml.safe_load(promserver.RULES.read_text())
    path = promserver.lab_rules(promserver.RULES, tmp_path / "alerts.lab.yml")
    assert path.read_text().startswith("# A lab-only copy")
    copy = yaml.safe_load(path.read_text())
    pairs = [
        (a, b)
        for ga, gb in zip(original["groups"], copy["groups"], strict=True)
        for a, b in zip(ga["rules"], gb["rules"], strict=True)
    ]
    assert pairs and all(a.get("expr") == b.get("expr") for a, b in pairs)
    alerts = [(a, b) for a, b in pairs if "alert" in a]
    assert alerts and all(
        promserver.parse_duration(b["for"]) == max(1, promserver.parse_duration(a["for"]) / 60)
        for a, b in alerts
    )
    collapsed = next(b for a, b in alerts if a["alert"] == "PredictionScoresCollapsed")
    assert collapsed["for"] == "5s" and collapsed["labels"] == {
        "severity": "critical",
        "signal": "predictions",
    }
    assert all(a.get("annotations") == b.get("annotations") for a, b in alerts)


def test_render_config_scrapes_the_targets_and_loads_the_rules(tmp_path):
    rules = tmp_path / "r.yml"
    config = yaml.safe_load(promserver.render_config(["127.0.0.1:9"], [rules], "2s", "1s"))
    assert config["global"] == {
        "scrape_interval": "2s",
        "scrape_timeout": "2s",
        "evaluation_interval": "1s",
    }
    assert config["rule_files"] == [str(rules.resolve())]
    assert config["scrape_configs"][0]["static_configs"] == [{"targets": ["127.0.0.1:9"]}]
    with pytest.raises(ValueError):
        promserver.render_config(["127.0.0.1:9"], scrape_interval="often")


def test_start_without_the_binary_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(promserver.PrometheusMissing, match="apt-get install prometheus"):
        promserver.start(tmp_path / "prometheus.yml", tmp_path)


# ---- a real server ----------------------------------------------------------------------------


class StandIn:
    """The predictor's model_* series on a loopback port, fed by a thread: rows, scores, 200s."""

    def __init__(self, draw):
        self.registry = CollectorRegistry()
        self.telemetry = Telemetry.create(self.registry)
        self.port = free_port()
        self.server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        self.draw, self.done = draw, threading.Event()
        self.thread = threading.Thread(target=self._feed, daemon=True)
        self.thread.start()

    def _feed(self):
        while not self.done.is_set():
            p = self.draw(64)
            self.telemetry.observe("1", p, (p >= 0.5).astype(int), {}, {}, {})
            self.telemetry.requests.labels("1", "v1", "200").inc()
            self.telemetry.latency.labels("1", "v1").observe(0.004)
            time.sleep(0.05)

    def close(self):
        self.done.set()
        self.thread.join(5)
        self.server.shutdown()


@pytest.fixture
def standin(request):
    s = StandIn(request.param)
    yield s
    s.close()


def _names(prom):
    return {a["labels"]["alertname"]: a["state"] for a in promserver.alerts(prom)}


@needs_prometheus
@pytest.mark.integration
@pytest.mark.parametrize("standin", [lambda n: np.full(n, 0.27)], indirect=True)
def test_a_constant_score_fires_the_collapse_alert_in_prometheus(standin, tmp_path):
    rules = promserver.lab_rules(promserver.RULES, tmp_path / "alerts.lab.yml")
    with promserver.running([f"127.0.0.1:{standin.port}"], [rules], tmp_path / "prom") as prom:
        assert prom.url.startswith("http://127.0.0.1:")
        alert = promserver.wait_for_alert(prom, "PredictionScoresCollapsed", timeout_s=60)
        assert alert["labels"]["model_version"] == "1"
        assert alert["labels"]["severity"] == "critical"
        spread = promserver.query(prom, "model:score_spread:rate10m")
        assert float(spread[0]["value"][1]) < 0.05
        assert promserver.targets_up(prom) == [f"http://127.0.0.1:{standin.port}/metrics"]
        states = _names(prom)
        assert "ErrorRateHigh" not in states and "LatencyHigh" not in states
    assert not prom.alive()


@needs_prometheus
@pytest.mark.integration
@pytest.mark.parametrize(
    "standin", [lambda n: np.random.default_rng(0).beta(2, 8, n)], indirect=True
)
def test_healthy_scores_do_not_fire_it(standin, tmp_path):
    rules = promserver.lab_rules(promserver.RULES, tmp_path / "alerts.lab.yml")
    with promserver.running([f"127.0.0.1:{standin.port}"], [rules], tmp_path / "prom") as prom:
        # the spread exists (so the rules run on data), then twice the scaled `for:` passes quietly
        promserver.wait_for(prom, lambda p: promserver.query(p, "model:score_spread:rate10m"), 30)
        time.sleep(10)
        spread = float(promserver.query(prom, "model:score_spread:rate10m")[0]["value"][1])
        assert spread > 0.1
        assert "PredictionScoresCollapsed" not in _names(prom)
    assert not prom.alive()


@needs_prometheus
def test_wait_for_alert_gives_up_at_its_deadline(tmp_path):
    rules = tmp_path / "none.yml"
    rules.write_text("groups: []\n")
    with promserver.running([f"127.0.0.1:{free_port()}"], [rules], tmp_path / "prom") as prom:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="PredictionScoresCollapsed"):
            promserver.wait_for_alert(prom, "PredictionScoresCollapsed", timeout_s=2)
        assert time.monotonic() - started < 10
