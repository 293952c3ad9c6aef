"""Namespace labels read from a cluster outside it too: ``serve --kubeconfig --context``.

The API server is the double of tests/support/kube_api.py (no kube-apiserver
runs here), reached through a real kubeconfig file and the real client.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from carbongate import settings as settings_mod
from tests.support import kube_api
from webhook import __main__ as entry
from webhook import app


def test_a_kubeconfig_context_gives_the_webhook_the_namespace_labels(tmp_path: Path) -> None:
    with kube_api.serve() as served:
        served.api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": "ml-team", "labels": {"carbongate.io/tier": "3", "team": "ml"}}})
        kubeconfig = served.write_kubeconfig(tmp_path / "config", current=False)
        arguments = ["--kubeconfig", str(kubeconfig), "--context", "double"]
        overrides = entry.flag_overrides(entry.parser().parse_args(arguments))
        settings = settings_mod.load(environ={}, overrides=overrides)
        assert settings.webhook.namespace_labels_source == "api"  # naming a cluster means it
        read = app._namespace_reader(settings)
        assert read("ml-team") == {"carbongate.io/tier": "3", "team": "ml"}


def test_without_a_cluster_named_labels_stay_off() -> None:
    overrides = entry.flag_overrides(entry.parser().parse_args(["--bind", "127.0.0.1:0"]))
    assert settings_mod.load(environ={}, overrides=overrides).webhook.namespace_labels_source == "none"


def test_a_kubeconfig_that_cannot_be_used_stops_the_start_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert entry.main(["--kubeconfig", str(tmp_path / "missing"), "--context", "x"]) == 2
    assert "cannot use context 'x' of kubeconfig" in capsys.readouterr().err
