"""The cluster manifests, checked statically: they build, validate, run restricted, stay in step.

kubectl builds every overlay; core objects validate against the Kubernetes schemas of the pinned
version (kubernetes-validate, offline, unknown fields rejected); InferenceServices against the
real KServe CRD with unknown fields rejected; every pod runs as Pod Security "restricted" asks.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import cluster_support as cs  # noqa: E402

OUR_KINDS = {"InferenceService", "ServingRuntime", "ClusterServingRuntime"}
# custom resources of other projects: no schema here, checked by shape below
OTHER_CRDS = {
    "ServiceMonitor",
    "PrometheusRule",
    "AlertmanagerConfig",
    "WorkflowTemplate",
    "WorkflowEventBinding",
}


@cs.needs_kubectl
@pytest.mark.parametrize("overlay", cs.OVERLAYS)
def test_kustomize_builds_every_overlay(overlay):
    objects = cs.kustomize_build(overlay)
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "ResourceQuota", "InferenceService", "WorkflowTemplate"} <= kinds
    names = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names)), "an object is defined twice"


def test_every_object_is_a_known_kind_in_our_namespace():
    for overlay, obj in cs.all_objects():
        where = cs.object_id((overlay, obj))
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == "mlops-lab", where
            continue
        assert obj["metadata"].get("namespace") == "mlops-lab", f"{where}: names no namespace"


def test_core_objects_validate_against_the_pinned_kubernetes_schemas():
    from reference.manifests import Unavailable, validate_core

    version = cs.versions()["KUBERNETES_VERSION"]
    checked, seen = 0, set()
    for overlay, obj in cs.all_objects():
        key = yaml.safe_dump(obj, sort_keys=True)
        if obj["kind"] in OUR_KINDS | OTHER_CRDS or key in seen:
            continue  # an object the overlays share is validated once
        seen.add(key)
        try:
            errors = validate_core(obj, version)  # strict: unknown fields are errors
        except Unavailable as e:
            pytest.skip(str(e))
        assert not errors, f"{cs.object_id((overlay, obj))}: {errors}"
        checked += 1
    assert checked >= 15


def test_inference_services_validate_against_the_kserve_crd_with_unknown_fields_rejected():
    schema = cs.kserve_crd_schema("InferenceService")
    found = [(o, obj) for o, obj in cs.all_objects() if obj["kind"] == "InferenceService"]
    assert {obj["metadata"]["name"] for _, obj in found} >= {"flight-delay", "flight-delay-gpu"}
    for item in found:
        errors = cs.validate_custom_resource(item[1], schema)
        assert not errors, f"{cs.object_id(item)}: {errors}"


def test_a_typo_in_a_field_name_is_caught_though_the_crd_schema_alone_lets_it_through():
    import jsonschema

    schema = cs.kserve_crd_schema("InferenceService")
    typo = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "typo", "namespace": "mlops-lab"},
        "spec": {
            "predictor": {"model": {"modelFormt": {"name": "sklearn"}, "storageUri": "s3://m"}}
        },
    }
    assert list(jsonschema.Draft7Validator(schema).iter_errors(typo)) == []  # the trap
    assert cs.validate_custom_resource(typo, schema) == [
        "unknown field spec.predictor.model.modelFormt"
    ]


def test_serving_runtimes_validate_against_their_crds_when_there_are_any():
    runtimes = [
        (o, obj)
        for o, obj in cs.all_objects()
        if obj["kind"] in ("ServingRuntime", "ClusterServingRuntime")
    ]
    if not runtimes:
        # we serve with a custom container, not a runtime; the check is ready for one
        schema = cs.kserve_crd_schema("ServingRuntime")
        assert "spec" in schema["properties"]
        return
    for item in runtimes:
        errors = cs.validate_custom_resource(item[1], cs.kserve_crd_schema(item[1]["kind"]))
        assert not errors, f"{cs.object_id(item)}: {errors}"


def test_other_custom_resources_have_the_shape_their_operators_read():
    for overlay, obj in cs.all_objects():
        kind, spec = obj["kind"], obj.get("spec", {})
        where = cs.object_id((overlay, obj))
        if kind == "ServiceMonitor":
            assert spec["selector"] and spec["endpoints"][0]["path"] == "/metrics", where
        elif kind == "PrometheusRule":
            assert obj["metadata"]["labels"]["release"] == "kube-prometheus-stack", where
        elif kind == "AlertmanagerConfig":
            assert obj["metadata"]["labels"]["mlops-lab/alerting"] == "true", where
            receiver = spec["receivers"][0]["webhookConfigs"][0]
            assert receiver["url"].endswith("/api/v1/events/mlops-lab/retrain"), where
        elif kind == "WorkflowEventBinding":
            assert spec["submit"]["workflowTemplateRef"]["name"] == "flight-delay-pipeline"
            assert 'discriminator == "retrain"' in spec["event"]["selector"], where


# --------------------------------------------------------------------- Pod Security restricted
def _pods():
    return [
        (overlay, obj, where, pod, containers)
        for overlay, obj in cs.all_objects()
        for where, pod, containers in cs.pod_specs(obj)
    ]


def test_every_pod_meets_pod_security_restricted():
    """Non-root, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp,
    resource limits, read-only root filesystem (every container here can: they write to volumes)."""
    pods = _pods()
    assert len(pods) >= 6
    for overlay, obj, where, pod, containers in pods:
        pod_sc = pod.get("securityContext", {})
        for c in containers:
            sc = c.get("securityContext", {})
            name = f"{overlay}:{obj['kind']}/{obj['metadata']['name']} {where} {c.get('name', '')}"

            def effective(key, sc=sc, pod_sc=pod_sc):
                return sc.get(key, pod_sc.get(key))

            assert effective("runAsNonRoot") is True, f"{name}: runAsNonRoot"
            assert (effective("runAsUser") or 1) != 0, f"{name}: runs as root"
            assert sc.get("allowPrivilegeEscalation") is False, f"{name}: privilege escalation"
            assert sc.get("privileged") in (None, False), f"{name}: privileged"
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: capabilities"
            assert not sc.get("capabilities", {}).get("add"), f"{name}: adds capabilities"
            assert (effective("seccompProfile") or {}).get("type") == "RuntimeDefault", name
            assert sc.get("readOnlyRootFilesystem") is True, f"{name}: writable root filesystem"
            limits = c.get("resources", {}).get("limits", {})
            assert "memory" in limits and "cpu" in limits, f"{name}: no cpu/memory limits"
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), where
        for volume in pod.get("volumes", []):
            assert "hostPath" not in volume, f"{where}: hostPath volume"


def test_the_namespace_enforces_restricted():
    (ns,) = [o for o in cs.overlay_objects("cpu") if o["kind"] == "Namespace"]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_no_secret_value_is_committed():
    for overlay, obj in cs.all_objects():
        if obj["kind"] == "Secret":
            assert not obj.get("data") and not obj.get("stringData"), cs.object_id((overlay, obj))
            assert obj["type"] == "kubernetes.io/service-account-token"
    # passwords reach pods only through secretKeyRef, never as a literal value
    text = "\n".join(p.read_text() for p in cs.MANIFESTS.rglob("*.yaml"))
    text += "\n".join(p.read_text() for p in (cs.CLUSTER / "helm").rglob("*.yaml"))
    literal = r"(?im)^\s*-?\s*(password|rootpassword|secretkey|aws_secret_access_key)\s*:\s*\S"
    assert not re.search(literal, text), re.search(literal, text)


# ------------------------------------------------------------------------------------- GPU
@cs.needs_kubectl
def test_the_gpu_overlay_gives_training_one_gpu_and_the_cpu_overlay_none():
    def by_kind(overlay, kind, name):
        return next(
            o
            for o in cs.kustomize_build(overlay)
            if o["kind"] == kind and o["metadata"]["name"] == name
        )

    quota = by_kind("gpu", "ResourceQuota", "mlops-lab")
    assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "1"
    assert by_kind("cpu", "ResourceQuota", "mlops-lab")["spec"]["hard"][
        "requests.nvidia.com/gpu"
    ] == ("0")
    job = by_kind("gpu", "Job", "train")["spec"]["template"]["spec"]
    assert job["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert job["runtimeClassName"] == "nvidia"  # kserve#4722: no runtime class, no GPU
    assert job["containers"][0]["image"] == cs.versions()["TRAINER_GPU_IMAGE"]
    profile = by_kind("gpu", "ConfigMap", "train-profile")["data"]["TRAIN_OVERRIDES"]
    assert profile == "train.hidden=[512,256] train.batch_size=8192"
    wf = by_kind("gpu", "WorkflowTemplate", "flight-delay-pipeline")
    train = next(t for t in wf["spec"]["templates"] if t["name"] == "stage-train")
    assert train["container"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert yaml.safe_load(train["podSpecPatch"]) == {"runtimeClassName": "nvidia"}
    others = [t for t in wf["spec"]["templates"] if "container" in t and t is not train]
    assert all("nvidia.com/gpu" not in t["container"]["resources"]["limits"] for t in others)
    isvc = by_kind("gpu", "InferenceService", "flight-delay-gpu")["spec"]["predictor"]
    assert isvc["runtimeClassName"] == "nvidia"
    for overlay in ("cpu", "canary"):
        assert "nvidia.com/gpu" not in yaml.safe_dump(
            [
                o
                for o in cs.kustomize_build(overlay)
                if o["kind"] not in ("ResourceQuota", "LimitRange")
            ]
        )


@cs.needs_kubectl
def test_the_managed_overlay_schedules_gpu_work_on_the_gpu_pool_only():
    objects = cs.kustomize_build("managed")
    wf = next(o for o in objects if o["kind"] == "WorkflowTemplate")
    train = next(t for t in wf["spec"]["templates"] if t["name"] == "stage-train")
    assert train["nodeSelector"] == {"mlops-lab/pool": "gpu"}
    assert train["tolerations"][0]["key"] == "nvidia.com/gpu"
    job = next(o for o in objects if o["kind"] == "Job")["spec"]["template"]["spec"]
    assert job["nodeSelector"] == {"mlops-lab/pool": "gpu"}
    images = {c["image"] for o in objects for _, _, cts in cs.pod_specs(o) for c in cts}
    ours = {i for i in images if not i.startswith("postgres:")}
    assert ours and all(i.startswith("registry.example.com/mlops-lab/") for i in ours), ours


@cs.needs_kubectl
def test_the_canary_overlay_sends_ten_percent_to_the_challenger():
    isvc = next(o for o in cs.kustomize_build("canary") if o["kind"] == "InferenceService")
    predictor = isvc["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    assert predictor["containers"][0]["args"][-2:] == [
        "--model-uri",
        "models:/flight-delay@challenger",
    ]


def test_the_kind_gpu_config_passes_the_gpus_to_a_worker_and_the_cpu_config_does_not():
    gpu = yaml.safe_load((cs.CLUSTER / "kind" / "gpu.yaml").read_text())
    (worker,) = [n for n in gpu["nodes"] if n["role"] == "worker"]
    assert {"hostPath": "/dev/null", "containerPath": "/var/run/nvidia-container-devices/all"} in (
        worker["extraMounts"]
    )
    cpu = yaml.safe_load((cs.CLUSTER / "kind" / "cpu.yaml").read_text())
    assert all("extraMounts" not in n for n in cpu["nodes"])


@pytest.mark.parametrize("overlay", cs.OVERLAYS)
def test_every_inference_service_runs_one_server_worker_per_requested_cpu(overlay):
    from reference.deploy import cpu_cores

    services = [o for o in cs.overlay_objects(overlay) if o["kind"] == "InferenceService"]
    assert services
    for isvc in services:
        for container in isvc["spec"]["predictor"]["containers"]:
            args = container["args"]
            assert args.count("--workers") == 1, args
            workers = int(args[args.index("--workers") + 1])
            cpu = cpu_cores(container["resources"]["requests"]["cpu"])
            assert workers == max(1, int(cpu)), (isvc["metadata"]["name"], workers, cpu)
