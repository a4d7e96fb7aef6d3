"""Helpers of the cluster tier's static checks (imported by its test modules): the built manifests, the pinned versions, and a
strict validator for custom resources against their real CRDs.

No cluster can start in CI, so every check here is static. Each one that needs a tool skips with
a reason naming it: kubectl (kustomize builds), kubernetes-validate (core schemas),
KSERVE_CRDS_DIR (the KServe CRDs), promtool. Without kubectl the checks read the base and the
overlays' own files directly (no patches applied), so all but the patch-specific checks still run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
MANIFESTS = CLUSTER / "manifests"
OVERLAYS = ("cpu", "gpu", "managed", "canary")
KUBECTL = shutil.which("kubectl")

needs_kubectl = pytest.mark.skipif(
    KUBECTL is None,
    reason="kubectl not installed (it builds the kustomize overlays; .ci/run installs it)",
)


@cache
def versions() -> dict[str, str]:
    out = {}
    for line in (CLUSTER / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


# ------------------------------------------------------------------------------ the manifests
@cache
def kustomize_build(overlay: str) -> tuple[dict[str, Any], ...]:
    proc = subprocess.run(
        [KUBECTL, "kustomize", str(MANIFESTS / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"kubectl kustomize overlays/{overlay}: {proc.stderr}"
    return tuple(d for d in yaml.safe_load_all(proc.stdout) if d)


def _read_kustomization(folder: Path) -> list[dict[str, Any]]:
    """The objects of a kustomization without kustomize: its resources and configMapGenerator."""
    k = yaml.safe_load((folder / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for entry in k.get("resources", []):
        path = (folder / entry).resolve()
        if path.is_dir():
            objects += _read_kustomization(path)
        else:
            objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for gen in k.get("configMapGenerator", []):
        data = {Path(f).name: (folder / f).read_text() for f in gen.get("files", [])}
        labels = gen.get("options", {}).get("labels", {})
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": gen["name"],
                    "namespace": gen.get("namespace"),
                    "labels": labels,
                },
                "data": data,
            }
        )
    return objects


@cache
def overlay_objects(overlay: str) -> tuple[dict[str, Any], ...]:
    """The overlay as kubectl builds it; without kubectl, its files read as they are."""
    if KUBECTL is not None:
        return kustomize_build(overlay)
    return tuple(_read_kustomization(MANIFESTS / "overlays" / overlay))


def all_objects() -> list[tuple[str, dict[str, Any]]]:
    return [(o, obj) for o in OVERLAYS for obj in overlay_objects(o)]


def object_id(item: tuple[str, dict[str, Any]]) -> str:
    overlay, obj = item
    return f"{overlay}:{obj['kind']}/{obj['metadata']['name']}"


# ------------------------------------------------------------------- CRDs, strictly validated
def kserve_crd_schema(kind: str) -> dict[str, Any]:
    folder = os.environ.get("KSERVE_CRDS_DIR")
    if not folder:
        pytest.skip("KSERVE_CRDS_DIR is not set (the KServe CRDs; .ci/run sets it)")
    return _crd_schema(folder, kind)


@cache
def _crd_schema(folder: str, kind: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRD files are megabytes
    for path in sorted(Path(folder).glob("*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=loader):  # noqa: S506 (a safe loader)
            is_crd = doc and doc.get("kind") == "CustomResourceDefinition"
            if is_crd and doc["spec"]["names"]["kind"] == kind:
                (version,) = [v for v in doc["spec"]["versions"] if v.get("storage")]
                return version["schema"]["openAPIV3Schema"]
    raise AssertionError(f"no CRD for {kind} in {folder}")


def unknown_fields(obj: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields of ``obj`` that ``schema`` does not declare. The API server prunes (or, with
    kubectl's strict field validation, rejects) them; a CRD's JSON schema alone lets them through,
    because structural schemas do not set additionalProperties: false. So `modelFormt` passes
    jsonschema and fails here."""
    if not isinstance(schema, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(obj, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, value in obj.items():
            where = f"{path}.{key}" if path else key
            if props is not None and key in props:
                found += unknown_fields(value, props[key], where)
            elif isinstance(extra, dict):
                found += unknown_fields(value, extra, where)
            elif props is not None and extra is not True:
                found.append(where)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            found += unknown_fields(item, schema["items"], f"{path}[{i}]")
    return found


def validate_custom_resource(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Unknown fields first, then the schema itself (types, enums, required, ranges)."""
    import jsonschema

    errors = [f"unknown field {f}" for f in unknown_fields(obj, schema)]
    validator = jsonschema.Draft7Validator(schema)
    errors += [
        f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(obj)
    ]
    return errors


# ----------------------------------------------------------------------------- the pod specs
def pod_specs(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """(where, pod-level settings, containers) for every pod an object would run."""
    kind, spec = obj["kind"], obj.get("spec", {})
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        pod = spec["template"]["spec"]
        return [("pod", pod, pod.get("containers", []) + pod.get("initContainers", []))]
    if kind == "InferenceService":
        predictor = spec["predictor"]
        return [("predictor", predictor, predictor.get("containers", []))]
    if kind == "WorkflowTemplate":
        return [
            (f"template {t['name']}", spec, [t["container"]])
            for t in spec["templates"]
            if "container" in t
        ]
    return []


def dashboard() -> dict[str, Any]:
    path = MANIFESTS / "base" / "monitoring" / "dashboards" / "flight-delay.json"
    return json.loads(path.read_text())
