"""Hypothesis strategies for AdmissionReviews: valid ones, junk ones and broken ones.

Three families, because they prove different things:

- ``valid_reviews``: a real captured Pod or Job (tests/fixtures/admission)
  changed only in ways the API server accepts (labels, annotations with
  carbongate keys holding any text, scheduling gates, node affinity,
  resources, suspend, owner). These must come back with a patch that applies
  and leaves an object the API server would still accept.
- ``junk_reviews``: AdmissionReview-shaped documents whose every part may be
  missing, wrong-typed, huge, deep or unicode. These must never cause a 5xx
  or a hang, and must get a well-formed response whenever they parse.
- ``raw_bodies``: bytes, from nothing to broken JSON.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "admission"
# Every captured Pod and Job CREATE (the Deployments, CronJobs and UPDATEs are skipped by
# the webhook without a decision; junk_reviews still sends them).
POD_FIXTURES = (
    "k8s-v1.28-loopback/02_create-pod_api-canary.json",
    "k8s-v1.28-loopback/03_create-pod_nightly-train.json",
    "k8s-v1.28-loopback/06_create-pod_ci-runner-b6d64db6b.json",
    "k8s-v1.28-loopback/09_create-pod_manual-run.json",
    "k8s-v1.28-loopback/12_create-pod_deferred-etl.json",
    "k8s-v1.28-loopback/14_create-pod_log-archive-29921681.json",
    "k8s-v1.28-loopback/15_create-pod_gated-batch.json",
    "k8s-v1.28-loopback/18_create-pod_log-archive-29921682.json",
    "pod-create_bare-pod_by-serviceaccount_openshift__datree-capture.json",
    "pod-create_replicaset-controller_gke__salesforce.json",
    "pod-create_replicaset-controller_openshift__datree-capture.json",
)
JOB_FIXTURES = (
    "k8s-v1.28-loopback/01_create-job_nightly-train.json",
    "k8s-v1.28-loopback/08_create-job_manual-run.json",
    "k8s-v1.28-loopback/10_create-job_deferred-etl.json",
    "k8s-v1.28-loopback/13_create-job_log-archive-29921681.json",
    "k8s-v1.28-loopback/17_create-job_log-archive-29921682.json",
)
OTHER_FIXTURES = (
    "k8s-v1.28-loopback/04_create-deployment_ci-runner.json",
    "k8s-v1.28-loopback/05_create-cronjob_log-archive.json",
    "k8s-v1.28-loopback/11_update-job_deferred-etl.json",
    "k8s-v1.28-loopback/16_update-pod_gated-batch.json",
    "pod-update_ovn-kubernetes-controller_openshift__datree-capture.json",
)

# Namespaces the fuzzing app's namespace reader knows (see test_fuzz_mutate.NAMESPACES):
# each enforcement mode, a typo, an unreadable one, carbongate's own and an exempt one.
NAMESPACES = ("ml-team", "batch-enforce", "batch-warn", "batch-dryrun", "batch-off", "mode-typo",
              "tier1-prod", "unreadable", "carbongate", "kube-system")
REGION_LABEL = "topology.kubernetes.io/region"
CARBONGATE_INPUT_ANNOTATIONS = ("carbongate.io/max-delay", "carbongate.io/expected-duration",
                                "carbongate.io/regions", "carbongate.io/data-region",
                                "carbongate.io/data-gb", "carbongate.io/release-now")
CARBONGATE_WRITTEN_ANNOTATIONS = ("carbongate.io/decision", "carbongate.io/reason",
                                  "carbongate.io/not-before", "carbongate.io/deadline",
                                  "carbongate.io/region", "carbongate.io/intensity",
                                  "carbongate.io/policy-version")
GATE = "carbongate.io/clean-window"


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return document


_CACHE: dict[str, dict[str, Any]] = {}


def clone(document: Any) -> Any:
    """A deep copy through JSON: C speed, and one recursion level per nesting level
    (``copy.deepcopy`` needs three, and the fuzzer builds values 400 levels deep)."""
    return json.loads(json.dumps(document))


def _fixture_copy(name: str) -> dict[str, Any]:
    if name not in _CACHE:
        _CACHE[name] = fixture(name)
    copied: dict[str, Any] = clone(_CACHE[name])
    return copied


# --- building blocks the API server accepts -------------------------------------------

_ALNUM = string.ascii_lowercase + string.digits
dns_label = st.builds(
    lambda first, middle, last: first + middle + last if middle or last else first,
    st.sampled_from(_ALNUM), st.text(_ALNUM + "-", max_size=8), st.sampled_from(_ALNUM),
)
dns_subdomain = st.lists(dns_label, min_size=1, max_size=3).map(".".join)
# A qualified name's name part: [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63.
name_part = st.builds(
    lambda first, middle, last: (first + middle + last)[:63],
    st.sampled_from(string.ascii_letters + string.digits),
    st.text(string.ascii_letters + string.digits + "-_.", max_size=20),
    st.sampled_from(string.ascii_letters + string.digits),
)
qualified_name = st.one_of(name_part, st.builds(lambda p, n: f"{p}/{n}", dns_subdomain, name_part))
label_value = st.one_of(st.just(""), name_part)
# Annotation values may be any string: unicode, control characters, long (the API server
# only limits the total size of all annotations to 256 KiB).
annotation_value = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "3", "90m", "1h30m", "6h", "48h", "0s", "-1h", "1e9h", "12x", "NaN",
                     "inf", "true", "false", "GB", "GB,DE", "NO, DE ,GB", "XX", ",,", "٣h", "１ｈ",
                     "1.5h", "99999999999999999999d", "2d", "0.000001s", "1h" * 40]),
    st.builds(lambda text, count: text * count, st.text(min_size=1, max_size=8),
              st.integers(100, 8_000)),
)
carbongate_labels = st.fixed_dictionaries({}, optional={
    "carbongate.io/tier": st.sampled_from(["1", "2", "3", "4", "0", "x", "", "03", "three"]),
    "carbongate.io/team": st.sampled_from(["ml", "web", "data", "", "no-budget-team"]),
})
carbongate_annotations = st.fixed_dictionaries({}, optional={
    **{key: annotation_value for key in CARBONGATE_INPUT_ANNOTATIONS},
    **{key: annotation_value for key in CARBONGATE_WRITTEN_ANNOTATIONS},
})
quantity_cpu = st.sampled_from(["100m", "250m", "1", "2", "4", "0.5", "1500m", "64", "0"])
quantity_memory = st.sampled_from(["64Mi", "512Mi", "1Gi", "4Gi", "16Gi", "1G", "128974848", "0"])


@st.composite
def node_selector_requirement(draw: st.DrawFn) -> dict[str, Any]:
    key = draw(st.one_of(st.just(REGION_LABEL), qualified_name))
    operator = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]))
    requirement: dict[str, Any] = {"key": key, "operator": operator}
    if operator in ("In", "NotIn"):
        regions = st.sampled_from(["europe-west2", "europe-west3", "norwayeast", "us-east1"])
        requirement["values"] = draw(st.lists(st.one_of(regions, name_part), min_size=1, max_size=3,
                                              unique=True))
    elif operator in ("Gt", "Lt"):
        requirement["values"] = [str(draw(st.integers(0, 10_000)))]
    return requirement


@st.composite
def node_affinity(draw: st.DrawFn) -> dict[str, Any]:
    affinity: dict[str, Any] = {}
    if draw(st.booleans()):
        terms = draw(st.lists(st.lists(node_selector_requirement(), min_size=1, max_size=3)
                              .map(lambda exprs: {"matchExpressions": exprs}), min_size=1, max_size=3))
        affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": terms}
    if draw(st.booleans()):
        affinity["preferredDuringSchedulingIgnoredDuringExecution"] = draw(st.lists(
            st.builds(lambda weight, exprs: {"weight": weight, "preference": {"matchExpressions": exprs}},
                      st.integers(1, 100), st.lists(node_selector_requirement(), min_size=1, max_size=2)),
            max_size=3))
    return affinity


def _apply_metadata(metadata: dict[str, Any], draw: st.DrawFn) -> None:
    labels = dict(metadata.get("labels") or {})
    labels.update(draw(st.dictionaries(qualified_name, label_value, max_size=4)))
    labels.update(draw(carbongate_labels))
    if draw(st.booleans()):
        labels.pop("carbongate.io/tier", None)
    metadata["labels"] = labels
    annotations = dict(metadata.get("annotations") or {})
    annotations.update(draw(st.dictionaries(qualified_name, annotation_value, max_size=3)))
    annotations.update(draw(carbongate_annotations))
    metadata["annotations"] = annotations


def _apply_pod_spec(spec: dict[str, Any], draw: st.DrawFn, *, gates_allowed: bool) -> None:
    if gates_allowed and draw(st.booleans()):
        names = draw(st.lists(st.one_of(st.just(GATE), qualified_name), max_size=3, unique=True))
        if names:
            spec["schedulingGates"] = [{"name": name} for name in names]
        else:
            spec.pop("schedulingGates", None)
    if draw(st.booleans()):
        affinity = draw(node_affinity())
        spec["affinity"] = {"nodeAffinity": affinity} if affinity else {}
    if draw(st.booleans()):
        for container in spec.get("containers", []):
            container["resources"] = {"requests": {"cpu": draw(quantity_cpu), "memory": draw(quantity_memory)}}


@st.composite
def valid_pod(draw: st.DrawFn) -> dict[str, Any]:
    """A captured Pod CREATE object, changed only in ways the API server accepts."""
    obj: dict[str, Any] = _fixture_copy(draw(st.sampled_from(POD_FIXTURES)))["request"]["object"]
    _apply_metadata(obj["metadata"], draw)
    if draw(st.booleans()):
        obj["metadata"].pop("ownerReferences", None)
    _apply_pod_spec(obj["spec"], draw, gates_allowed=True)
    return obj


@st.composite
def valid_job(draw: st.DrawFn) -> dict[str, Any]:
    """A captured Job CREATE object, changed only in ways the API server accepts."""
    obj: dict[str, Any] = _fixture_copy(draw(st.sampled_from(JOB_FIXTURES)))["request"]["object"]
    _apply_metadata(obj["metadata"], draw)
    template = obj["spec"]["template"]
    template_metadata = template.setdefault("metadata", {})
    if draw(st.booleans()):
        template_metadata["annotations"] = {
            **(template_metadata.get("annotations") or {}),
            "carbongate.io/decision": draw(st.sampled_from(["defer", "admit", "shift", "junk", ""])),
        }
    suspend = draw(st.sampled_from([None, True, False]))
    if suspend is None:
        obj["spec"].pop("suspend", None)
    else:
        obj["spec"]["suspend"] = suspend
    # carbongate suspends a Job rather than gating its template: the template's gates stay as captured.
    _apply_pod_spec(template["spec"], draw, gates_allowed=False)
    return obj


def review_of(obj: dict[str, Any], *, namespace: str, uid: str, dry_run: bool) -> dict[str, Any]:
    """An AdmissionReview v1 CREATE request carrying ``obj``, shaped like the captured ones."""
    kind = obj["kind"]
    group = "batch" if kind == "Job" else ""
    resource = {"group": group, "version": "v1", "resource": kind.lower() + "s"}
    obj = {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid, "kind": {"group": group, "version": "v1", "kind": kind}, "resource": resource,
            "requestKind": {"group": group, "version": "v1", "kind": kind}, "requestResource": resource,
            "namespace": namespace, "operation": "CREATE", "name": obj["metadata"].get("name", ""),
            "userInfo": {"username": "system:serviceaccount:kube-system:job-controller"},
            "object": obj, "oldObject": None, "dryRun": dry_run,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }


uids = st.uuids().map(str)


@st.composite
def valid_reviews(draw: st.DrawFn) -> dict[str, Any]:
    """A Pod or Job CREATE review the API server could send."""
    obj = draw(st.one_of(valid_pod(), valid_job()))
    return review_of(obj, namespace=draw(st.sampled_from(NAMESPACES)), uid=draw(uids),
                     dry_run=draw(st.booleans()))


# --- junk -----------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=12), children, max_size=4)),
    max_leaves=16,
)


def nested(depth: int, leaf: Any = "x", *, as_list: bool = False) -> Any:
    """A value ``depth`` levels deep, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = [value] if as_list else {"a": value}
    return value


huge_text = st.builds(lambda text, count: text * count, st.text(min_size=1, max_size=6),
                      st.integers(10_000, 150_000))
deep_value = st.builds(nested, st.integers(50, 400), json_scalars, as_list=st.booleans())
odd_values = st.one_of(json_values, huge_text, deep_value)


def _paths(value: Any, prefix: tuple[Any, ...] = (), limit: int = 400) -> list[tuple[Any, ...]]:
    """Every path into a JSON document (breadth first, at most ``limit``)."""
    found: list[tuple[Any, ...]] = []
    queue: list[tuple[tuple[Any, ...], Any]] = [(prefix, value)]
    while queue and len(found) < limit:
        path, node = queue.pop(0)
        children = (node.items() if isinstance(node, dict)
                    else enumerate(node) if isinstance(node, list) else ())
        for key, child in children:
            found.append((*path, key))
            queue.append(((*path, key), child))
    return found


@st.composite
def corrupted(draw: st.DrawFn, document: dict[str, Any], *, edits: int = 3) -> dict[str, Any]:
    """``document`` with up to ``edits`` places deleted or replaced by odd values."""
    document = clone(document)
    for _ in range(draw(st.integers(1, edits))):
        paths = _paths(document)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = document
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(odd_values)
    return document


@st.composite
def junk_objects(draw: st.DrawFn) -> Any:
    """A Pod or Job with any junk in it, or something that is not an object at all."""
    return draw(st.one_of(
        st.one_of(valid_pod(), valid_job()).flatmap(lambda obj: corrupted(obj, edits=4)),
        st.builds(lambda meta, spec: {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec},
                  st.one_of(json_values, st.fixed_dictionaries({}, optional={
                      "name": odd_values, "labels": odd_values, "annotations": odd_values,
                      "ownerReferences": odd_values})),
                  st.one_of(json_values, st.fixed_dictionaries({}, optional={
                      "schedulingGates": odd_values, "affinity": odd_values,
                      "containers": odd_values, "template": odd_values, "suspend": odd_values}))),
        json_values,
    ))


@st.composite
def junk_reviews(draw: st.DrawFn) -> dict[str, Any]:
    """An AdmissionReview whose parts may each be missing, wrong-typed, huge or deep."""
    kind = draw(st.sampled_from(["Pod", "Job", "Deployment", "CronJob", "", "pod"]))
    group = draw(st.sampled_from(["", "batch", "apps", "x"]))
    base = review_of({"kind": kind, "metadata": {}}, namespace=draw(st.one_of(
        st.sampled_from(NAMESPACES), st.text(max_size=20))), uid=draw(uids), dry_run=draw(st.booleans()))
    request = base["request"]
    request["kind"] = {"group": group, "version": "v1", "kind": kind}
    request["operation"] = draw(st.sampled_from(["CREATE", "UPDATE", "DELETE", "CONNECT", "create", ""]))
    request["object"] = draw(junk_objects())
    document: dict[str, Any] = draw(st.one_of(st.just(base), corrupted(base, edits=3)))
    if draw(st.booleans()):
        captured = _fixture_copy(draw(st.sampled_from(POD_FIXTURES + JOB_FIXTURES + OTHER_FIXTURES)))
        document = draw(corrupted(captured, edits=5))
    return document


raw_bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.sampled_from([b"", b"{", b"[]", b"null", b"\x00" * 64, b"\xff\xfe{}", b'{"apiVersion": 1}',
                     b"\xef\xbb\xbf{}", b'{"request": {}}' * 3, b"1" * 5000, b'"' + b"a" * 100_000]),
    st.builds(lambda depth, as_list: json.dumps(nested(depth, as_list=as_list)).encode(),
              st.integers(1, 200), st.booleans()),
)
