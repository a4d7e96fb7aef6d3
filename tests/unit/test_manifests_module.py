"""reference.manifests: rendering the overlays and checking objects offline, with its skips.

The validators run on a small CRD written here, so they are tested without the real KServe CRDs;
the checks against the real ones run when KSERVE_CRDS_DIR is set (as .ci/run sets it).
"""

from __future__ import annotations

import os

import pytest
import yaml

from reference import deploy, manifests

# A CRD in the shape KServe's chart ships: a structural schema, no additionalProperties: false.
SCHEMA = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "properties": {
                "predictor": {
                    "type": "object",
                    "properties": {
                        "minReplicas": {"type": "integer", "minimum": 0},
                        "model": {
                            "type": "object",
                            "properties": {
                                "modelFormat": {
                                    "type": "object",
                                    "properties": {"name": {"type": "string"}},
                                    "required": ["name"],
                                },
                                "storageUri": {"type": "string"},
                            },
                        },
                        "nodeSelector": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "containers": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"name": {"type": "string"}},
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    },
                }
            },
        },
    },
}


def crd(kind: str = "InferenceService", schema: dict = SCHEMA) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "inferenceservices.serving.kserve.io"},
        "spec": {
            "names": {"kind": kind},
            "versions": [
                {"name": "v1alpha1", "storage": False, "schema": {"openAPIV3Schema": {}}},
                {"name": "v1beta1", "storage": True, "schema": {"openAPIV3Schema": schema}},
            ],
        },
    }


@pytest.fixture
def crds(tmp_path):
    folder = tmp_path / "crds"
    folder.mkdir()
    (folder / "serving.kserve.io_inferenceservices.yaml").write_text(
        "---\n" + yaml.safe_dump(crd())
    )
    return folder


def isvc(predictor: dict) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "x", "namespace": "mlops-lab"},
        "spec": {"predictor": predictor},
    }


TYPO = isvc({"model": {"modelFormt": {"name": "sklearn"}, "storageUri": "s3://m"}})


def test_an_unknown_field_is_reported_by_its_path(crds):
    schema = manifests.load_crd_schema(crds, "InferenceService")
    assert manifests.unknown_fields(TYPO, schema) == ["spec.predictor.model.modelFormt"]
    assert manifests.validate_custom_resource(TYPO, schema) == [
        "unknown field spec.predictor.model.modelFormt"
    ]


def test_a_valid_object_passes_and_maps_and_preserved_subtrees_accept_any_key(crds):
    schema = manifests.load_crd_schema(crds, "InferenceService")
    good = isvc(
        {
            "minReplicas": 0,
            "model": {"modelFormat": {"name": "sklearn"}},
            "nodeSelector": {"mlops-lab/pool": "gpu"},  # a map: any key
            "containers": [{"name": "c", "image": "i", "anything": 1}],  # preserved
        }
    )
    assert manifests.validate_custom_resource(good, schema) == []


def test_schema_errors_follow_the_unknown_fields(crds):
    schema = manifests.load_crd_schema(crds, "InferenceService")
    bad = isvc({"minReplicas": -1, "model": {"modelFormat": {}}, "replicas": 2})
    errors = manifests.validate_custom_resource(bad, schema)
    assert errors[0] == "unknown field spec.predictor.replicas"
    assert any(e.startswith("spec.predictor.minReplicas:") for e in errors)
    assert any("'name' is a required property" in e for e in errors)


def test_the_storage_version_s_schema_is_the_one_loaded(crds):
    assert manifests.load_crd_schema(crds, "InferenceService") == SCHEMA


def test_a_missing_crd_folder_gives_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist: set KSERVE_CRDS_DIR"):
        manifests.load_crd_schema(tmp_path / "nowhere", "InferenceService")
    with pytest.raises(manifests.Unavailable, match="KSERVE_CRDS_DIR is not set"):
        manifests.kserve_schema("InferenceService", environ={})


def test_a_folder_without_the_kind_names_what_it_has(crds):
    with pytest.raises(LookupError, match="no CustomResourceDefinition of kind ServingRuntime"):
        manifests.load_crd_schema(crds, "ServingRuntime")


def test_check_object_skips_with_the_reason_when_the_crds_are_missing():
    check = manifests.check_object(
        deploy.render_inference_service(deploy.ServingSpec()), environ={}
    )
    assert check.verdict == "skipped"
    assert "KSERVE_CRDS_DIR is not set" in check.skipped
    assert str(check).startswith("skipped InferenceService/flight-delay")


def test_check_object_reports_a_typo_through_the_crds_of_the_environment(crds):
    check = manifests.check_object(TYPO, environ={"KSERVE_CRDS_DIR": str(crds)})
    assert (check.verdict, check.errors) == (
        "FAIL",
        ("unknown field spec.predictor.model.modelFormt",),
    )


def test_core_objects_are_checked_strictly_and_other_custom_resources_are_skipped():
    pytest.importorskip("kubernetes_validate")
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "gpus", "namespace": "mlops-lab"},
        "spec": {"hard": {"requests.nvidia.com/gpu": "1"}},
    }
    assert manifests.check_object(quota, "1.36.4").verdict == "ok"
    typo = {**quota, "spec": {"hardd": {"requests.nvidia.com/gpu": "1"}}}
    (error,) = manifests.validate_core(typo, "1.36.4")
    assert "hardd" in error
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
               "metadata": {"name": "m"}, "spec": {}}  # fmt: skip
    check = manifests.check_object(monitor, "1.36.4")
    assert check.verdict == "skipped" and "another project's custom resource" in check.skipped


def test_without_kubectl_an_overlay_is_read_as_its_files_and_says_so(monkeypatch):
    monkeypatch.setattr(manifests.shutil, "which", lambda name: None)
    rendered = manifests.render_overlay("gpu")
    assert not rendered.patched and "kubectl is not on PATH" in rendered.built_by
    kinds = {o["kind"] for o in rendered.objects}
    assert {"Namespace", "ResourceQuota", "InferenceService", "Job"} <= kinds
    # the base quota as written: the overlay's patch (one GPU) is not applied
    quota = rendered.find("ResourceQuota", "mlops-lab")
    assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "0"
    with pytest.raises(KeyError, match="has no Job/nope"):
        rendered.find("Job", "nope")


def test_an_unknown_overlay_names_the_ones_there_are():
    with pytest.raises(ValueError, match="cpu, gpu, managed"):
        manifests.render_overlay("gpus")


@pytest.mark.skipif(not os.environ.get("KSERVE_CRDS_DIR"), reason="KSERVE_CRDS_DIR is not set")
def test_the_rendered_inference_services_pass_the_real_crd():
    schema = manifests.kserve_schema("InferenceService")
    for spec in (deploy.ServingSpec(canary_percent=10), deploy.ServingSpec(gpu=True)):
        assert (
            manifests.validate_custom_resource(deploy.render_inference_service(spec), schema) == []
        )
    assert manifests.validate_custom_resource(TYPO, schema) == [
        "unknown field spec.predictor.model.modelFormt"
    ]
