"""Render carbongate's kustomizations without kubectl, and keep the policy list in sync.

Two commands::

    python deploy/render.py build deploy/overlays/dev > carbongate.yaml
    python deploy/render.py sync-policies

``build`` implements the part of kustomize (v5) that ``deploy/`` uses, with
kustomize's own semantics, so that CI machines and the tests can render and
validate every overlay where no ``kubectl`` is installed; where one is, the
tests compare this renderer's output with ``kubectl kustomize`` object for
object. Supported: ``resources`` (files and kustomization directories),
``namespace``, ``labels``, ``configMapGenerator`` / ``secretGenerator``
(``files``, ``literals``, ``envs``, ``type``, ``options``, ``generatorOptions``)
with kustomize's content-hash name suffix and the rewriting of references to
the suffixed names, ``patches`` (strategic merge, identified by the patch's
own kind and name, including ``$patch: delete``), ``images`` and
``replacements``. Anything else in a kustomization is refused with its name,
never silently ignored.

``sync-policies`` regenerates ``policies/kustomization.yaml`` (the ConfigMap
of every production ``.rego`` and ``data.json`` under ``policies/rego/``) and
``deploy/base/policy-files.yaml`` (the volume ``items`` that put each
flat ConfigMap key back at its path, so the webhook loads the same tree, with
the same policy digest, as ``carbongate review`` does locally). Run it after
adding or removing a policy file; a test fails until you do.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = frozenset({
    "apiVersion", "kind", "resources", "namespace", "labels", "configMapGenerator",
    "secretGenerator", "generatorOptions", "patches", "images", "replacements",
})
CLUSTER_SCOPED_KINDS = frozenset({
    "Namespace", "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration", "CustomResourceDefinition", "PersistentVolume",
    "StorageClass", "PriorityClass", "ClusterIssuer", "APIService",
})
# kustomize's "legacy" output order: these kinds first, in this order ...
ORDER_FIRST = (
    "Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition",
    "ServiceAccount", "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding",
    "ClusterRoleBinding", "ConfigMap", "Secret", "Endpoints", "Service", "LimitRange",
    "PriorityClass", "PersistentVolume", "PersistentVolumeClaim", "Deployment",
    "StatefulSet", "CronJob", "PodDisruptionBudget",
)
# ... these last, everything else in between.
ORDER_LAST = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
# Strategic-merge keys of the lists deploy/ patches (from the Kubernetes API's
# x-kubernetes-patch-merge-key); other lists are replaced, as kustomize does.
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "volumes": "name", "env": "name",
    "volumeMounts": "mountPath", "imagePullSecrets": "name", "webhooks": "name",
}

REPO_ROOT = Path(__file__).resolve().parent.parent
POLICY_ROOT = REPO_ROOT / "policies"
POLICY_KUSTOMIZATION = POLICY_ROOT / "kustomization.yaml"
POLICY_FILES_PATCH = REPO_ROOT / "deploy" / "base" / "policy-files.yaml"


class RenderError(ValueError):
    """The kustomization cannot be rendered; the message names the file and the field."""


Resource = dict[str, Any]


# --- build -------------------------------------------------------------------------------


def build(directory: Path) -> list[Resource]:
    """Render the kustomization in ``directory`` into a list of objects, kustomize-ordered.

    Generated names get their hash suffix once, after the whole tree is
    built, so that references from any level (a base Deployment naming a
    ConfigMap generated in another kustomization) are rewritten together.
    """
    resources = _build(Path(directory).resolve(), stack=())
    _apply_hash_suffixes(resources)
    return sorted(resources, key=_order)


def _build(directory: Path, *, stack: tuple[Path, ...]) -> list[Resource]:
    if directory in stack:
        raise RenderError(f"{directory}: kustomization cycle through {[str(p) for p in stack]}")
    spec = _read_kustomization(directory)
    resources: list[Resource] = []
    for entry in spec.get("resources") or []:
        resources += _resource(directory, str(entry), stack=(*stack, directory))
    for kind, key in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for generator in spec.get(key) or []:
            resources.append(_generate(directory, kind, generator, spec.get("generatorOptions")))
    _check_unique(directory, resources)
    for patch in spec.get("patches") or []:
        resources = _apply_patch(directory, resources, patch)
    if spec.get("namespace"):
        _set_namespace(resources, str(spec["namespace"]))
    for label in spec.get("labels") or []:
        _add_labels(directory, resources, label)
    for image in spec.get("images") or []:
        _set_image(resources, image)
    for replacement in spec.get("replacements") or []:
        _replace(directory, resources, replacement)
    return resources


def _read_kustomization(directory: Path) -> dict[str, Any]:
    for name in KUSTOMIZATION_FILES:
        path = directory / name
        if path.is_file():
            spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if not isinstance(spec, dict):
                raise RenderError(f"{path}: not a mapping")
            unknown = set(spec) - SUPPORTED_FIELDS
            if unknown:
                raise RenderError(f"{path}: fields this renderer does not implement: {sorted(unknown)}")
            return spec
    raise RenderError(f"{directory}: no kustomization.yaml")


def _resource(directory: Path, entry: str, *, stack: tuple[Path, ...]) -> list[Resource]:
    """A file below the root, or a kustomization directory anywhere (as kustomize allows)."""
    path = (directory / entry).resolve()
    if path.is_dir():
        return _build(path, stack=stack)
    _check_within(directory, path, entry)
    return list(_documents(path))


def _documents(path: Path) -> Iterator[Resource]:
    try:
        loaded = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as error:
        raise RenderError(f"{path}: {error}") from error
    for document in loaded:
        if document is None:
            continue
        if not isinstance(document, dict) or "kind" not in document:
            raise RenderError(f"{path}: every document must be a Kubernetes object")
        yield document


def _check_within(directory: Path, path: Path, entry: str) -> None:
    """kustomize's default load restrictor: files only from the kustomization's tree."""
    if not path.is_relative_to(directory):
        raise RenderError(
            f"{directory}: {entry!r} is outside the kustomization root "
            "(kustomize's LoadRestrictionsRootOnly refuses it too)"
        )


def _check_unique(directory: Path, resources: Sequence[Resource]) -> None:
    seen: set[tuple[str, str, str]] = set()
    for resource in resources:
        identity = _identity(resource)
        if identity in seen:
            raise RenderError(f"{directory}: {identity} is defined twice")
        seen.add(identity)


def _identity(resource: Mapping[str, Any]) -> tuple[str, str, str]:
    metadata = resource.get("metadata") or {}
    return (str(resource["kind"]), str(metadata.get("namespace") or ""), str(metadata.get("name")))


def _order(resource: Mapping[str, Any]) -> tuple[int, str, str, str]:
    kind = str(resource["kind"])
    if kind in ORDER_FIRST:
        rank = ORDER_FIRST.index(kind)
    elif kind in ORDER_LAST:
        rank = len(ORDER_FIRST) + 1 + ORDER_LAST.index(kind)
    else:
        rank = len(ORDER_FIRST)
    metadata = resource.get("metadata") or {}
    # kustomize sorts objects without a namespace after those with one ("~X").
    return (rank, f"{resource.get('apiVersion')}/{kind}", str(metadata.get("namespace") or "~X"),
            str(metadata.get("name")))


# --- generators --------------------------------------------------------------------------


def _generate(
    directory: Path, kind: str, generator: Mapping[str, Any], global_options: Any
) -> Resource:
    name = generator.get("name")
    if not name:
        raise RenderError(f"{directory}: a {kind} generator without a name")
    if generator.get("behavior", "create") != "create":
        raise RenderError(f"{directory}: generator {name}: only behavior 'create' is implemented")
    pairs = _generator_pairs(directory, generator)
    options = {**(global_options or {}), **(generator.get("options") or {})}
    metadata: dict[str, Any] = {"name": name}
    if generator.get("namespace"):
        metadata["namespace"] = generator["namespace"]
    if options.get("labels"):
        metadata["labels"] = dict(options["labels"])
    if options.get("annotations"):
        metadata["annotations"] = dict(options["annotations"])
    resource: Resource = {"apiVersion": "v1", "kind": kind, "metadata": metadata}
    if kind == "ConfigMap":
        resource["data"] = {key: value.decode("utf-8") for key, value in pairs.items()}
    else:
        resource["type"] = generator.get("type", "Opaque")
        resource["data"] = {key: _secret_base64(value) for key, value in pairs.items()}
    if not options.get("disableNameSuffixHash", False):
        resource["metadata"]["annotations"] = {
            **resource["metadata"].get("annotations", {}), _HASH_MARK: "true"}
    return resource


def _secret_base64(value: bytes) -> str:
    """Base64 as kustomize writes Secret data: lines of 70, each ending in a newline
    when there is more than one line. The content hash covers this exact text;
    the API server's decoder skips the newlines."""
    encoded = base64.b64encode(value).decode("ascii")
    if len(encoded) < 70:
        return encoded
    return "".join(encoded[i:i + 70] + "\n" for i in range(0, len(encoded), 70))


# Marks a generated object whose name still needs its suffix (removed on output).
_HASH_MARK = "render.carbongate.io/needs-hash"


def _generator_pairs(directory: Path, generator: Mapping[str, Any]) -> dict[str, bytes]:
    pairs: dict[str, bytes] = {}
    for literal in generator.get("literals") or []:
        key, sep, value = str(literal).partition("=")
        if not sep:
            raise RenderError(f"{directory}: literal {literal!r} is not KEY=VALUE")
        pairs[key] = value.encode("utf-8")
    for entry in generator.get("files") or []:
        key, sep, relative = str(entry).partition("=")
        if not sep:
            key, relative = Path(str(entry)).name, str(entry)
        pairs[key] = _read_below(directory, relative)
    for env_file in generator.get("envs") or []:
        pairs.update(_env_pairs(directory, str(env_file)))
    return pairs


def _read_below(directory: Path, relative: str) -> bytes:
    path = (directory / relative).resolve()
    _check_within(directory, path, relative)
    try:
        return path.read_bytes()
    except OSError as error:
        raise RenderError(f"{directory}: cannot read {relative}: {error.strerror}") from error


def _env_pairs(directory: Path, relative: str) -> dict[str, bytes]:
    """KEY=VALUE lines; blank lines and # comments skipped, as kustomize reads env files."""
    pairs: dict[str, bytes] = {}
    for number, line in enumerate(_read_below(directory, relative).decode("utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise RenderError(f"{directory}/{relative}:{number}: not KEY=VALUE")
        pairs[key] = value.encode("utf-8")
    return pairs


def content_hash(resource: Mapping[str, Any]) -> str:
    """kustomize's name suffix: sha256 of a canonical JSON encoding, 10 characters, vowels avoided.

    Mirrors sigs.k8s.io/kustomize/api/hasher: for a ConfigMap the encoding of
    {kind, name, data}, for a Secret {kind, type, name, data}, with Go's
    json.Marshal conventions (sorted keys, no spaces, <, > and & escaped).
    kustomize v5 encodes the name as "" (two generators with the same content
    get the same suffix); the tests check this against ``kubectl kustomize``.
    """
    encoded: dict[str, Any] = {
        "kind": resource["kind"], "name": "",
        "data": resource.get("data") or {},
    }
    if resource["kind"] == "Secret":
        encoded["type"] = resource.get("type", "Opaque")
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _apply_hash_suffixes(resources: list[Resource]) -> None:
    """Suffix generated names once everything that changes their content has run."""
    renamed: dict[tuple[str, str | None, str], str] = {}
    for resource in resources:
        annotations = resource["metadata"].get("annotations") or {}
        if annotations.pop(_HASH_MARK, None) is None:
            continue
        if not annotations:
            resource["metadata"].pop("annotations")
        old = resource["metadata"]["name"]
        new = f"{old}-{content_hash(resource)}"
        resource["metadata"]["name"] = new
        renamed[(resource["kind"], resource["metadata"].get("namespace"), old)] = new
    if renamed:
        _rewrite_references(resources, renamed)


# --- references to generated names --------------------------------------------------------


def _rewrite_references(
    resources: list[Resource], renamed: Mapping[tuple[str, str | None, str], str]
) -> None:
    for resource in resources:
        namespace = resource.get("metadata", {}).get("namespace")
        for spec in _pod_specs(resource):
            for kind, holder, field in _references(spec):
                key = (kind, namespace, str(holder.get(field)))
                if key in renamed:
                    holder[field] = renamed[key]


def _pod_specs(resource: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    spec = resource.get("spec") or {}
    if resource.get("kind") == "Pod":
        yield spec
    template = (spec.get("template") or {}).get("spec")
    if isinstance(template, dict):
        yield template
    job_template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    if isinstance(job_template.get("spec"), dict):
        yield job_template["spec"]


def _references(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(kind, the dict holding the name, the field) for each ConfigMap/Secret a pod names."""
    for volume in spec.get("volumes") or []:
        if "configMap" in volume:
            yield "ConfigMap", volume["configMap"], "name"
        if "secret" in volume:
            yield "Secret", volume["secret"], "secretName"
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "configMap" in source:
                yield "ConfigMap", source["configMap"], "name"
            if "secret" in source:
                yield "Secret", source["secret"], "name"
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        for env in container.get("env") or []:
            source = env.get("valueFrom") or {}
            if "configMapKeyRef" in source:
                yield "ConfigMap", source["configMapKeyRef"], "name"
            if "secretKeyRef" in source:
                yield "Secret", source["secretKeyRef"], "name"
        for env_from in container.get("envFrom") or []:
            if "configMapRef" in env_from:
                yield "ConfigMap", env_from["configMapRef"], "name"
            if "secretRef" in env_from:
                yield "Secret", env_from["secretRef"], "name"
    for pull in spec.get("imagePullSecrets") or []:
        yield "Secret", pull, "name"


# --- transformers --------------------------------------------------------------------------


def _set_namespace(resources: list[Resource], namespace: str) -> None:
    for resource in resources:
        if resource["kind"] not in CLUSTER_SCOPED_KINDS:
            resource.setdefault("metadata", {})["namespace"] = namespace


def _add_labels(directory: Path, resources: list[Resource], label: Mapping[str, Any]) -> None:
    if label.get("includeSelectors"):
        raise RenderError(f"{directory}: labels with includeSelectors are not implemented")
    pairs = {str(k): str(v) for k, v in (label.get("pairs") or {}).items()}
    for resource in resources:
        resource.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        if label.get("includeTemplates"):
            template = (resource.get("spec") or {}).get("template")
            if isinstance(template, dict):
                template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _set_image(resources: list[Resource], image: Mapping[str, Any]) -> None:
    name = str(image["name"])
    for resource in resources:
        for spec in _pod_specs(resource):
            for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
                current = str(container.get("image", ""))
                if _image_name(current) == name:
                    container["image"] = _new_image(current, image)


def _image_name(reference: str) -> str:
    without_digest = reference.split("@", 1)[0]
    slash = without_digest.rfind("/")
    colon = without_digest.rfind(":")
    return without_digest[:colon] if colon > slash else without_digest


def _new_image(current: str, image: Mapping[str, Any]) -> str:
    name = str(image.get("newName") or _image_name(current))
    if image.get("digest"):
        return f"{name}@{image['digest']}"
    if image.get("newTag"):
        return f"{name}:{image['newTag']}"
    rest = current[len(_image_name(current)):]
    return name + rest


# --- patches -------------------------------------------------------------------------------


def _apply_patch(directory: Path, resources: list[Resource], patch: Mapping[str, Any]) -> list[Resource]:
    if patch.get("target"):
        raise RenderError(f"{directory}: patches with a target (JSON 6902) are not implemented")
    if "path" in patch:
        documents = list(_documents(_checked_path(directory, str(patch["path"]))))
    else:
        documents = [d for d in yaml.safe_load_all(str(patch.get("patch", ""))) if d]
    for document in documents:
        resources = _apply_one_patch(directory, resources, document)
    return resources


def _checked_path(directory: Path, relative: str) -> Path:
    path = (directory / relative).resolve()
    _check_within(directory, path, relative)
    return path


def _apply_one_patch(directory: Path, resources: list[Resource], patch: Resource) -> list[Resource]:
    name = (patch.get("metadata") or {}).get("name")
    matches = [r for r in resources if r["kind"] == patch["kind"] and r["metadata"].get("name") == name]
    if len(matches) != 1:
        raise RenderError(f"{directory}: patch for {patch['kind']}/{name} matches {len(matches)} objects")
    (target,) = matches
    if patch.get("$patch") == "delete":
        return [r for r in resources if r is not target]
    body = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")}
    merged = strategic_merge(target, body)
    return [merged if r is target else r for r in resources]


def strategic_merge(original: Any, patch: Any, *, field: str = "") -> Any:
    """A strategic merge patch over maps and the keyed lists of MERGE_KEYS.

    ``null`` deletes a key; ``$patch: delete`` on a list element deletes it;
    lists without a known merge key are replaced, as in kustomize.
    """
    if isinstance(original, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(original)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value, field=key)
            else:
                merged[key] = _without_directives(value)
        return merged
    if isinstance(original, list) and isinstance(patch, list):
        key = _merge_key(field, original, patch)
        if key is not None:
            return _merge_list(original, patch, key)
    return _without_directives(patch)


def _merge_key(field: str, original: list[Any], patch: list[Any]) -> str | None:
    if field == "ports":
        items = [*original, *patch]
        return "containerPort" if any("containerPort" in i for i in items) else "port"
    return MERGE_KEYS.get(field)


def _merge_list(original: list[Any], patch: list[Any], key: str) -> list[Any]:
    """Keyed merge; the patch's elements first, in its order, then the untouched ones.

    That is the order kustomize's merge produces (checked against kubectl).
    """
    remaining = [copy.deepcopy(item) for item in original]
    merged: list[Any] = []
    for item in patch:
        position = next((i for i, old in enumerate(remaining) if old.get(key) == item.get(key)), None)
        old_item = remaining.pop(position) if position is not None else None
        if item.get("$patch") == "delete":
            continue
        merged.append(_without_directives(item) if old_item is None
                      else strategic_merge(old_item, item))
    return merged + remaining


def _without_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_directives(v) for k, v in value.items()
                if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_without_directives(v) for v in value]
    return copy.deepcopy(value)


# --- replacements --------------------------------------------------------------------------


def _replace(directory: Path, resources: list[Resource], replacement: Mapping[str, Any]) -> None:
    source = replacement["source"]
    sources = [r for r in resources if _selected(r, source)]
    if len(sources) != 1:
        raise RenderError(f"{directory}: replacement source {dict(source)} matches {len(sources)} objects")
    values = list(_field_values(sources[0], _field_path(source.get("fieldPath", "metadata.name"))))
    if len(values) != 1:
        raise RenderError(f"{directory}: replacement source field {source.get('fieldPath')} not found")
    for target in replacement.get("targets") or []:
        create = bool((target.get("options") or {}).get("create"))
        for resource in resources:
            if not _selected(resource, target.get("select") or {}):
                continue
            for field_path in target.get("fieldPaths") or []:
                _set_field(resource, _field_path(str(field_path)), values[0], create=create)


def _selected(resource: Mapping[str, Any], selector: Mapping[str, Any]) -> bool:
    """Names are compared before hash suffixes are added, as kustomize's replacements see them."""
    metadata = resource.get("metadata") or {}
    if selector.get("kind") and resource.get("kind") != selector["kind"]:
        return False
    if selector.get("namespace") and metadata.get("namespace") != selector["namespace"]:
        return False
    return not selector.get("name") or metadata.get("name") == selector["name"]


def _field_path(text: str) -> list[str]:
    """kustomize field paths: dot-separated, [key.with.dots] in brackets, * for every element."""
    parts: list[str] = []
    current = ""
    index = 0
    while index < len(text):
        char = text[index]
        if char == "[":
            end = text.index("]", index)
            parts.append(text[index + 1:end])
            index = end + 1
            if index < len(text) and text[index] == ".":
                index += 1
            continue
        if char == ".":
            parts.append(current)
            current = ""
        else:
            current += char
        index += 1
    if current:
        parts.append(current)
    return parts


def _field_values(node: Any, path: Sequence[str]) -> Iterator[Any]:
    if not path:
        yield node
        return
    head, rest = path[0], path[1:]
    if head == "*" and isinstance(node, list):
        for item in node:
            yield from _field_values(item, rest)
    elif isinstance(node, dict) and head in node:
        yield from _field_values(node[head], rest)


def _set_field(node: Any, path: Sequence[str], value: Any, *, create: bool) -> None:
    head, rest = path[0], path[1:]
    if head == "*":
        for item in node if isinstance(node, list) else []:
            _set_field(item, rest, value, create=create)
        return
    if not isinstance(node, dict):
        return
    if not rest:
        if head in node or create:
            node[head] = copy.deepcopy(value)
        return
    if head not in node:
        if not create:
            return
        node[head] = {}
    _set_field(node[head], rest, value, create=create)


# --- the policy list -------------------------------------------------------------------------


def policy_files(rego_dir: Path) -> list[str]:
    """Production policy files (no tests) relative to ``rego_dir``: what the webhook loads."""
    found = [
        path.relative_to(rego_dir).as_posix()
        for path in rego_dir.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(rego_dir).parts)
        and (path.name == "data.json" or (path.suffix == ".rego" and not path.name.endswith("_test.rego")))
    ]
    return sorted(found)


def policy_key(relative: str) -> str:
    """A flat ConfigMap key for a policy file: its path with / turned into '.'."""
    return relative.replace("/", ".")


GENERATED_HEADER = (
    "# Generated by `python deploy/render.py sync-policies` from the files under\n"
    "# policies/rego/ (tests left out): edit the policies, then run it again.\n"
)


def policy_kustomization_text(files: Sequence[str]) -> str:
    """``policies/kustomization.yaml``: the ConfigMap every webhook pod mounts.

    It lives beside the policies because kustomize only reads files at or below
    a kustomization (its load restrictor), and ``kubectl apply -k`` cannot relax
    that; deploy/base includes this directory as a resource.
    """
    body = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "configMapGenerator": [{
            "name": "carbongate-policies",
            "files": [f"{policy_key(f)}=rego/{f}" for f in files],
        }],
    }
    return GENERATED_HEADER + "# deploy/base includes this directory; see docs/deploy.md.\n" + _dump(body)


# Every Deployment that loads the policies: the webhook (pushes them into its
# OPA sidecar), the deferral controller (release policy, embedded engine) and
# governance (the platform config's home region and default tier).
POLICY_CONSUMERS = ("carbongate-webhook", "carbongate-deferral", "carbongate-governance")


def policy_files_patch_text(files: Sequence[str]) -> str:
    """Each consumer's ``policies`` volume, every flat key put back at its path."""
    items = [{"key": policy_key(f), "path": f} for f in files]
    documents = [{
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "carbongate"},
        "spec": {"template": {"spec": {"volumes": [{
            "name": "policies",
            "configMap": {"name": "carbongate-policies", "items": items},
        }]}}},
    } for name in POLICY_CONSUMERS]
    return GENERATED_HEADER + "---\n".join(_dump(d) for d in documents)


def sync_policies(*, rego_dir: Path, kustomization: Path, patch: Path) -> bool:
    """Write both generated files; True when either changed."""
    files = policy_files(rego_dir)
    changed = False
    for path, text in ((kustomization, policy_kustomization_text(files)),
                       (patch, policy_files_patch_text(files))):
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed = True
    return changed


# --- output ---------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    """Multi-line strings (Rego, JSON, PEM) as literal blocks, as kubectl prints them."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def _dump(document: Any) -> str:
    return str(yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False))


def dump_all(resources: Sequence[Resource]) -> str:
    """The objects as one YAML stream for ``kubectl apply -f -``."""
    return "---\n".join(_dump(resource) for resource in resources)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python deploy/render.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_command = commands.add_parser("build", help="render a kustomization to standard output")
    build_command.add_argument("directory", type=Path)
    commands.add_parser("sync-policies", help="regenerate the policy ConfigMap list and volume items")
    args = parser.parse_args(argv)
    if args.command == "sync-policies":
        changed = sync_policies(rego_dir=POLICY_ROOT / "rego", kustomization=POLICY_KUSTOMIZATION,
                                patch=POLICY_FILES_PATCH)
        print("updated" if changed else "already in sync", file=sys.stderr)
        return 0
    try:
        sys.stdout.write(dump_all(build(args.directory)))
    except RenderError as error:
        print(f"render: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
