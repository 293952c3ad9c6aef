"""``--config FILE`` means the same in every subcommand, before or after the subcommand.

``release --config FILE`` and ``deferred --config FILE`` used to crash with
``AttributeError: 'str' object has no attribute 'open'``; and argparse let a
subcommand's default silently drop a ``--config`` given before it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from carbongate import cli
from deferral import workloads
from tests.deferral import builders
from tests.deferral.conftest import START
from tests.support import kube_api

# Every subcommand that reads the settings, with what it needs besides them.
COMMANDS = [
    ["release"], ["release", "--all"], ["deferred"], ["feed", "--once"], ["grid", "show"],
    ["grid", "plot", "--region", "GB"], ["governance"], ["budget", "report"],
    ["review", "review.json"], ["simulate", "--grid", "grid.csv", "--generate", "batch:1"],
    ["policy", "test"],
]


@pytest.fixture
def broken_config(tmp_path: Path) -> Path:
    path = tmp_path / "carbongate.toml"
    path.write_text("[deferral]\nnot_a_setting = 1\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("before", [False, True], ids=["after", "before"])
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_subcommand_reads_the_config_file_it_is_given(
        command: list[str], before: bool, broken_config: Path, capsys) -> None:
    """The file is read (its mistake is reported) the same way everywhere, never a traceback."""
    argv = (["--config", str(broken_config), *command] if before
            else [*command, "--config", str(broken_config)])
    assert cli.main(argv) == 2
    said = capsys.readouterr()  # policy test reports on stdout, with its results
    assert "unknown setting(s) ['not_a_setting'] in [deferral]" in said.err + said.out


def test_deferred_and_release_all_work_from_a_config_file(tmp_path: Path, capsys) -> None:
    with kube_api.serve() as served:
        served.api.seed(builders.gated_pod("train", not_before=START, deadline=None))
        config = tmp_path / "carbongate.toml"
        config.write_text(f'[kube]\napi_url = "{served.url}"\n', encoding="utf-8")
        assert cli.main(["deferred", "--config", str(config), "-n", "ml-team"]) == 0
        assert "train" in capsys.readouterr().out
        assert cli.main(["--config", str(config), "release", "--all"]) == 0
        assert workloads.gates(served.api.get("Pod", "ml-team", "train")) == []
