"""The DevOps -> MLOps tool map: what you know, what MLOps adds, where this project does it, and
the lab that exercises it. One source for lab 00 and README.md's table (between the
``<!-- tool-map:start -->`` markers; `mlops-lab lab map --write` refreshes it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ToolRow:
    devops: str
    mlops: str
    here: str
    labs: tuple[str, ...]
    note: str = ""  # where the project picks an alternative to the usual tool, and why


ROWS = (
    ToolRow("Git", "Git, plus DVC for the data", "the workspace project: git + `dvc.lock`", ("02", "04")),
    ToolRow("Artifactory", "DVC remote (S3) / MLflow artifacts",
            "`workspace/dvc-remote`, `workspace/mlflow`; MinIO in the cluster", ("02", "03")),
    ToolRow("Jenkins / GitHub Actions", "Kubeflow Pipelines / Argo Workflows",
            "`dvc repro` of `dvc.yaml`; the same stages as an Argo WorkflowTemplate", ("04",),
            "DVC stages instead of Airflow or Kubeflow: they run on a laptop with no server"),
    ToolRow("Docker registry", "MLflow Model Registry", "aliases `@champion`, `@challenger`", ("03", "04")),
    ToolRow("Docker", "Docker + KServe runtime",
            "`mlops-lab serve`: KServe's ModelServer; the predictor image in `cluster/images/`", ("05",)),
    ToolRow("Kubernetes", "Kubernetes + GPU nodes + KServe",
            "`make cluster-up` (kind with GPU passthrough), `mlops-lab deploy --target kind`", ("09",)),
    ToolRow("Prometheus + Grafana", "+ Evidently",
            "`/metrics`, `monitoring/alerts.yml`, `reference/monitor.py`", ("06",)),
    ToolRow("canary / blue-green, rollback", "+ judged on predictions and late labels; roll back the model, the data or both",
            "`mlops-lab loop`, `mlops-lab rollback`", ("08",),
            "a small local router instead of a service mesh on the laptop; KServe's canary in the cluster"),
    ToolRow("Vault / K8s Secrets", "same + feature-store credentials",
            "settings from the environment; cluster Secrets created by `up.sh`, never committed", ("09",)),
    ToolRow("Terraform / Helm", "same + GPU node pools, quotas",
            "`cluster/helm/`, ResourceQuota with `requests.nvidia.com/gpu`", ("09",)),
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
