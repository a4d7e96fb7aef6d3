"""Solutions to lab 09. Try each exercise first.

Each function gets the lab and returns the answer that the exercise's check cell tests. None of
them needs a cluster.
"""

from __future__ import annotations

from reference import deploy, manifests


def exercise_1(lab):
    """The champion's InferenceService with 10% of traffic for version 3: two fields change."""
    spec = deploy.ServingSpec(model_uri="models:/flight-delay/3", canary_percent=10)
    return deploy.render_inference_service(spec)


def exercise_2(lab):
    """The misspelled fields of the hand-edited GPU variant (``lab.facts["handwritten"]``).

    With the KServe CRDs the walk finds them; without, compare the keys with what
    render_inference_service writes for the same GPU variant (``lab.facts["gpu_isvc"]``)."""
    handwritten = lab.facts["handwritten"]
    try:
        return sorted(manifests.unknown_fields(handwritten, manifests.kserve_schema()))
    except (manifests.Unavailable, FileNotFoundError, LookupError):
        pass  # no CRDs here: compare with the object we know is right

    def diff(mine, good, path=""):
        if isinstance(mine, dict) and isinstance(good, dict):
            for key, value in mine.items():
                where = f"{path}.{key}" if path else key
                if key in good:
                    yield from diff(value, good[key], where)
                else:
                    yield where
        elif isinstance(mine, list) and isinstance(good, list):
            for i, (a, b) in enumerate(zip(mine, good, strict=False)):
                yield from diff(a, b, f"{path}[{i}]")

    return sorted(diff(handwritten, lab.facts["gpu_isvc"]))


def exercise_3(lab):
    """A pure function: the month's bill of a GPU node, always on or from zero, and the choice."""
    hours_a_month = 730  # the billing month clouds use
    days = hours_a_month / 24
    overhead = 0.25  # hours a day: the node's start, the image pull, the autoscaler's wait

    def gpu_bill(price_per_hour: float, busy_hours_per_day: float) -> dict:
        always_on = price_per_hour * hours_a_month
        busy = price_per_hour * busy_hours_per_day * days
        from_zero = min(always_on, price_per_hour * (busy_hours_per_day + overhead) * days)
        return {
            "always_on": always_on,
            "from_zero": from_zero,
            "idle": always_on - busy,
            "decision": "scale from zero" if from_zero < always_on else "keep a node warm",
        }

    return gpu_bill


def exercise_4(lab):
    """At most one GPU at a time in team-a: only the requests. prefix works for a GPU."""
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "gpus", "namespace": "team-a"},
        "spec": {"hard": {"requests.nvidia.com/gpu": "1"}},
    }
