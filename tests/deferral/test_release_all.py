"""``carbongate release --all`` empties a cluster of what carbongate holds, and only that.

Against the Kubernetes API double (tests/support/kube_api.py: no kube-apiserver
runs here), which enforces what the API server does to these patches: a
``test`` op that fails is 422, gates may only be removed.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path

from carbongate import cli
from deferral import workloads
from tests.deferral import builders
from tests.deferral.conftest import START
from tests.support import kube_api

OTHER_GATE = "example.com/quota"


def _seed_a_busy_cluster(api: kube_api.FakeKubeApi) -> None:
    later, deadline = START + timedelta(hours=8), START + timedelta(hours=20)
    api.seed(builders.gated_pod("train", not_before=later, deadline=deadline))
    api.seed(builders.gated_pod("shared", not_before=later, deadline=deadline,
                                gates=(OTHER_GATE, workloads.GATE)))
    api.seed(builders.gated_pod("theirs", not_before=None, deadline=None, gates=(OTHER_GATE,),
                                namespace="batch"))
    api.seed(builders.suspended_job("etl", not_before=later, deadline=deadline))
    theirs = builders.suspended_job("paused-by-kueue", not_before=None, deadline=None,
                                    namespace="batch")
    del theirs["metadata"]["annotations"][workloads.DECISION]  # suspended, but not by us
    api.seed(theirs)


def test_release_all_removes_only_our_gate_and_unsuspends_only_our_jobs(
        capsys, tmp_path: Path) -> None:
    with kube_api.serve() as served:
        _seed_a_busy_cluster(served.api)
        kubeconfig = served.write_kubeconfig(tmp_path / "kubeconfig")
        code = cli.main(["release", "--all", "--kubeconfig", str(kubeconfig)])
        api = served.api
        pods = {p["metadata"]["name"]: workloads.gates(p) for p in api.objects("Pod")}
        jobs = {j["metadata"]["name"]: j["spec"]["suspend"] for j in api.objects("Job")}
        events = api.objects("Event")
    out = capsys.readouterr().out
    assert code == 0, out
    assert pods == {"train": [], "shared": [OTHER_GATE], "theirs": [OTHER_GATE]}
    assert jobs == {"etl": False, "paused-by-kueue": True}
    assert "released 3, already gone 0, failed 0, still held 0" in out
    assert sorted((e["involvedObject"]["name"], e["reason"]) for e in events) == [
        ("etl", "Released"), ("shared", "Released"), ("train", "Released")]
    assert all("uninstall" in e["message"] for e in events)


def test_release_all_rebuilds_its_patch_when_the_pod_changed_under_it(capsys) -> None:
    """Another controller removes its own gate between our list and our patch: the
    ``test`` fails (422), we read again and remove ours from the new list."""
    with kube_api.serve() as served:
        served.api.seed(builders.gated_pod("shared", not_before=START, deadline=None,
                                           gates=(OTHER_GATE, workloads.GATE)))
        raced = []

        def other_controller(request: kube_api.RecordedRequest) -> None:
            if request.method == "PATCH" and not raced:
                raced.append(request)
                served.api.mutate("Pod", "ml-team", "shared", lambda pod: pod["spec"].update(
                    schedulingGates=[{"name": workloads.GATE}]))

        served.api.on_request = other_controller
        code = cli.main(["release", "--all", "--api-url", served.url])
        pod = served.api.get("Pod", "ml-team", "shared")
        patches = [r for r in served.api.requests if r.method == "PATCH"]
    assert code == 0, capsys.readouterr()
    assert workloads.gates(pod) == []
    assert len(patches) == 2  # the first failed its test, the second was rebuilt


def test_release_all_counts_a_workload_deleted_meanwhile_as_gone(capsys) -> None:
    with kube_api.serve() as served:
        served.api.seed(builders.gated_pod("short-lived", not_before=START, deadline=None))

        def deleted_first(request: kube_api.RecordedRequest) -> None:
            if request.method == "PATCH" and served.api.get("Pod", "ml-team", "short-lived"):
                served.api.remove("Pod", "ml-team", "short-lived")

        served.api.on_request = deleted_first
        code = cli.main(["release", "--all", "--api-url", served.url])
    assert code == 0
    assert "released 0, already gone 1, failed 0, still held 0" in capsys.readouterr().out


def test_release_all_fails_loudly_when_a_release_is_refused(capsys) -> None:
    """An API error other than a conflict is reported per workload, exit code 1."""
    with kube_api.serve() as served:
        served.api.seed(builders.gated_pod("train", not_before=START, deadline=None))
        served.api.fail_matching("PATCH", "/pods/train", code=403)
        code = cli.main(["release", "--all", "--api-url", served.url])
        still = workloads.gates(served.api.get("Pod", "ml-team", "train"))
    out = capsys.readouterr().out
    assert code == 1
    assert still == [workloads.GATE]
    assert "failed 1, still held 1" in out
    assert "failed: pod/ml-team/train" in out and "still held: pod/ml-team/train" in out


def test_release_all_on_an_empty_cluster_does_nothing(capsys) -> None:
    with kube_api.serve() as served:
        pod = builders.gated_pod("free", not_before=None, deadline=None, gates=())
        served.api.seed(copy.deepcopy(pod))
        code = cli.main(["release", "--all", "--api-url", served.url])
        writes = [r for r in served.api.requests if r.method != "GET"]
    assert code == 0
    assert writes == []
    assert "released 0" in capsys.readouterr().out
