"""JSON patches as the diff between an object and its mutated copy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonpatch


def json_patch(original: Mapping[str, Any], mutated: Mapping[str, Any]) -> list[dict[str, Any]]:
    """RFC 6902 operations turning ``original`` into ``mutated``; empty when equal."""
    return list(jsonpatch.make_patch(dict(original), dict(mutated)).patch)


def apply_patch(original: Mapping[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply operations to a copy (how tests and ``carbongate review`` check a patch)."""
    result: dict[str, Any] = jsonpatch.apply_patch(dict(original), operations, in_place=False)
    return result
