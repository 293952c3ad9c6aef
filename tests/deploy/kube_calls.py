"""What Kubernetes API access the code needs, read from the code itself.

The RBAC rules in deploy/ must equal what each component calls, no more (least
privilege) and no less (a missing verb is a 403 in production). This module
derives that set without anyone listing it by hand:

1. the modules a pod runs: every module of its entry packages plus, through
   their imports (``ast``, transitively), every first-party module they use;
2. every reference to a method of a ``kubernetes.client`` API class in those
   modules (called, or passed around as ``call = api.list_...`` or to
   ``watch.Watch().stream``), the class chosen among those the module names;
3. for each method, the HTTP verb and path the generated client sends (read
   from the client's own ``_<method>_serialize``), turned into the RBAC
   (group, resource, verb) the API server authorises, with ``watch`` when the
   reference is streamed or its function passes ``watch=True``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import kubernetes.client

_CLASS = re.compile(r"^class (?P<name>\w+Api)\b", re.MULTILINE)
_SERIALIZER = re.compile(r"\n    def _(?=\w+_serialize\()")
_METHOD = re.compile(r"method='(?P<method>[A-Z]+)'")
_PATH = re.compile(r"resource_path='(?P<path>/[^']*)'")


@dataclass(frozen=True, order=True)
class Permission:
    """One RBAC grant: verb on resource in an API group ('' is the core group)."""

    group: str
    resource: str
    verb: str


@dataclass(frozen=True)
class Operation:
    """A client method's HTTP request."""

    api_class: str
    method_name: str
    http_method: str
    path: str


@cache
def operations() -> dict[str, list[Operation]]:
    """Every kubernetes.client API method name -> its operation(s) across API classes.

    Read from the generated sources (one pass per file: inspecting 1,500
    functions one by one takes seconds): each public method ``name`` has a
    ``_name_serialize`` that states ``method='VERB'`` and ``resource_path=``.
    """
    found: dict[str, list[Operation]] = {}
    api_dir = Path(kubernetes.client.__file__).parent / "api"
    for source_file in sorted(api_dir.glob("*_api.py")):
        text = source_file.read_text(encoding="utf-8")
        class_match = _CLASS.search(text)
        if class_match is None:
            continue
        for chunk in _SERIALIZER.split(text)[1:]:
            serializer, body = chunk.split("(", 1)
            name = serializer.removesuffix("_serialize")
            method, path = _METHOD.search(body), _PATH.search(body)
            if method and path:
                found.setdefault(name, []).append(Operation(
                    class_match["name"], name, method["method"], path["path"]))
    return found


def permission(operation: Operation, *, watch: bool) -> Permission:
    """The RBAC permission the API server checks for this request."""
    segments = [s for s in operation.path.split("/") if s]
    if segments[0] == "api":
        group, rest = "", segments[2:]
    else:
        group, rest = segments[1], segments[3:]
    if rest[:1] == ["watch"]:
        rest, watch = rest[1:], True
    if rest[:2] == ["namespaces", "{namespace}"]:
        rest = rest[2:]
    resource = rest[0]
    named = len(rest) > 1 and rest[1].startswith("{")
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    return Permission(group, resource, _verb(operation.http_method, named=named, watch=watch))


def _verb(http_method: str, *, named: bool, watch: bool) -> str:
    if http_method == "GET":
        return "get" if named else ("watch" if watch else "list")
    if http_method == "DELETE":
        return "delete" if named else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}[http_method]


# --- which modules run in a pod ------------------------------------------------------------


@cache
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def first_party_packages(root: Path) -> frozenset[str]:
    return frozenset(p.name for p in root.iterdir() if (p / "__init__.py").is_file())


def module_closure(root: Path, entry_packages: Iterable[str]) -> list[Path]:
    """Every source file of the entry packages and of the first-party modules they import."""
    packages = first_party_packages(root)
    pending = [f for name in entry_packages for f in sorted((root / name).rglob("*.py"))]
    seen: set[Path] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        pending.extend(_imported_files(root, packages, _parse(path)))
    return sorted(seen)


def _imported_files(root: Path, packages: frozenset[str], tree: ast.AST) -> Iterator[Path]:
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for dotted in names:
            if dotted.split(".")[0] not in packages:
                continue
            found = _module_file(root, dotted)
            if found is not None:
                yield found


def _module_file(root: Path, dotted: str) -> Path | None:
    base = root.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


# --- the references ---------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """A use of a client API method in the code."""

    file: Path
    line: int
    method_name: str
    watch: bool


def references(path: Path) -> tuple[set[str], list[Reference]]:
    """The API classes a module names, and every API method reference in it."""
    tree = _parse(path)
    known = operations()
    classes = {node.attr if isinstance(node, ast.Attribute) else node.id
               for node in ast.walk(tree)
               if isinstance(node, ast.Attribute | ast.Name)
               and (node.attr if isinstance(node, ast.Attribute) else node.id).endswith("Api")}
    found: list[Reference] = []
    for function in _scopes(tree):
        watching = _passes_watch_true(function)
        streamed = _streamed_attributes(function)
        for node in _own_nodes(function):
            if isinstance(node, ast.Attribute) and node.attr in known:
                found.append(Reference(path, node.lineno, node.attr,
                                       watch=watching or id(node) in streamed))
    return classes, found


def _scopes(tree: ast.AST) -> Iterator[ast.AST]:
    yield tree
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield node


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """Nodes of this scope, not of functions nested in it (those are scopes of their own)."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))


def _passes_watch_true(scope: ast.AST) -> bool:
    return any(isinstance(node, ast.Call) and any(
        k.arg == "watch" and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in node.keywords) for node in _own_nodes(scope))


def _streamed_attributes(scope: ast.AST) -> set[int]:
    """Method references given to ``Watch().stream(...)``, which lists with watch=true."""
    streamed: set[int] = set()
    for node in _own_nodes(scope):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "stream"):
            streamed |= {id(arg) for arg in node.args if isinstance(arg, ast.Attribute)}
    return streamed


def permissions(files: Iterable[Path]) -> dict[Permission, list[Reference]]:
    """Each permission the files need, with the references that need it.

    A method name shared by several API classes (``create_namespaced_event``
    is in CoreV1Api and EventsV1Api) is resolved by the classes the files
    name: a client object may be built in one module and used in another.
    """
    scanned = [references(path) for path in files]
    classes = set().union(*(named for named, _ in scanned))
    needed: dict[Permission, list[Reference]] = {}
    for _, found in scanned:
        for reference in found:
            candidates = [op for op in operations()[reference.method_name] if op.api_class in classes]
            if not candidates:
                continue  # a method of the same name on something that is not a client API
            for operation in candidates:
                needed.setdefault(permission(operation, watch=reference.watch), []).append(reference)
    return needed
