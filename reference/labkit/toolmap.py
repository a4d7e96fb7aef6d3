"""The DevOps -> MLOps tool map: what you know, what MLOps adds, where this project does it, and
the lab that exercises it. One source for lab 00 and the site's tool map (docs/tool-map.md renders
these rows, linked to the labs and to the module pages named in ``where``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ToolRow:
    """One row of the map: the DevOps tool, its MLOps counterpart, where it is here, the labs."""

    devops: str
    mlops: str
    here: str
    labs: tuple[str, ...]
    note: str = ""  # where the project picks an alternative to the usual tool, and why
    where: tuple[str, ...] = ()  # the modules of reference/ (or cluster/ files) that do it


ROWS = (
    ToolRow("Git", "Git, plus DVC for the data", "the workspace project: git + `dvc.lock`", ("02", "04"),
            where=("pipeline",)),
    ToolRow("Artifactory", "DVC remote (S3) / MLflow artifacts",
            "`workspace/dvc-remote`, `workspace/mlflow`; MinIO in the cluster", ("02", "03"),
            "a folder as the DVC remote on the laptop: the same `dvc push` as S3, with no account",
            where=("pipeline", "registry")),
    ToolRow("Jenkins / GitHub Actions", "Kubeflow Pipelines / Argo Workflows",
            "`dvc repro` of `dvc.yaml`; the same stages as an Argo WorkflowTemplate", ("04",),
            "DVC stages instead of Airflow or Kubeflow: they run on a laptop with no server",
            where=("pipeline", "cluster/manifests/base/pipeline/workflowtemplate.yaml")),
    ToolRow("Docker registry", "MLflow Model Registry", "aliases `@champion`, `@challenger`", ("03", "04"),
            "aliases, not the deprecated Staging/Production stages", where=("registry", "gate")),
    ToolRow("Docker", "Docker + KServe runtime",
            "`mlops-lab serve`: KServe's ModelServer; the predictor image in `cluster/images/`", ("05",),
            "KServe's ModelServer as a plain process on the laptop: the same code as in the image",
            where=("serve", "cluster/images/predictor.Dockerfile")),
    ToolRow("Kubernetes", "Kubernetes + GPU nodes + KServe",
            "`make cluster-up` (kind with GPU passthrough), `mlops-lab deploy --target kind`", ("09",),
            where=("deploy", "manifests", "cluster/kind/gpu.yaml")),
    ToolRow("Prometheus + Grafana", "+ Evidently",
            "`/metrics`, `monitoring/alerts.yml`, `reference/monitor.py`", ("06",),
            "promtool evaluates the alert rules on the laptop; the Prometheus server where installed",
            where=("serve", "monitor", "promserver")),
    ToolRow("canary / blue-green, rollback", "+ judged on predictions and late labels; roll back the model, the data or both",
            "`mlops-lab loop`, `mlops-lab rollback`", ("08",),
            "a small local router instead of a service mesh on the laptop; KServe's canary in the cluster",
            where=("loop",)),
    ToolRow("Vault / K8s Secrets", "same + feature-store credentials",
            "settings from the environment; cluster Secrets created by `up.sh`, never committed", ("09",),
            "no feature store: the features are computed from the request, so there is no store to "
            "hold credentials for",
            where=("config", "cluster/scripts/up.sh")),
    ToolRow("Terraform / Helm", "same + GPU node pools, quotas",
            "`cluster/helm/`, ResourceQuota with `requests.nvidia.com/gpu`", ("09",),
            "Helm values and kustomize, no Terraform: kind needs no cloud resources; the managed "
            "overlay names the node pool a Terraform module would create",
            where=("manifests", "cluster/helm/", "cluster/manifests/base/namespace/quota.yaml")),
)  # fmt: skip


def lab_for(tool: str) -> tuple[str, ...]:
    """The labs that exercise a row, found by a word of its DevOps or MLOps column."""
    word = tool.lower()
    for row in ROWS:
        if word in row.devops.lower() or word in row.mlops.lower():
            return row.labs
    raise KeyError(f"no row of the tool map mentions {tool!r}")


def render(link=lambda lab: lab) -> str:
    """The map as a markdown table; ``link`` turns a lab number into what the page shows."""
    lines = ["| you know | in MLOps | here | lab |", "|---|---|---|---|"]
    for r in ROWS:
        here = f"{r.here} ({r.note})" if r.note else r.here
        lines.append(f"| {r.devops} | {r.mlops} | {here} | {', '.join(link(n) for n in r.labs)} |")
    return "\n".join(lines)
