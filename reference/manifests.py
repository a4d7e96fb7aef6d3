"""manifests: render the cluster manifests and check them offline, the way an API server would.

::

    from reference import manifests
    rendered = manifests.render_overlay("gpu")              # kubectl kustomize (or the files as they are)
    schema = manifests.kserve_schema("InferenceService")    # the real CRD, from $KSERVE_CRDS_DIR
    manifests.validate_custom_resource(isvc, schema)        # [] or the errors, unknown fields first
    manifests.validate_core(job, "1.36.4")                  # kubernetes-validate, strict
    for check in manifests.check_objects(rendered.objects):  # all of it, skips with their reasons
        print(check)

    python -m reference.manifests gpu canary                # the same from a terminal (exit 1 on errors)

No cluster and no network: every check here reads files. Each check needs something a laptop may
lack: kubectl (it builds the kustomize overlays), kubernetes-validate (it ships the Kubernetes
JSON schemas), the KServe CRD files (``$KSERVE_CRDS_DIR``: upstream data, not in this repository).
A missing one raises :class:`Unavailable`, whose message names it and how to get it;
``check_objects`` turns that into a "skipped" verdict with the reason, never a traceback.

Why a walk for unknown fields on top of jsonschema: a CRD's structural schema does not set
``additionalProperties: false``, so a plain JSON-schema check lets ``modelFormt`` (a typo of
``modelFormat``) through. The API server then drops the field, with at most a warning (only a
client that asks for strict field validation gets an error). ``unknown_fields`` reports it before
anything is applied.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
MANIFESTS = CLUSTER / "manifests"
OVERLAYS = ("cpu", "gpu", "managed", "canary")
CRDS_ENV = "KSERVE_CRDS_DIR"
# the custom resources whose CRDs ship in KServe's kserve-crd chart
KSERVE_KINDS = frozenset({"InferenceService", "ServingRuntime", "ClusterServingRuntime"})


class Unavailable(RuntimeError):
    """A check cannot run here: a tool or a setting is missing. The message says how to get it."""


def versions(cluster: Path = CLUSTER) -> dict[str, str]:
    """cluster/versions.env as a dict (plain KEY=value lines; comments and blanks skipped)."""
    out = {}
    for line in (cluster / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


# ------------------------------------------------------------------------------ rendering
@dataclass(frozen=True)
class Rendered:
    """An overlay's objects, and how they were made (kustomize, or its files read as they are)."""

    overlay: str
    objects: tuple[dict[str, Any], ...]
    built_by: str
    patched: bool  # False: read without kustomize, so the overlay's patches are not applied

    def find(self, kind: str, name: str) -> dict[str, Any]:
        """The object of this kind and name; KeyError names what the overlay does have."""
        for obj in self.objects:
            if obj["kind"] == kind and obj["metadata"]["name"] == name:
                return obj
        have = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in self.objects)
        raise KeyError(f"overlay {self.overlay} has no {kind}/{name}; it has {', '.join(have)}")


def kustomize_build(folder: Path, kubectl: str | None = None) -> tuple[dict[str, Any], ...]:
    """``kubectl kustomize folder``: what ``kubectl apply -k`` would send, patches applied."""
    kubectl = kubectl or shutil.which("kubectl")
    if not kubectl:
        raise Unavailable(
            "kubectl is not on PATH: it builds the kustomize overlays "
            "(install it: https://kubernetes.io/docs/tasks/tools/)"
        )
    proc = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {folder.name}: {proc.stderr.strip()}")
    return tuple(d for d in yaml.safe_load_all(proc.stdout) if d)


def read_kustomization(folder: Path) -> list[dict[str, Any]]:
    """A kustomization's objects without kustomize: its resources (recursively) and its
    configMapGenerators. Patches and components are NOT applied: this is the base as written."""
    k = yaml.safe_load((folder / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for entry in k.get("resources", []):
        path = (folder / entry).resolve()
        if path.is_dir():
            objects += read_kustomization(path)
        else:
            objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for gen in k.get("configMapGenerator", []):
        data = {Path(f).name: (folder / f).read_text() for f in gen.get("files", [])}
        labels = gen.get("options", {}).get("labels", {})
        metadata = {"name": gen["name"], "namespace": gen.get("namespace"), "labels": labels}
        objects.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}
        )
    return objects


def render_overlay(
    overlay: str, manifests: Path = MANIFESTS, kubectl: str | None = None
) -> Rendered:
    """One overlay of cluster/manifests, built by kustomize when kubectl is on PATH.

    Without kubectl the overlay's files are read as they are and ``built_by`` says so: every
    object is there, but an overlay's patches (the GPU quota, the CUDA image) are not applied."""
    folder = manifests / "overlays" / overlay
    if not (folder / "kustomization.yaml").is_file():
        known = sorted(p.parent.name for p in (manifests / "overlays").glob("*/kustomization.yaml"))
        raise ValueError(f"no overlay {overlay!r}: the overlays are {', '.join(known)}")
    try:
        return Rendered(overlay, kustomize_build(folder, kubectl), "kubectl kustomize", True)
    except Unavailable as e:
        how = f"its files as they are, patches not applied ({e})"
        return Rendered(overlay, tuple(read_kustomization(folder)), how, False)


# ------------------------------------------------------------------ KServe CRDs, strictly
def crds_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder of KServe's CRD files, from ``$KSERVE_CRDS_DIR``.

    Unset: :class:`Unavailable` (a laptop may not have them). Set to a folder that does not
    exist: FileNotFoundError (a typo worth hearing about)."""
    env = os.environ if environ is None else environ
    folder = env.get(CRDS_ENV, "").strip()
    if not folder:
        raise Unavailable(
            f"{CRDS_ENV} is not set: point it at a folder with KServe's CRD files "
            "(the kserve-crd chart of KSERVE_VERSION in cluster/versions.env; .ci/run sets it)"
        )
    return Path(folder)


def load_crd_schema(folder: str | Path, kind: str) -> dict[str, Any]:
    """The OpenAPI schema of ``kind``'s storage version, from the CRD files in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"the CRD folder {folder} does not exist: set {CRDS_ENV} to a folder of "
            "KServe's CRD files (serving.kserve.io_*.yaml)"
        )
    return _crd_schema(str(folder.resolve()), kind)


@cache  # the InferenceService CRD is 2 MB of YAML: parse it once per process
def _crd_schema(folder: str, kind: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader: ~10x faster
    files = sorted(Path(folder).glob("*.yaml"))
    for path in files:
        for doc in yaml.load_all(path.read_text(), Loader=loader):  # noqa: S506 (a safe loader)
            is_crd = isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"
            if is_crd and doc["spec"]["names"]["kind"] == kind:
                (version,) = [v for v in doc["spec"]["versions"] if v.get("storage")]
                return version["schema"]["openAPIV3Schema"]
    names = ", ".join(p.name for p in files) or "no .yaml files"
    raise LookupError(
        f"no CustomResourceDefinition of kind {kind} in {Path(folder).name}/ ({names})"
    )


def kserve_schema(
    kind: str = "InferenceService", environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The schema of a KServe kind from ``$KSERVE_CRDS_DIR`` (see :func:`crds_dir`)."""
    return load_crd_schema(crds_dir(environ), kind)


def unknown_fields(obj: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields of ``obj`` that ``schema`` does not declare, as dotted paths
    (``spec.predictor.model.modelFormt``). Maps (``additionalProperties``, e.g. labels) and
    subtrees marked ``x-kubernetes-preserve-unknown-fields`` accept any key."""
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
    """Every problem of a custom resource against its CRD schema: unknown fields first, then the
    schema itself (types, enums, required fields, ranges). An empty list: it would be accepted."""
    try:
        import jsonschema
    except ImportError as e:  # pragma: no cover - jsonschema comes with the dev extra
        raise Unavailable("jsonschema is not installed: pip install -e '.[dev]'") from e
    errors = [f"unknown field {f}" for f in unknown_fields(obj, schema)]
    validator = jsonschema.Draft7Validator(schema)
    errors += [
        f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(obj)
    ]
    return errors


# ------------------------------------------------------------------ core Kubernetes objects
class NoSchema(LookupError):
    """kubernetes-validate has no schema for this kind: a custom resource of another project."""


def validate_core(obj: dict[str, Any], kubernetes_version: str) -> list[str]:
    """A core object (Job, ResourceQuota, ...) against the Kubernetes schemas of that version,
    strict: an unknown field is an error. Returns [] or the first error, as kubernetes-validate
    reports one. Raises NoSchema for a kind it does not know (ServiceMonitor, WorkflowTemplate)."""
    try:
        import kubernetes_validate as kv
    except ImportError as e:
        raise Unavailable(
            "kubernetes-validate is not installed: pip install -e '.[dev]' "
            "(it ships the Kubernetes JSON schemas, so this check runs offline)"
        ) from e
    try:
        kv.validate(obj, kubernetes_version, strict=True)
    except kv.SchemaNotFoundError as e:
        raise NoSchema(f"no Kubernetes schema for {obj['apiVersion']} {obj['kind']}") from e
    except kv.ValidationError as e:
        return [f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message}"]
    return []


# ------------------------------------------------------------------------------- all of it
@dataclass(frozen=True)
class Check:
    """One object's verdict: ok, FAIL (with the errors) or skipped (with the reason)."""

    kind: str
    name: str
    against: str
    errors: tuple[str, ...] = ()
    skipped: str = ""

    @property
    def verdict(self) -> str:
        return "skipped" if self.skipped else ("FAIL" if self.errors else "ok")

    def __str__(self) -> str:
        detail = self.skipped or "; ".join(self.errors)
        return f"{self.verdict:7} {self.kind}/{self.name} ({self.against})" + (
            f": {detail}" if detail else ""
        )


def check_object(
    obj: dict[str, Any],
    kubernetes_version: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Check:
    """Check one object with whatever this machine has; a missing tool gives a skip, not an error."""
    kind, name = obj.get("kind", "?"), obj.get("metadata", {}).get("name", "?")
    if kind in KSERVE_KINDS:
        against = "the KServe CRD, unknown fields rejected"
        try:
            schema = kserve_schema(kind, environ)
        except (Unavailable, FileNotFoundError, LookupError) as e:
            return Check(kind, name, against, skipped=str(e))
        return Check(kind, name, against, tuple(validate_custom_resource(obj, schema)))
    version = kubernetes_version or versions()["KUBERNETES_VERSION"]
    against = f"Kubernetes {version} schemas, strict"
    try:
        return Check(kind, name, against, tuple(validate_core(obj, version)))
    except Unavailable as e:
        return Check(kind, name, against, skipped=str(e))
    except NoSchema as e:
        return Check(
            kind, name, "no schema here", skipped=f"{e}: another project's custom resource"
        )


def check_objects(
    objects: Iterable[dict[str, Any]],
    kubernetes_version: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Check]:
    """:func:`check_object` for each object, in order."""
    return [check_object(o, kubernetes_version, environ) for o in objects]


def main(argv: list[str] | None = None) -> int:
    """Check the named overlays (default: all); exit 1 when any object fails."""
    failed = 0
    for overlay in argv or OVERLAYS:
        rendered = render_overlay(overlay)
        print(f"overlay {overlay}: {len(rendered.objects)} objects, built by {rendered.built_by}")
        for check in check_objects(rendered.objects):
            print(f"  {check}")
            failed += check.verdict == "FAIL"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
