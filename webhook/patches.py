"""JSON patches as the diff between an object and its mutated copy."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jsonpatch


def json_patch(original: Mapping[str, Any], mutated: Mapping[str, Any]) -> list[dict[str, Any]]:
    """RFC 6902 operations turning ``original`` into ``mutated``; empty when equal.

    ``mutations.apply`` copies on write, so whatever it did not change is the
    very same object in both: those parts are skipped by identity (not
    compared, which jsonpatch does by serialising them), and only the objects
    on the way to a change are walked. The changed parts are diffed by jsonpatch.
    """
    return list(_diff("", original, mutated))


def _diff(path: str, before: Any, after: Any) -> Iterator[dict[str, Any]]:
    if before is after:
        return
    if isinstance(before, list) and isinstance(after, list) and len(after) >= len(before):
        # Arrays carbongate changes keep their items (the same objects, or copies of
        # them with an expression added) and may gain some at the end.
        for index, item in enumerate(before):
            yield from _diff(f"{path}/{index}", item, after[index])
        for index in range(len(before), len(after)):
            yield {"op": "add", "path": f"{path}/{index}", "value": after[index]}
        return
    if not (isinstance(before, Mapping) and isinstance(after, Mapping)):
        yield from _jsonpatch(path, before, after)
        return
    for key in before:
        if key not in after:
            yield {"op": "remove", "path": f"{path}/{_escape(key)}"}
    for key, value in after.items():
        if key in before:
            if before[key] is not value:
                yield from _diff(f"{path}/{_escape(key)}", before[key], value)
        else:
            yield {"op": "add", "path": f"{path}/{_escape(key)}", "value": value}


def _jsonpatch(path: str, before: Any, after: Any) -> Iterator[dict[str, Any]]:
    """jsonpatch's diff of two values, its pointers moved under ``path``."""
    for operation in jsonpatch.make_patch({"v": before}, {"v": after}).patch:
        moved = {**operation, "path": path + operation["path"][2:]}
        if "from" in operation:
            moved["from"] = path + operation["from"][2:]
        yield moved


def _escape(key: str) -> str:
    """A JSON pointer reference token (RFC 6901)."""
    return str(key).replace("~", "~0").replace("/", "~1")


def apply_patch(original: Mapping[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply operations to a copy (how tests and ``carbongate review`` check a patch)."""
    result: dict[str, Any] = jsonpatch.apply_patch(dict(original), operations, in_place=False)
    return result
