"""Reliability suite: Hypothesis profiles, the soak gate and the xdist marker.

- ``soak`` tests run only when asked for with ``-m soak`` (``make soak``): the
  shared pyproject ``addopts`` cannot exclude them for the default run without
  also excluding them from ``make soak``, so they are skipped here instead.
- Example counts are bounded per test (see ``examples``) so the default run
  stays fast; ``pytest tests/reliability --hypothesis-profile=long`` runs the
  ``long`` profile's count instead. The profile is registered here, so the
  option works when this directory is on the command line (pytest loads a
  named directory's conftest before it configures plugins).
- ``xdist_group`` is registered for runs without xdist (``make soak`` uses
  ``-p no:xdist``; ``--strict-markers`` would otherwise refuse the marker).
"""

from __future__ import annotations

import pytest

from tests.reliability import profiles  # noqa: F401  (registers the "long" profile)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xdist_group(name): run in the named group's worker (pytest-xdist)")


def soak_requested(config: pytest.Config) -> bool:
    expression = config.getoption("markexpr", default="") or ""
    return "soak" in expression and "not soak" not in expression


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if soak_requested(config):
        return
    skip = pytest.mark.skip(reason="soak test: run it with `make soak` (pytest -m soak)")
    for item in items:
        if item.get_closest_marker("soak") is not None:
            item.add_marker(skip)
