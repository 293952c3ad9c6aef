"""Read a policy directory the way an OPA bundle is laid out.

Every ``.rego`` file is a module named by its path relative to the
directory (so compile errors point at ``carbongate/admission/decision.rego:12``);
``*_test.rego`` files belong to the Rego test runner and are left out of the
production engine unless asked for. Every ``data.json`` is a data document
mounted at the path of its directory: ``carbongate/config/data.json`` becomes
``data.carbongate.config``.

Names starting with a dot are skipped. That leaves out editor swap files and
the ``..data`` / ``..2026_...`` directories of a Kubernetes ConfigMap mount
(whose visible entries are symlinks into them, which are followed).

The digest covers the production modules and the data files, not the tests:
it is the policy version written on every decision
(``carbongate.io/policy-version``) and what the watcher compares.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from policy_engine import engine, errors

REGO_SUFFIX: Final = ".rego"
TEST_SUFFIX: Final = "_test.rego"
DATA_FILE: Final = "data.json"
VERSION_LENGTH: Final = 12

# (relative path, content or the error reading it), sorted by path.
_Tree = list[tuple[str, bytes | OSError]]


@dataclass(frozen=True)
class RegoModule:
    """One Rego file: its module name (relative path) and source."""

    path: str
    source: str
    is_test: bool


@dataclass(frozen=True)
class DataDocument:
    """One ``data.json``: where it came from and the dotted data path it fills."""

    file: str
    data_path: str
    value: Mapping[str, Any]


@dataclass(frozen=True)
class PolicySet:
    """Everything a compiled engine needs from the policy directory."""

    directory: Path
    modules: tuple[RegoModule, ...]
    documents: tuple[DataDocument, ...]
    digest: str

    @property
    def version(self) -> str:
        """The short form of the digest used in annotations and logs."""
        return self.digest[:VERSION_LENGTH]

    @property
    def data_paths(self) -> frozenset[str]:
        """Dotted paths owned by the directory's data files (``carbongate.config``)."""
        return frozenset(document.data_path for document in self.documents)


def load(directory: Path, *, include_tests: bool = False) -> PolicySet:
    """Read every module and data file; one error lists every bad file.

    Raises :class:`errors.PolicyLoadError` when the directory is missing,
    holds no policy, or a file is unreadable, not UTF-8 or not a JSON object.
    """
    directory = Path(directory)
    files = _read_tree(directory)
    modules: list[RegoModule] = []
    documents: list[DataDocument] = []
    problems: list[errors.CompileProblem] = []
    for relative, raw in files:
        try:
            if isinstance(raw, OSError):
                raise _FileProblem(errors.CompileProblem(
                    relative, None, f"cannot read: {raw.strerror or raw}"))
            if relative.endswith(REGO_SUFFIX):
                module = _module(relative, raw)
                if include_tests or not module.is_test:
                    modules.append(module)
            else:
                documents.append(_document(relative, raw))
        except _FileProblem as problem:
            problems.append(problem.problem)
    if problems:
        raise errors.PolicyLoadError(f"cannot load policy directory {directory}", problems)
    if not any(not module.is_test for module in modules):
        raise errors.PolicyLoadError(f"policy directory {directory} holds no .rego policy")
    return PolicySet(directory, tuple(modules), tuple(documents), _digest(files))


def fingerprint(directory: Path) -> str:
    """The digest :func:`load` would report, without parsing anything.

    The watcher compares it every few seconds: it changes with any byte of a
    production module or data file (not with tests), also while the files
    are invalid, so a broken edit is tried once and not on every tick.
    """
    return _digest(_read_tree(Path(directory)))


class _FileProblem(Exception):
    def __init__(self, problem: errors.CompileProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _read_tree(directory: Path) -> _Tree:
    if not directory.is_dir():
        raise errors.PolicyLoadError(f"policy directory {directory} does not exist")
    tree: _Tree = []
    for relative in _policy_files(directory):
        try:
            tree.append((relative, (directory / relative).read_bytes()))
        except OSError as error:
            tree.append((relative, error))
    return tree


def _digest(tree: _Tree) -> str:
    """Length-prefixed entries, so that no two different trees hash the same."""
    hasher = hashlib.sha256()
    for relative, raw in tree:
        if relative.endswith(TEST_SUFFIX):
            continue
        content = raw if isinstance(raw, bytes) else f"unreadable: {raw}".encode()
        name = relative.encode("utf-8")
        hasher.update(f"{len(name)}\0".encode() + name + f"\0{len(content)}\0".encode())
        hasher.update(content)
    return hasher.hexdigest()


def _module(relative: str, raw: bytes) -> RegoModule:
    source = _text(relative, raw)
    if not source.strip():
        raise _FileProblem(errors.CompileProblem(relative, None, "empty module"))
    return RegoModule(relative, source, relative.endswith(TEST_SUFFIX))


def _document(relative: str, raw: bytes) -> DataDocument:
    parent = relative.rpartition("/")[0]
    if not parent:
        raise _FileProblem(errors.CompileProblem(
            relative, None, "a data.json at the top of the policy directory would replace all "
            "of data; put it in the directory naming its path (carbongate/config/data.json)"))
    try:
        data_path = engine.dotted_path(parent)
    except ValueError as error:
        raise _FileProblem(errors.CompileProblem(relative, None, str(error))) from error
    try:
        value = json.loads(_text(relative, raw))
    except json.JSONDecodeError as error:
        raise _FileProblem(errors.CompileProblem(
            relative, error.lineno, f"invalid JSON: {error.msg} (column {error.colno})")) from error
    if not isinstance(value, dict):
        raise _FileProblem(errors.CompileProblem(
            relative, None, f"must hold a JSON object, not {type(value).__name__}"))
    return DataDocument(relative, data_path, value)


def _text(relative: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise _FileProblem(errors.CompileProblem(relative, line, "not valid UTF-8")) from error


def _policy_files(directory: Path) -> Iterator[str]:
    """Relative POSIX paths of ``.rego`` and ``data.json`` files, sorted, loops avoided."""
    seen: set[tuple[int, int]] = set()
    found: list[str] = []
    for current, subdirs, files in os.walk(directory, followlinks=True):
        status = os.stat(current)
        if (status.st_dev, status.st_ino) in seen:
            subdirs[:] = []
            continue
        seen.add((status.st_dev, status.st_ino))
        subdirs[:] = sorted(name for name in subdirs if not name.startswith("."))
        base = Path(current).relative_to(directory)
        for name in files:
            if name.startswith(".") or not (name.endswith(REGO_SUFFIX) or name == DATA_FILE):
                continue
            found.append((base / name).as_posix())
    return iter(sorted(found))
