"""The alert rules (monitoring/alerts.yml): promtool where installed, static checks everywhere.

promtool checks the rules and runs the scenarios of monitoring/alerts_test.yml, the silent failure
among them (skipped, naming the package, where promtool is missing). The static checks need only
PyYAML: every alert is documented and tested, and every metric name an expression uses is one the
predictor or the monitor exports, so a typo in a name fails here even without promtool.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "alerts.yml"
RULE_TESTS = ROOT / "monitoring" / "alerts_test.yml"
README = ROOT / "monitoring" / "README.md"

# The metric contract: what the predictor's /metrics and the monitor job export.
HISTOGRAMS = {"model_prediction_score", "model_request_latency_seconds"}
COUNTERS = {
    "model_predictions_total",
    "model_requests_total",
    "model_rows_total",
    "model_feature_missing_total",
    "model_feature_unknown_category_total",
    "model_feature_out_of_range_total",
}
GAUGES = {
    "model_drift_share",
    "model_dataset_drift",
    "model_feature_drift_score",
    "model_feature_drifted",
    "model_prediction_drift_score",
    "model_live_auc",
    "model_live_labelled_rows",
    "model_reference_positive_rate",
}
# A classic histogram is scraped as three series; its bare name is not one of them.
CONTRACT = (
    COUNTERS | GAUGES | {f"{h}{s}" for h in HISTOGRAMS for s in ("_bucket", "_count", "_sum")}
)

REQUIRED_ALERTS = {
    "PredictedPositiveRateOutOfBand",
    "PredictionScoresCollapsed",
    "DataDriftShareHigh",
    "PredictionDrift",
    "LiveQualityBelowFloor",
    "UnknownCategorySpike",
    "MissingFeatureSpike",
    "ErrorRateHigh",
    "LatencyHigh",
}

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)"
)

# PromQL words that look like names but are not series.
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_IDENT = re.compile(r"(?<![\w.:])[A-Za-z_:][A-Za-z0-9_:]*")
_TEMPLATE_QUERY = re.compile(r'\bquery\s+"((?:[^"\\]|\\.)*)"')


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads: no functions, keywords, labels or strings."""
    text = _STRINGS.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery windows
    text = _LABEL_LISTS.sub(" ", text)  # by (...), on (...), group_left (...)
    names = set()
    for match in _IDENT.finditer(text):
        word = match.group(0)
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation: rate(, sum(, histogram_quantile(
        if word.lower() not in _KEYWORDS:
            names.add(word)
    return names


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _rules() -> list[dict]:
    return [rule for group in _load(RULES)["groups"] for rule in group["rules"]]


def _alerts() -> list[dict]:
    return [r for r in _rules() if "alert" in r]


def _recorded() -> set[str]:
    return {r["record"] for r in _rules() if "record" in r}


# --- promtool: the real checker and the real rule engine ----------------------------------------


@needs_promtool
def test_promtool_check_rules():
    proc = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_promtool
def test_promtool_test_rules():
    """The scenarios: healthy, the silent failure, 5xx, latency, drift, quality, bad inputs."""
    proc = subprocess.run(
        [PROMTOOL, "test", "rules", str(RULE_TESTS.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- static checks: always run ------------------------------------------------------------------


def test_rules_file_is_one_prometheus_rules_document():
    """Only `groups:` at the top, so the cluster tier can put it under a PrometheusRule's spec."""
    doc = _load(RULES)
    assert set(doc) == {"groups"}
    names = [g["name"] for g in doc["groups"]]
    assert len(names) == len(set(names)), "group names must be unique"
    for group in doc["groups"]:
        assert group["rules"], f"group {group['name']} is empty"
        for rule in group["rules"]:
            assert ("alert" in rule) != ("record" in rule), rule
            assert rule["expr"].strip(), rule


def test_required_alerts_exist_once():
    names = [a["alert"] for a in _alerts()]
    assert len(names) == len(set(names)), "alert names must be unique"
    assert set(names) >= REQUIRED_ALERTS, REQUIRED_ALERTS - set(names)


def test_recording_rules_follow_the_naming_convention():
    """level:metric:operations, the Prometheus convention (model:error_ratio:rate5m)."""
    for name in _recorded():
        assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", name), name


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_alert_is_documented(alert):
    """Each alert waits (`for:`), says how bad (severity), what it means, what to do and where."""
    name = alert["alert"]
    assert re.fullmatch(r"\d+[smh]", str(alert.get("for", ""))), f"{name}: needs a for: duration"
    assert alert.get("labels", {}).get("severity") in {"warning", "critical"}, name
    annotations = alert.get("annotations", {})
    for key in ("summary", "description", "runbook"):
        assert str(annotations.get(key, "")).strip(), f"{name}: missing annotation {key}"
    assert annotations["runbook"] == f"monitoring/README.md#{name.lower()}", name
    headings = re.findall(r"^#+\s+(\S+)", README.read_text(), flags=re.M)
    assert name in headings, f"{name}: monitoring/README.md needs a heading for its runbook"


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r.get("alert") or r["record"])
def test_expressions_use_only_contract_metrics(rule):
    """A misspelt metric is a rule that never fires: check every name against the contract."""
    exprs = [rule["expr"]]
    for text in rule.get("annotations", {}).values():
        exprs += _TEMPLATE_QUERY.findall(str(text))  # {{ query "..." }} in the templates
    used = set().union(*(metric_names(e) for e in exprs))
    assert used, "no metric found: the name parser is broken"
    unknown = used - CONTRACT - _recorded()
    assert not unknown, f"not exported by the predictor or the monitor: {sorted(unknown)}"


def test_metric_name_parser_catches_a_typo():
    expr = (
        'sum by (model_version, le) (rate(model_request_latency_seconds_bucket{code=~"5.."}[5m]))'
        " / on() group_left() max(model_request_total offset 1h) > bool 0.05e0"
        " and absent(model:rows:rate10m)"
    )
    assert metric_names(expr) == {
        "model_request_latency_seconds_bucket",
        "model_request_total",
        "model:rows:rate10m",
    }
    assert metric_names(expr) - CONTRACT - _recorded() == {"model_request_total"}


def _alert_tests() -> list[tuple[str, dict]]:
    return [(t["name"], at) for t in _load(RULE_TESTS)["tests"] for at in t["alert_rule_test"]]


def test_every_alert_is_tested_firing_and_silent():
    doc = _load(RULE_TESTS)
    assert doc["rule_files"] == ["alerts.yml"]
    fired = {at["alertname"] for _, at in _alert_tests() if at.get("exp_alerts")}
    silent = {at["alertname"] for _, at in _alert_tests() if not at.get("exp_alerts")}
    names = {a["alert"] for a in _alerts()}
    assert names <= fired, f"no test makes these fire: {sorted(names - fired)}"
    assert names <= silent, f"no test keeps these silent: {sorted(names - silent)}"


def test_every_recording_rule_value_is_tested():
    exprs = [e["expr"] for t in _load(RULE_TESTS)["tests"] for e in t.get("promql_expr_test", [])]
    tested = set().union(*(metric_names(e) for e in exprs))
    assert _recorded() <= tested, f"no value test for: {sorted(_recorded() - tested)}"


def _at_last_eval(scenario: dict) -> dict[str, bool]:
    """alertname -> whether the scenario expects it to fire, at its last evaluation time."""
    last = max(int(at["eval_time"].rstrip("m")) for at in scenario["alert_rule_test"])
    return {
        at["alertname"]: bool(at.get("exp_alerts"))
        for at in scenario["alert_rule_test"]
        if int(at["eval_time"].rstrip("m")) == last
    }


def test_silent_failure_scenarios_keep_their_lesson():
    """200 OK with a constant score: the prediction alerts fire and the error-rate alert does not."""
    scenarios = [t for t in _load(RULE_TESTS)["tests"] if t["name"].startswith("silent failure")]
    assert len(scenarios) >= 1
    for scenario in scenarios:
        codes = {
            m.group(1)
            for s in scenario["input_series"]
            if (m := re.search(r'model_requests_total\{.*code="(\d+)"', s["series"]))
        }
        assert codes == {"200"}, f"{scenario['name']}: the silent failure answers 200 OK"
        expected = _at_last_eval(scenario)
        assert expected["PredictionScoresCollapsed"] is True, scenario["name"]
        assert expected["ErrorRateHigh"] is False, scenario["name"]
    # The main scenario: the positive-rate band catches it too.
    assert _at_last_eval(scenarios[0])["PredictedPositiveRateOutOfBand"] is True
