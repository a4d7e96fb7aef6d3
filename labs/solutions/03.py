"""Solutions to lab 03. Try each exercise first: the check under it tells you when you're right."""

import json
import tempfile
from pathlib import Path

from reference import registry


def _table(lab):
    settings = lab.settings
    client = registry.client(settings)
    rows = []
    for v in client.search_model_versions(f"name='{settings.model_name}'"):
        metrics = client.get_run(v.run_id).data.metrics
        rows.append((str(v.version), metrics["holdout.auc"], metrics["model_size_mb"]))
    return rows


def exercise_1(lab):
    rows = _table(lab)
    best = max(auc for _, auc, _ in rows)
    good = [(size, version) for version, auc, size in rows if auc >= best - 0.003]
    return min(good)[1]


def exercise_2(lab):
    settings = lab.settings
    client = registry.client(settings)
    was = str(registry.version_by_alias(settings, registry.CHAMPION).version)
    client.set_registered_model_alias(settings.model_name, registry.CHAMPION, "1")
    if was != "1":
        client.set_model_version_tag(settings.model_name, was, "rollback", "lab03")
    else:  # nothing to roll back from: say so on v1 itself
        client.set_model_version_tag(settings.model_name, "1", "rollback", "lab03")
    return str(registry.version_by_alias(settings, registry.CHAMPION).version)


def exercise_3(lab):
    settings = lab.settings
    client = registry.client(settings)
    run_id = client.get_model_version(settings.model_name, "2").run_id
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, "gate/decision.json", tmp)
        return json.loads(Path(path).read_text())["decision"]
