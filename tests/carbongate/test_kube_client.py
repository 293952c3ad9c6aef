"""carbongate.kube: one client construction, kubectl's fallback, for every component.

The API server is the double of tests/support/kube_api.py on 127.0.0.1 (no
kube-apiserver runs here); the kubeconfig files are real ones read by the
real ``kubernetes`` client. The in-cluster case uses the client's own loader
with the service-account environment and token file a pod would have.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest
from kubernetes.config import incluster_config

from carbongate import kube
from carbongate import settings as settings_mod
from tests.support import kube_api


@pytest.fixture
def served() -> Iterator[kube_api.RunningKubeApi]:
    with kube_api.serve() as running:
        running.api.seed({"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": "ml-team", "labels": {"carbongate.io/tier": "3"}}})
        yield running


@pytest.fixture
def no_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME without ~/.kube/config and no in-cluster environment."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(incluster_config.SERVICE_HOST_ENV_NAME, raising=False)
    return home


def _labels(client: kubernetes.client.ApiClient) -> dict[str, str]:
    namespace = kubernetes.client.CoreV1Api(client).read_namespace("ml-team", _request_timeout=5)
    return dict(namespace.metadata.labels)


def test_a_kubeconfig_context_reaches_the_cluster_it_names(
        served: kube_api.RunningKubeApi, tmp_path: Path, no_home: Path) -> None:
    path = served.write_kubeconfig(tmp_path / "config", current=False)
    client = kube.api_client(settings_mod.KubeSettings(kubeconfig=path, context="double"),
                             environ={})
    assert _labels(client) == {"carbongate.io/tier": "3"}
    other = kube.api_client(settings_mod.KubeSettings(kubeconfig=path), environ={})
    assert other.configuration.host == "http://127.0.0.1:9"  # its current-context


def test_kubeconfig_from_the_environment_as_kubectl_reads_it(
        served: kube_api.RunningKubeApi, tmp_path: Path, no_home: Path) -> None:
    path = served.write_kubeconfig(tmp_path / "config")
    client = kube.api_client(settings_mod.KubeSettings(), environ={"KUBECONFIG": str(path)})
    assert _labels(client) == {"carbongate.io/tier": "3"}


def test_home_kubeconfig_is_the_last_resort(
        served: kube_api.RunningKubeApi, no_home: Path) -> None:
    (no_home / ".kube").mkdir()
    served.write_kubeconfig(no_home / ".kube" / "config")
    assert _labels(kube.api_client(settings_mod.KubeSettings(), environ={})) == {
        "carbongate.io/tier": "3"}


def _in_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, port: int) -> None:
    """What the kubelet gives a pod: the service host and port, a token and a CA file."""
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("pod-token")
    ca.write_text("not used: the client only checks the file exists")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv(incluster_config.SERVICE_HOST_ENV_NAME, "127.0.0.1")
    monkeypatch.setenv(incluster_config.SERVICE_PORT_ENV_NAME, str(port))


def test_in_a_pod_the_service_account_wins_over_home_kubeconfig(
        served: kube_api.RunningKubeApi, tmp_path: Path, no_home: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (no_home / ".kube").mkdir()
    served.write_kubeconfig(no_home / ".kube" / "config")
    _in_cluster(monkeypatch, tmp_path, 6443)
    client = kube.api_client(settings_mod.KubeSettings())
    assert client.configuration.host == "https://127.0.0.1:6443"
    assert client.configuration.api_key["BearerToken"].endswith("pod-token")
    named = kube.api_client(settings_mod.KubeSettings(context="double"))  # only a kubeconfig has one
    assert named.configuration.host == served.url


def test_api_url_wins_and_needs_no_file(served: kube_api.RunningKubeApi, no_home: Path) -> None:
    client = kube.api_client(settings_mod.KubeSettings(api_url=served.url), environ={})
    assert _labels(client) == {"carbongate.io/tier": "3"}


def test_nothing_to_use_is_one_clear_error(no_home: Path) -> None:
    with pytest.raises(kube.KubeConfigError, match=r"no in-cluster service account.*--kubeconfig"):
        kube.api_client(settings_mod.KubeSettings(), environ={})


def test_a_context_the_kubeconfig_lacks_is_named_in_the_error(
        served: kube_api.RunningKubeApi, tmp_path: Path, no_home: Path) -> None:
    path = served.write_kubeconfig(tmp_path / "config")
    with pytest.raises(kube.KubeConfigError, match="context 'prod' of kubeconfig"):
        kube.api_client(settings_mod.KubeSettings(kubeconfig=path, context="prod"), environ={})


def test_the_flags_are_the_same_everywhere_and_land_in_the_kube_settings() -> None:
    parser = argparse.ArgumentParser()
    kube.add_arguments(parser)
    args = parser.parse_args(["--kubeconfig", "/tmp/k", "--context", "kind-dev"])
    assert kube.overrides(args) == {"kubeconfig": Path("/tmp/k"), "context": "kind-dev"}
    loaded = settings_mod.load(environ={}, overrides={"kube": kube.overrides(args)})
    assert loaded.kube == settings_mod.KubeSettings(kubeconfig=Path("/tmp/k"), context="kind-dev")
