"""The budgets ConfigMap every webhook pod mounts, written through the real ``kubernetes`` client.

The API server is the double of tests/support/kube_api.py (ConfigMap v1 with
the API server's optimistic concurrency: a replace carrying a stale
``resourceVersion`` gets 409 Conflict, a create of an existing name 409
AlreadyExists). Other writers are played with the double's ``on_request``
hook, which runs just before a request is served.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest
from kubernetes.client import exceptions as kube_errors

from carbongate import settings as settings_mod
from governance import budgets
from governance import service as service_mod
from tests.support import kube_api

NAMESPACE, NAME = "carbongate", "carbongate-budgets-published"
PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
DOC: budgets.BudgetsDocument = {
    "period": "2026-11", "generated_at": "2026-11-21T12:00:00Z",
    "teams": {"ml": {"limit_g": 800000.0, "used_g": 652000.0, "percent": 81.5, "state": "warn"}}}
LATER: budgets.BudgetsDocument = {
    "period": "2026-11", "generated_at": "2026-11-21T12:00:30Z",
    "teams": {"ml": {"limit_g": 800000.0, "used_g": 812000.0, "percent": 101.5,
                     "state": "exhausted"}}}


@pytest.fixture
def served() -> Iterator[kube_api.RunningKubeApi]:
    with kube_api.serve() as running:
        yield running


@pytest.fixture
def sink(served: kube_api.RunningKubeApi) -> budgets.ConfigMapSink:
    return budgets.ConfigMapSink(api=kubernetes.client.CoreV1Api(served.api_client()),
                                 namespace=NAMESPACE, config_map=NAME)


def published(served: kube_api.RunningKubeApi) -> budgets.BudgetsDocument:
    stored = served.api.get("ConfigMap", NAMESPACE, NAME)
    assert stored is not None, "no ConfigMap"
    doc: budgets.BudgetsDocument = json.loads(stored["data"][budgets.CONFIGMAP_KEY])
    return doc


def writes(served: kube_api.RunningKubeApi) -> list[str]:
    """The sink's writes, in order: POST (create) and PUT (replace)."""
    return [r.method for r in served.api.requests
            if r.path.startswith(PATH) and r.method in ("POST", "PUT")]


def test_the_first_publication_creates_the_config_map(
        served: kube_api.RunningKubeApi, sink: budgets.ConfigMapSink) -> None:
    sink.publish(DOC)
    stored = served.api.get("ConfigMap", NAMESPACE, NAME)
    assert stored is not None
    assert stored["data"] == {"budgets.json": budgets.render(DOC)}
    assert stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "carbongate-governance"
    assert writes(served) == ["POST"]


def test_a_new_document_replaces_the_key_and_keeps_what_others_put_beside_it(
        served: kube_api.RunningKubeApi, sink: budgets.ConfigMapSink) -> None:
    sink.publish(DOC)
    served.api.mutate("ConfigMap", NAMESPACE, NAME,
                      lambda cm: cm["data"].update({"README": "written by governance"}))
    sink.publish(LATER)
    assert published(served) == LATER
    stored = served.api.get("ConfigMap", NAMESPACE, NAME)
    assert stored is not None and stored["data"]["README"] == "written by governance"
    assert writes(served) == ["POST", "PUT"]


def test_an_unchanged_document_is_not_written_again(
        served: kube_api.RunningKubeApi, sink: budgets.ConfigMapSink) -> None:
    sink.publish(DOC)
    version = served.api.get("ConfigMap", NAMESPACE, NAME)["metadata"]["resourceVersion"]
    sink.publish(DOC)
    sink.publish(json.loads(json.dumps(DOC)))  # equal, not the same object
    assert writes(served) == ["POST"]
    # No new resourceVersion: the kubelets and the webhook pods have nothing to reload.
    assert served.api.get("ConfigMap", NAMESPACE, NAME)["metadata"]["resourceVersion"] == version


def test_a_document_that_differs_only_in_when_it_was_generated_is_not_written_again(
        served: kube_api.RunningKubeApi, sink: budgets.ConfigMapSink) -> None:
    sink.publish(DOC)
    sink.publish({**DOC, "generated_at": "2099-01-01T00:00:00Z"})
    assert writes(served) == ["POST"]
    assert published(served) == DOC


def test_a_stored_key_that_is_not_json_is_replaced(
        served: kube_api.RunningKubeApi, sink: budgets.ConfigMapSink) -> None:
    sink.publish(DOC)
    served.api.mutate("ConfigMap", NAMESPACE, NAME, lambda cm: cm["data"].update({"budgets.json": "{oops"}))
    sink.publish(DOC)
    assert published(served) == DOC


def test_a_write_that_lost_a_race_reads_again_and_wins_the_next(
        served: kube_api.RunningKubeApi, sink: budgets.ConfigMapSink) -> None:
    sink.publish(DOC)
    raced: list[bool] = []

    def another_writer(request: kube_api.RecordedRequest) -> None:
        if request.method == "PUT" and not raced:
            raced.append(True)
            served.api.mutate("ConfigMap", NAMESPACE, NAME,
                              lambda cm: cm["metadata"].setdefault("annotations", {}).update(
                                  {"example.com/touched": "yes"}))

    served.api.on_request = another_writer
    sink.publish(LATER)
    assert writes(served) == ["POST", "PUT", "PUT"]  # the first replace got 409
    assert published(served) == LATER
    stored = served.api.get("ConfigMap", NAMESPACE, NAME)
    assert stored is not None and stored["metadata"]["annotations"] == {"example.com/touched": "yes"}


def test_a_create_that_lost_a_race_replaces_what_the_winner_created(
        served: kube_api.RunningKubeApi, sink: budgets.ConfigMapSink) -> None:
    def another_replica(request: kube_api.RecordedRequest) -> None:
        if request.method == "POST" and served.api.get("ConfigMap", NAMESPACE, NAME) is None:
            served.api.seed({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": NAME, "namespace": NAMESPACE},
                             "data": {budgets.CONFIGMAP_KEY: budgets.render(DOC)}})

    served.api.on_request = another_replica
    sink.publish(LATER)
    assert writes(served) == ["POST", "PUT"]  # 409 AlreadyExists, then read and replace
    assert published(served) == LATER


def test_a_config_map_that_keeps_changing_gives_up_with_a_conflict(
        served: kube_api.RunningKubeApi, sink: budgets.ConfigMapSink) -> None:
    sink.publish(DOC)

    def always_first(request: kube_api.RecordedRequest) -> None:
        if request.method == "PUT":
            served.api.mutate("ConfigMap", NAMESPACE, NAME, lambda cm: None)

    served.api.on_request = always_first
    with pytest.raises(budgets.ConfigMapConflict, match=f"{NAMESPACE}/{NAME}.*3 attempts"):
        sink.publish(LATER)
    assert writes(served) == ["POST", "PUT", "PUT", "PUT"]
    assert published(served) == DOC


def test_a_deleted_config_map_is_created_again(
        served: kube_api.RunningKubeApi, sink: budgets.ConfigMapSink) -> None:
    sink.publish(DOC)
    served.api.remove("ConfigMap", NAMESPACE, NAME)
    sink.publish(DOC)  # the read answers 404: the same document goes into a new ConfigMap
    assert published(served) == DOC
    assert writes(served) == ["POST", "POST"]


def test_other_api_errors_are_not_retried_and_reach_the_caller(
        served: kube_api.RunningKubeApi, sink: budgets.ConfigMapSink) -> None:
    sink.publish(DOC)
    served.api.fail_matching("PUT", f"{PATH}/{NAME}", code=500)
    with pytest.raises(kube_errors.ApiException) as raised:
        sink.publish(LATER)
    assert raised.value.status == 500
    assert writes(served) == ["POST", "PUT"]


def test_a_failing_config_map_does_not_keep_the_document_from_the_other_sinks(
        served: kube_api.RunningKubeApi, sink: budgets.ConfigMapSink, tmp_path: Path) -> None:
    served.api.fail_next(1, code=403)
    failed: list[str] = []
    budgets.publish(DOC, [sink, budgets.FileSink(tmp_path / "budgets.json")],
                    on_failure=failed.append)
    assert failed == ["configmap"]
    assert json.loads((tmp_path / "budgets.json").read_text(encoding="utf-8")) == DOC


def test_the_service_publishes_to_the_config_map_only_when_one_is_named(
        served: kube_api.RunningKubeApi, tmp_path: Path) -> None:
    core = kubernetes.client.CoreV1Api(served.api_client())

    def settings(**governance: object) -> settings_mod.Settings:
        return settings_mod.load(environ={}, overrides={"governance": {
            "budgets_snapshot_path": tmp_path / "budgets.json", **governance}})

    assert [s.name for s in service_mod.sinks(settings(), core=core)] == ["file"]
    named = service_mod.sinks(settings(budgets_configmap=NAME, namespace="platform"), core=core)
    assert [s.name for s in named] == ["file", "configmap"]
    configmap = named[1]
    assert isinstance(configmap, budgets.ConfigMapSink)
    assert (configmap.namespace, configmap.config_map) == ("platform", NAME)
