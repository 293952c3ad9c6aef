"""Builders of small policy directories for the runner's own tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

Files = dict[str, str | dict[str, Any]]
PolicyTree = Callable[[Mapping[str, str | dict[str, Any]]], Path]

# A policy and its passing test, the smallest directory the runner accepts.
GREETING = """package demo.greeting

import rego.v1

# METADATA
# description: a greeting for a name
message(name) := sprintf("hello %s", [name])

loud if input.volume > 5
"""

GREETING_TEST = """package demo.greeting_test

import rego.v1

import data.demo.greeting

test_greets_by_name if greeting.message("ml") == "hello ml"

test_is_loud_above_five if greeting.loud with input as {"volume": 6}
"""


@pytest.fixture
def policy_tree(tmp_path: Path) -> PolicyTree:
    """Write files (relative path -> Rego text or JSON value) into a fresh policy directory."""

    def write(files: Mapping[str, str | dict[str, Any]]) -> Path:
        root = tmp_path / "rego"
        for relative, content in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            text = content if isinstance(content, str) else json.dumps(content)
            path.write_text(text, encoding="utf-8")
        return root

    return write


@pytest.fixture
def greeting_files() -> Files:
    """A sound directory: one policy, its test file beside it."""
    return {"demo/greeting/greeting.rego": GREETING, "demo/greeting/greeting_test.rego": GREETING_TEST}
