"""Deploy targets: the laptop (default) or a KServe InferenceService on a cluster (kind or any).

::

    mlops-lab deploy                                        # laptop: says how to serve locally
    mlops-lab deploy --target kind                          # the champion, 100% of traffic
    mlops-lab deploy --target kind --model-uri models:/flight-delay/3 --canary 10
    mlops-lab deploy --target kind --promote                # the canary takes all the traffic
    mlops-lab deploy --target kind --rollback               # all traffic back to the last good one
    mlops-lab deploy --target kind --dry-run                # print the object, touch nothing

The pure core is ``render_inference_service(spec) -> dict``: the same function writes the
committed manifests (tools/cluster_manifests.py), so what the CLI applies and what kustomize
applies cannot drift. ``apply`` / ``promote`` / ``rollback`` take the Kubernetes client's
``CustomObjectsApi`` (or anything with its methods: the tests pass a recording fake).

KServe runs in Knative mode here (docs/cluster.md says why): ``canaryTrafficPercent`` sends that
share to the newest revision and the rest to the last one rolled out; removing it promotes the
canary; setting it to 0 pins all traffic to the previous revision (rollback).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
DEFAULT_TRACKING_URI = "http://mlflow.mlops-lab.svc:5000"


@dataclass(frozen=True)
class ServingSpec:
    """What to serve where. Defaults: the committed base manifest of cluster/manifests."""

    name: str = "flight-delay"
    namespace: str = "mlops-lab"
    image: str = "mlops-lab/predictor:0.1.0"
    # the predictor image's entrypoint serves; another image (the CUDA trainer) names the command
    command: tuple[str, ...] | None = None
    model_name: str = "flight-delay"  # the registered model, and the name in the URL paths
    # models:/<name>@<alias> or models:/<name>/<version>; None: the champion
    model_uri: str | None = None
    tracking_uri: str = DEFAULT_TRACKING_URI
    canary_percent: int | None = None  # 0-100: share of traffic for the newest revision
    gpu: bool = False  # request nvidia.com/gpu: 1 and the nvidia RuntimeClass
    # 1: a scrape target and no cold start while monitoring. 0: scale to zero, and start at zero
    # (a GPU variant holds its GPU only while it serves: an idle GPU is the expensive kind)
    min_replicas: int = 1
    max_replicas: int = 2
    requests: dict[str, str] = field(default_factory=lambda: {"cpu": "250m", "memory": "1Gi"})
    limits: dict[str, str] = field(default_factory=lambda: {"cpu": "2", "memory": "2Gi"})

    def __post_init__(self):
        if self.canary_percent is not None and not 0 <= self.canary_percent <= 100:
            raise ValueError(f"canary percent must be 0-100, not {self.canary_percent}")
        if self.model_uri is not None and not self.model_uri.startswith("models:/"):
            raise ValueError(
                f"model URI {self.model_uri!r} should look like models:/{self.model_name}@champion "
                f"or models:/{self.model_name}/3"
            )


def cpu_cores(quantity: str) -> float:
    """A Kubernetes CPU quantity in cores: ``"250m"`` -> 0.25, ``"2"`` -> 2.0."""
    text = str(quantity).strip()
    try:
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError as e:
        raise ValueError(f"CPU quantity {quantity!r} should look like 250m, 1 or 1.5") from e


def workers_for(requests: dict[str, str]) -> int:
    """Server worker processes for a container's requests: one per whole requested CPU, at
    least one. The request is what the pod is sure to get; a worker per core of the limit would
    fight over CPU it may not have (a worker is one Python process: one core at most)."""
    return max(1, int(cpu_cores(requests.get("cpu", "1"))))


def render_inference_service(spec: ServingSpec) -> dict[str, Any]:
    """The InferenceService for ``spec``: our predictor image as a custom container, non-root,
    with one server worker per requested CPU (``workers_for``)."""
    args = ["--host", "0.0.0.0", "--port", "8080", "--name", spec.model_name]
    args += ["--workers", str(workers_for(spec.requests))]
    if spec.model_uri:
        args += ["--model-uri", spec.model_uri]
    limits = dict(spec.limits)
    container: dict[str, Any] = {
        "name": "kserve-container",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",  # loaded into the nodes by `kind load`, never pulled
        **({"command": list(spec.command)} if spec.command else {}),
        "args": args,
        "env": [
            {"name": "MLFLOW_TRACKING_URI", "value": spec.tracking_uri},
            {"name": "MLOPS_LAB_MODEL_NAME", "value": spec.model_name},
            {"name": "MLOPS_LAB_WORKSPACE", "value": "/workspace"},
        ],
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        # 200 only once the model is loaded: readiness is the model's, not the process's
        "readinessProbe": {
            "httpGet": {"path": f"/v1/models/{spec.model_name}", "port": 8080},
            "periodSeconds": 5,
        },
        "resources": {"requests": dict(spec.requests), "limits": limits},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # the model is downloaded into the workspace; libraries cache under HOME=/tmp
        "volumeMounts": [
            {"name": "workspace", "mountPath": "/workspace"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    predictor: dict[str, Any] = {
        "minReplicas": spec.min_replicas,
        "maxReplicas": spec.max_replicas,
        "automountServiceAccountToken": False,
        "containers": [container],
        "volumes": [{"name": "workspace", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
    }
    if spec.gpu:
        limits["nvidia.com/gpu"] = "1"
        # without the runtime class the container starts without the driver (kserve#4722)
        predictor["runtimeClassName"] = "nvidia"
    if spec.canary_percent is not None:
        predictor["canaryTrafficPercent"] = spec.canary_percent
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {
            "name": spec.name,
            "namespace": spec.namespace,
            "labels": {
                "app.kubernetes.io/name": spec.name,
                "app.kubernetes.io/part-of": "mlops-lab",
            },
            # Knative mode: canaryTrafficPercent needs revisions (docs/cluster.md)
            "annotations": {
                "serving.kserve.io/deploymentMode": "Knative",
                **(
                    {"autoscaling.knative.dev/initial-scale": "0"} if spec.min_replicas == 0 else {}
                ),
            },
        },
        "spec": {"predictor": predictor},
    }


def custom_objects_api(context: str | None = None):
    """The Kubernetes client's CustomObjectsApi for a kubeconfig context (kind: kind-mlops-lab)."""
    try:
        from kubernetes import client, config
    except ImportError as e:  # pragma: no cover - kubernetes comes with kserve
        raise RuntimeError("the kubernetes client is missing: pip install kubernetes") from e
    try:
        config.load_kube_config(context=context)
    except Exception as e:  # ConfigException, FileNotFoundError: no cluster yet
        raise RuntimeError(
            f"no kubeconfig context {context or '(current)'}: create the cluster first "
            "(make cluster-up) or pass --context"
        ) from e
    return client.CustomObjectsApi()


def _is_not_found(error: Exception) -> bool:
    return getattr(error, "status", None) == 404


def apply(isvc: dict[str, Any], api) -> str:
    """Create the InferenceService, or merge-patch it when it exists. Returns what happened."""
    name, namespace = isvc["metadata"]["name"], isvc["metadata"]["namespace"]
    try:
        api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except Exception as e:
        if not _is_not_found(e):
            raise
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, isvc)
        return "created"
    patch = {k: isvc[k] for k in ("metadata", "spec")}
    if "canaryTrafficPercent" not in isvc["spec"]["predictor"]:
        # a merge patch keeps fields it does not name: say explicitly that no canary is wanted
        patch = {**patch, "spec": {"predictor": {**isvc["spec"]["predictor"]}}}
        patch["spec"]["predictor"]["canaryTrafficPercent"] = None
    api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, patch)
    return "patched"


def set_traffic(name: str, namespace: str, api, percent: int | None) -> dict[str, Any]:
    """Move the canary: ``None`` promotes it (field removed), 0 rolls back, 1-99 a step."""
    patch = {"spec": {"predictor": {"canaryTrafficPercent": percent}}}
    api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, patch)
    return patch


def promote(name: str, namespace: str, api) -> dict[str, Any]:
    """The newest revision takes all the traffic and becomes the one rolled out."""
    return set_traffic(name, namespace, api, None)


def rollback(name: str, namespace: str, api) -> dict[str, Any]:
    """All traffic back to the last revision rolled out; the canary revision stays for a look."""
    return set_traffic(name, namespace, api, 0)


def traffic(isvc: dict[str, Any]) -> str:
    """One line from an InferenceService's status: which revision gets what share."""
    status = (isvc.get("status") or {}).get("components", {}).get("predictor", {})
    shares = [
        f"{t.get('revisionName', '?')} {t.get('percent', 0)}%"
        + (" (latest)" if t.get("latestRevision") else "")
        for t in status.get("traffic", [])
    ]
    return ", ".join(shares) or "no traffic status yet"


def laptop_hint(model_uri: str | None) -> str:
    """The laptop target: nothing to apply; the local server is `mlops-lab serve`."""
    uri = f" --model-uri {model_uri}" if model_uri else ""
    return (
        "target local: the laptop tier serves with `mlops-lab serve" + uri + "` "
        "(KServe's ModelServer on 127.0.0.1:8080); canary and shadow run through the local "
        "router. For a cluster: make cluster-up, then mlops-lab deploy --target kind"
    )
