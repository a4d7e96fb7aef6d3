"""Helpers of the cluster tier's static checks (imported by its test modules): the built manifests, the pinned versions, and a
strict validator for custom resources against their real CRDs.

The rendering and the validators are reference/manifests.py (lab 09 uses them too: one
implementation); this module adds pytest's skips and caches around them.

No cluster can start in CI, so every check here is static. Each one that needs a tool skips with
a reason naming it: kubectl (kustomize builds), kubernetes-validate (core schemas),
KSERVE_CRDS_DIR (the KServe CRDs), promtool. Without kubectl the checks read the base and the
overlays' own files directly (no patches applied), so all but the patch-specific checks still run.
"""

from __future__ import annotations

import json
import shutil
from functools import cache
from typing import Any

import pytest

from reference import manifests
from reference.manifests import unknown_fields, validate_custom_resource  # noqa: F401 (re-exported)

ROOT = manifests.ROOT
CLUSTER = manifests.CLUSTER
MANIFESTS = manifests.MANIFESTS
OVERLAYS = manifests.OVERLAYS
KUBECTL = shutil.which("kubectl")

needs_kubectl = pytest.mark.skipif(
    KUBECTL is None,
    reason="kubectl not installed (it builds the kustomize overlays; .ci/run installs it)",
)


@cache
def versions() -> dict[str, str]:
    return manifests.versions(CLUSTER)


# ------------------------------------------------------------------------------ the manifests
@cache
def kustomize_build(overlay: str) -> tuple[dict[str, Any], ...]:
    return manifests.kustomize_build(MANIFESTS / "overlays" / overlay, KUBECTL)


@cache
def overlay_objects(overlay: str) -> tuple[dict[str, Any], ...]:
    """The overlay as kubectl builds it; without kubectl, its files read as they are."""
    return manifests.render_overlay(overlay, MANIFESTS, KUBECTL).objects


def all_objects() -> list[tuple[str, dict[str, Any]]]:
    return [(o, obj) for o in OVERLAYS for obj in overlay_objects(o)]


def object_id(item: tuple[str, dict[str, Any]]) -> str:
    overlay, obj = item
    return f"{overlay}:{obj['kind']}/{obj['metadata']['name']}"


# ------------------------------------------------------------------- CRDs, strictly validated
def kserve_crd_schema(kind: str) -> dict[str, Any]:
    """The KServe CRD's schema; skips when KSERVE_CRDS_DIR is unset, fails when it is wrong."""
    try:
        return manifests.kserve_schema(kind)
    except manifests.Unavailable as e:
        pytest.skip(str(e))


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
