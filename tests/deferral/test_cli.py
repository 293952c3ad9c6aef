"""``carbongate deferred`` lists what waits from the API; ``release`` is registered."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

from carbongate import cli
from deferral import workloads
from tests.deferral import builders
from tests.deferral.conftest import START
from tests.support import kube_api


def test_deferred_lists_pods_and_jobs_earliest_release_first(capsys) -> None:
    with kube_api.serve() as served:
        served.api.seed(builders.gated_pod("train", not_before=START + timedelta(hours=12),
                                           deadline=START + timedelta(hours=24)))
        served.api.seed(builders.suspended_job("etl", not_before=START + timedelta(hours=2),
                                               deadline=START + timedelta(hours=6)))
        served.api.seed(builders.gated_pod("hotfix", not_before=START, deadline=None,
                                           extra={workloads.RELEASE_NOW: "true"}))
        served.api.seed(builders.gated_pod("free", not_before=None, deadline=None, gates=()))
        code = cli.main(["deferred", "--api-url", served.url, "-A"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].split() == ["KIND", "NAMESPACE", "NAME", "TIER", "REASON", "NOT-BEFORE",
                              "RELEASE-BY", "DEADLINE", "WAITING", "PLAN"]
    names = [line.split()[2] for line in out[1:]]
    assert names == ["etl", "train", "hotfix"]  # hotfix has no deadline: released at once
    assert "2023-11-22T16:00:00Z" in out[1]  # etl: deadline 18:00 - 2h
    assert "break-glass (!)" in out[3]


def test_deferred_as_json_carries_the_why(capsys) -> None:
    with kube_api.serve() as served:
        served.api.seed(builders.gated_pod("train", not_before=START + timedelta(hours=12),
                                           deadline=START + timedelta(hours=24)))
        assert cli.main(["deferred", "--api-url", served.url, "--json", "-n", "ml-team"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["reason"] == "cleaner-window"
    assert row["release_by"] == "2023-11-23T10:00:00Z"
    assert row["problems"] == []


def test_deferred_reports_an_unreachable_cluster_without_a_traceback(capsys) -> None:
    with kube_api.serve() as served:
        url = served.url
    assert cli.main(["deferred", "--api-url", url]) == 1
    assert capsys.readouterr().err.startswith("carbongate deferred: cannot read the cluster")


def test_release_and_deferred_are_carbongate_subcommands() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["release"]).handler.__name__ == "_release"
    assert parser.parse_args(["deferred", "--json"]).json is True


def test_python_m_deferral_has_a_usage() -> None:
    done = subprocess.run([sys.executable, "-m", "deferral", "--help"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0
    assert "release controller" in done.stdout


def test_deferred_lists_one_namespace_or_all_with_a(capsys) -> None:
    """kubectl's manners: -n NAMESPACE, -A for every one, else the context's namespace or default."""
    with kube_api.serve() as served:
        served.api.seed(builders.gated_pod("train", not_before=START + timedelta(hours=12),
                                           deadline=START + timedelta(hours=24)))
        served.api.seed(builders.gated_pod("nightly", namespace="research", not_before=START + timedelta(hours=2),
                                           deadline=START + timedelta(hours=24)))
        listed = {}
        for flags in (["-n", "research"], ["-A"], []):
            assert cli.main(["deferred", "--api-url", served.url, "--json", *flags]) == 0
            listed[" ".join(flags)] = [row["name"] for row in json.loads(capsys.readouterr().out)]
    assert listed == {"-n research": ["nightly"], "-A": ["train", "nightly"], "": []}


def test_the_kubeconfig_contexts_namespace_is_the_default(tmp_path) -> None:
    from carbongate import kube, settings

    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "c", "user": "u", "namespace": "ml-team"}},
                     {"name": "bare", "context": {"cluster": "c", "user": "u"}}]}))
    parser = cli.build_parser()
    for argv, expected in ((["deferred"], "ml-team"), (["deferred", "--context", "bare"], "default"),
                           (["deferred", "-n", "ci"], "ci"), (["deferred", "-A"], None)):
        args = parser.parse_args([*argv, "--kubeconfig", str(config)])
        section = settings.load(environ={}, overrides={"kube": kube.overrides(args)}).kube
        assert kube.namespace(args, section, environ={}) == expected, argv


def test_an_api_server_that_is_down_gets_one_line_and_no_retry_warnings() -> None:
    """urllib3 used to log a `Retrying (Retry(total=2...))` warning per attempt before the error."""
    with kube_api.serve() as served:
        url = served.url
    done = subprocess.run([sys.executable, "-m", "carbongate.cli", "deferred", "--api-url", url, "-A"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Retrying" not in done.stderr and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if " INFO " not in line]
    assert len(errors) == 1 and errors[0].startswith("carbongate deferred: cannot read the cluster")
