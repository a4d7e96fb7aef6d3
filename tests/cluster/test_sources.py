"""One source for each fact: the cluster tier reuses the laptop tier's rules, stages and metrics.

The PrometheusRule is monitoring/alerts.yml; the Argo pipeline runs dvc.yaml's stages; the
InferenceServices are what `mlops-lab deploy` renders; the dashboard reads only what the
predictor and the monitor export; every version is pinned once, in cluster/versions.env.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import cluster_support as cs  # noqa: E402

ROOT = cs.ROOT


def _alert_rules_module():
    """tests/unit/test_alert_rules.py: the metric contract and the PromQL name parser."""
    spec = importlib.util.spec_from_file_location(
        "alert_rules_contract", ROOT / "tests" / "unit" / "test_alert_rules.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _generated(relative: str):
    return yaml.safe_load((cs.MANIFESTS / relative).read_text())


def test_generated_manifests_are_current():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "cluster_manifests.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, (
        f"{proc.stdout}{proc.stderr}run `python tools/cluster_manifests.py` and commit the result"
    )


# ------------------------------------------------------------------------------ alert rules
def test_the_prometheus_rule_is_the_laptop_tier_s_alert_rules():
    rule = _generated("base/monitoring/prometheusrule.yaml")
    assert rule["spec"] == yaml.safe_load((ROOT / "monitoring" / "alerts.yml").read_text())


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)"
)
def test_promtool_accepts_the_prometheus_rule_spec(tmp_path):
    spec = tmp_path / "rules.yml"
    spec.write_text(yaml.safe_dump(_generated("base/monitoring/prometheusrule.yaml")["spec"]))
    proc = subprocess.run(
        ["promtool", "check", "rules", str(spec)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------------------- the pipeline
def test_the_workflow_runs_every_dvc_stage_with_dvc_and_in_dvc_s_order():
    stages = yaml.safe_load((ROOT / "reference" / "project" / "dvc.yaml").read_text())["stages"]
    wf = _generated("base/pipeline/workflowtemplate.yaml")
    templates = {t["name"]: t for t in wf["spec"]["templates"]}
    for name, stage in stages.items():
        step = templates[f"stage-{name}"]
        # dvc runs the stage's own cmd from dvc.yaml: the command has one source
        assert step["container"]["command"] == ["dvc", "repro", "--single-item", name]
        assert step["metadata"]["annotations"]["mlops-lab/dvc-cmd"] == stage["cmd"]
        assert step["container"]["workingDir"] == "/workspace/project"
    (dag,) = [t["dag"] for t in wf["spec"]["templates"] if "dag" in t]
    order = [t["name"] for t in dag["tasks"]]
    assert order == ["prepare", *stages, "publish"]
    for task in dag["tasks"][1:]:
        for dep in task["dependencies"]:
            assert order.index(dep) < order.index(task["name"]), (task, dep)
    deps = {t["name"]: set(t["dependencies"]) for t in dag["tasks"][1:]}
    assert deps["validate"] == {"ingest"} and "transform" in deps["train"]
    assert {"train", "evaluate"} <= deps["register"] and "register" in deps["gate"]


def test_the_workflow_and_the_job_share_the_train_profile_and_the_s3_remote():
    wf = _generated("base/pipeline/workflowtemplate.yaml")
    job = yaml.safe_load((cs.MANIFESTS / "base/training/job.yaml").read_text())
    job_env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    for t in wf["spec"]["templates"]:
        if "container" not in t:
            continue
        env = {e["name"]: e for e in t["container"]["env"]}
        for key in ("MLFLOW_TRACKING_URI", "DVC_S3_URL", "DVC_S3_ENDPOINT", "AWS_ACCESS_KEY_ID"):
            assert env[key] == job_env[key], (t["name"], key)
        assert t["container"]["envFrom"] == [{"configMapRef": {"name": "train-profile"}}]


# -------------------------------------------------------------------------------- dashboard
def test_the_dashboard_queries_only_metrics_the_predictor_and_the_monitor_export():
    contract = _alert_rules_module()
    recorded = contract._recorded()
    exprs = [
        target["expr"] for panel in cs.dashboard()["panels"] for target in panel.get("targets", [])
    ]
    assert len(exprs) >= 15
    for expr in exprs:
        used = contract.metric_names(expr)
        assert used, f"no metric in {expr!r}"
        unknown = used - contract.CONTRACT - recorded
        assert not unknown, f"{expr!r} reads {sorted(unknown)}: not exported, not recorded"


def test_the_dashboard_shows_distribution_drift_latency_and_canary_vs_champion():
    titles = " | ".join(p["title"].lower() for p in cs.dashboard()["panels"])
    for topic in ("score distribution", "drift", "latency", "canary", "champion"):
        assert topic in titles, topic
    by_version = [
        p for p in cs.dashboard()["panels"] if "model_version" in str(p.get("targets", ""))
    ]
    assert len(by_version) >= 5  # the canary and the champion side by side


# ---------------------------------------------------------------------------------- versions
def test_every_version_is_pinned_once_and_exactly():
    v = cs.versions()
    for key, value in v.items():
        assert value and "latest" not in value, key
    assert re.fullmatch(r"kindest/node:v[\d.]+@sha256:[0-9a-f]{64}", v["KIND_NODE_IMAGE"])
    assert v["KIND_NODE_IMAGE"].startswith(f"kindest/node:v{v['KUBERNETES_VERSION']}@")
    for key in ("PYTHON_IMAGE", "CUDA_IMAGE", "POSTGRES_IMAGE"):
        assert re.search(r":\d+\.\d+(\.\d+)?", v[key]), f"{key} is not an exact version tag"


def test_the_scripts_and_values_name_versions_only_through_versions_env():
    up = (cs.CLUSTER / "scripts" / "up.sh").read_text()
    for flag in re.findall(r"--version\s+(\S+)", up):
        assert flag.startswith('"$'), f"up.sh pins a version inline: {flag}"
    for path in (cs.CLUSTER / "helm").rglob("*.yaml"):
        assert not re.search(r"(?m)^\s*(tag|version):\s*\S", path.read_text()), path


def test_dockerfiles_use_pinned_bases_run_as_non_root_and_match_versions_env():
    v = cs.versions()
    for path in sorted((cs.CLUSTER / "images").glob("*.Dockerfile")):
        text = path.read_text()
        args = dict(re.findall(r"(?m)^ARG (\w+_IMAGE)=(\S+)", text))
        for name, default in args.items():
            assert default == v[name], f"{path.name}: ARG {name} default differs from versions.env"
        for base in re.findall(r"(?m)^FROM (\S+)", text):
            assert base.startswith("${") or base in {
                m for m in re.findall(r"(?m)^FROM \S+ AS (\S+)", text)
            }, f"{path.name}: FROM {base} is not a pinned ARG or a stage"
        final = text.split("\nFROM ")[-1]
        assert re.search(r"(?m)^USER 10001", final), f"{path.name}: the final stage runs as root"
        assert "pip install" not in final, f"{path.name}: installs in the final stage"


def test_manifests_use_only_images_pinned_in_versions_env():
    v = cs.versions()
    allowed = {
        v[k] for k in ("PREDICTOR_IMAGE", "TRAINER_IMAGE", "TRAINER_GPU_IMAGE", "MLFLOW_IMAGE")
    }
    allowed.add(v["POSTGRES_IMAGE"])
    for overlay, obj in cs.all_objects():
        if overlay == "managed":
            continue  # rewritten to your registry
        for _, _, containers in cs.pod_specs(obj):
            for c in containers:
                assert c["image"] in allowed, f"{cs.object_id((overlay, obj))}: {c['image']}"


def test_the_cluster_only_constraints_are_exact_pins_the_lock_lacks():
    def pins(path):
        out = {}
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                name, sep, version = line.partition("==")
                assert sep and version, f"{path}: {line!r} is not an exact pin"
                out[re.sub(r"[-_.]+", "-", name).lower()] = version
        return out

    cluster = pins(cs.CLUSTER / "images" / "constraints.txt")
    lock = pins(ROOT / "requirements" / "constraints.txt")
    assert {"dvc-s3", "boto3", "psycopg2-binary"} <= set(cluster)
    assert not set(cluster) & set(lock), "pinned twice: keep it in the lock only"


def test_every_cluster_script_is_strict_bash():
    scripts = [*(cs.CLUSTER / "scripts").glob("*.sh"), *cs.CLUSTER.glob("*.sh")]
    scripts += [*(cs.CLUSTER / "images").glob("*.sh")]
    assert len(scripts) >= 6
    for path in scripts:
        text = path.read_text()
        assert text.startswith("#!/usr/bin/env bash"), path
        if path.name != "lib.sh":  # sourced, inherits the caller's options
            assert "set -euo pipefail" in text, path
