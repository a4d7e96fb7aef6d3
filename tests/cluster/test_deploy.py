"""`mlops-lab deploy --target kind`, tested up to the API call.

No Kubernetes API server can run here, so `apply`, `promote` and `rollback` talk to a fake
CustomObjectsApi that records each call (the same method names and arguments as the real
client's). What they send is validated against the real KServe CRD, unknown fields rejected.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
import cluster_support as cs  # noqa: E402

from reference import deploy  # noqa: E402
from reference.cli import app  # noqa: E402


class NotFound(Exception):
    status = 404


class FakeCustomObjectsApi:
    """Records calls; knows the objects it was given (as an API server would, minus everything)."""

    def __init__(self, existing: dict | None = None):
        self.calls: list[tuple] = []
        self.objects = dict(existing or {})

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.calls.append(("get", group, version, namespace, plural, name))
        if (namespace, name) not in self.objects:
            raise NotFound(name)
        return self.objects[(namespace, name)]

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        self.calls.append(("create", group, version, namespace, plural, body))
        self.objects[(namespace, body["metadata"]["name"])] = body
        return body

    def patch_namespaced_custom_object(self, group, version, namespace, plural, name, body):
        self.calls.append(("patch", group, version, namespace, plural, name, body))
        return body


def _valid(isvc):
    errors = cs.validate_custom_resource(isvc, cs.kserve_crd_schema("InferenceService"))
    assert not errors, errors


@pytest.mark.parametrize(
    "spec",
    [
        deploy.ServingSpec(),
        deploy.ServingSpec(model_uri="models:/flight-delay/3", canary_percent=10),
        deploy.ServingSpec(canary_percent=0),
        deploy.ServingSpec(
            name="flight-delay-gpu",
            image="mlops-lab/trainer:0.1.0-cuda",
            command=("python", "-m", "reference.serve"),
            gpu=True,
        ),
    ],
    ids=["champion", "canary-10", "rollback-0", "gpu"],
)
def test_rendered_inference_services_validate_against_the_kserve_crd(spec):
    _valid(deploy.render_inference_service(spec))


def test_the_render_serves_the_model_on_all_interfaces_in_the_pod_with_its_uri():
    isvc = deploy.render_inference_service(
        deploy.ServingSpec(model_uri="models:/flight-delay@challenger", canary_percent=25)
    )
    predictor = isvc["spec"]["predictor"]
    (container,) = predictor["containers"]
    assert container["args"][:4] == ["--host", "0.0.0.0", "--port", "8080"]
    assert container["args"][-2:] == ["--model-uri", "models:/flight-delay@challenger"]
    assert predictor["canaryTrafficPercent"] == 25
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLFLOW_TRACKING_URI"] == deploy.DEFAULT_TRACKING_URI
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    assert "nvidia.com/gpu" not in container["resources"]["limits"]


@pytest.mark.parametrize(
    ("cpu", "workers"), [("250m", 1), ("1", 1), ("1500m", 1), ("2", 2), ("3.5", 3), ("4", 4)]
)
def test_the_server_runs_one_worker_per_requested_cpu(cpu, workers):
    spec = deploy.ServingSpec(requests={"cpu": cpu, "memory": "1Gi"}, limits={"cpu": "4"})
    (container,) = deploy.render_inference_service(spec)["spec"]["predictor"]["containers"]
    args = container["args"]
    assert args[args.index("--workers") + 1] == str(workers)


def test_a_cpu_quantity_that_is_not_one_is_refused_with_a_message():
    with pytest.raises(ValueError, match="should look like 250m"):
        deploy.workers_for({"cpu": "two"})


def test_a_bad_spec_is_refused_with_a_message():
    with pytest.raises(ValueError, match="0-100"):
        deploy.ServingSpec(canary_percent=120)
    with pytest.raises(ValueError, match="models:/flight-delay@champion"):
        deploy.ServingSpec(model_uri="s3://bucket/model")


def test_apply_creates_when_absent_and_merge_patches_when_present():
    api = FakeCustomObjectsApi()
    first = deploy.render_inference_service(deploy.ServingSpec())
    assert deploy.apply(first, api) == "created"
    assert api.calls[-1][:5] == (
        "create",
        "serving.kserve.io",
        "v1beta1",
        "mlops-lab",
        "inferenceservices",
    )
    _valid(api.calls[-1][5])

    canary = deploy.render_inference_service(
        deploy.ServingSpec(model_uri="models:/flight-delay/2", canary_percent=10)
    )
    assert deploy.apply(canary, api) == "patched"
    op, *_, name, body = api.calls[-1]
    assert (op, name) == ("patch", "flight-delay")
    assert body["spec"]["predictor"]["canaryTrafficPercent"] == 10

    # re-applying without a canary says so explicitly: a merge patch would keep the old 10%
    assert deploy.apply(first, api) == "patched"
    assert api.calls[-1][-1]["spec"]["predictor"]["canaryTrafficPercent"] is None


def test_apply_passes_other_api_errors_through():
    class Forbidden(Exception):
        status = 403

    class Api(FakeCustomObjectsApi):
        def get_namespaced_custom_object(self, *args):
            raise Forbidden("no")

    with pytest.raises(Forbidden):
        deploy.apply(deploy.render_inference_service(deploy.ServingSpec()), Api())


def test_promote_removes_the_canary_split_and_rollback_pins_the_old_revision():
    api = FakeCustomObjectsApi()
    deploy.promote("flight-delay", "mlops-lab", api)
    deploy.rollback("flight-delay", "mlops-lab", api)
    patches = [c[-1] for c in api.calls]
    assert patches == [
        {"spec": {"predictor": {"canaryTrafficPercent": None}}},
        {"spec": {"predictor": {"canaryTrafficPercent": 0}}},
    ]


def test_traffic_reads_the_status_kserve_writes():
    isvc = {
        "status": {
            "components": {
                "predictor": {
                    "traffic": [
                        {"revisionName": "flight-delay-predictor-00001", "percent": 90},
                        {
                            "revisionName": "flight-delay-predictor-00002",
                            "percent": 10,
                            "latestRevision": True,
                        },
                    ]
                }
            }
        }
    }
    assert deploy.traffic(isvc) == (
        "flight-delay-predictor-00001 90%, flight-delay-predictor-00002 10% (latest)"
    )
    assert deploy.traffic({}) == "no traffic status yet"


# ---------------------------------------------------------------------------------- the CLI
def test_the_default_target_is_the_laptop_and_touches_no_cluster(monkeypatch):
    monkeypatch.setattr(deploy, "custom_objects_api", lambda *a: pytest.fail("no cluster call"))
    result = CliRunner().invoke(app, ["deploy"])
    assert result.exit_code == 0, result.output
    assert "mlops-lab serve" in result.output


def test_deploy_target_kind_applies_through_the_client(monkeypatch):
    api = FakeCustomObjectsApi()
    contexts = []
    monkeypatch.setattr(deploy, "custom_objects_api", lambda ctx=None: contexts.append(ctx) or api)
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["deploy", "--target", "kind", "--model-uri", "models:/flight-delay/2", "--canary", "10"],
    )
    assert result.exit_code == 0, result.output
    assert "mlops-lab/flight-delay: created" in result.output
    assert contexts == ["kind-mlops-lab"]
    body = api.calls[-1][-1]
    _valid(body)
    assert body["spec"]["predictor"]["canaryTrafficPercent"] == 10

    result = runner.invoke(app, ["deploy", "--target", "kind", "--rollback"])
    assert result.exit_code == 0, result.output
    assert api.calls[-1][-1] == {"spec": {"predictor": {"canaryTrafficPercent": 0}}}


def test_deploy_dry_run_prints_the_object_and_unknown_targets_fail():
    runner = CliRunner()
    result = runner.invoke(app, ["deploy", "--target", "kind", "--dry-run", "--gpu"])
    assert result.exit_code == 0, result.output
    assert "kind: InferenceService" in result.output and "nvidia.com/gpu" in result.output
    result = runner.invoke(app, ["deploy", "--target", "eks"])
    assert result.exit_code == 1
