"""AdmissionReview v1 on the wire: parse a request, build a response.

The HTTP layer hands raw bytes here and gets back either a ``Request`` or a
``BadReview`` whose message says exactly what is wrong, which becomes an
HTTP 400. Nothing past this module sees unchecked JSON structure.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
# The API server keeps 4096 characters of a response's warnings and cuts each to 256
# (k8s.io/apiserver warning recorder): 12 of 256 fit, the last says how many were left out.
MAX_WARNINGS = 12
# Nesting beyond this is no Pod or Job the API server sent (a real one is under 20 deep),
# and would cost Python recursion further down (copying, diffing, marshalling).
MAX_DEPTH = 100


class BadReview(ValueError):
    """The body is not an AdmissionReview v1 request; the message says why."""


class Status(TypedDict):
    code: int
    message: str


class Response(TypedDict):
    uid: str
    allowed: bool
    patchType: NotRequired[Literal["JSONPatch"]]
    patch: NotRequired[str]
    warnings: NotRequired[list[str]]
    status: NotRequired[Status]


class ReviewResponse(TypedDict):
    apiVersion: str
    kind: str
    response: Response


@dataclass(frozen=True)
class Request:
    """The parts of ``request`` that decisions read."""

    uid: str
    kind: str
    group: str
    operation: str
    namespace: str
    name: str
    dry_run: bool
    username: str
    object: Mapping[str, Any] | None
    raw: Mapping[str, Any] = field(repr=False)
    # Length of the body it came in: a bound on the object's size, known without measuring it.
    body_bytes: int = 0


def parse(body: bytes) -> Request:
    """Decode and check an AdmissionReview v1 request body."""
    try:
        document = json.loads(body)
    except RecursionError as error:
        raise BadReview("body is not JSON this webhook can read: nested too deeply") from error
    except ValueError as error:  # also an integer over Python's 4300-digit limit
        raise BadReview(f"body is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise BadReview("body must be a JSON object (an AdmissionReview)")
    if _deeper_than(document, MAX_DEPTH):
        raise BadReview(f"body is nested too deeply: more than {MAX_DEPTH} levels of objects and arrays")
    if document.get("apiVersion") != API_VERSION:
        raise BadReview(f"apiVersion must be {API_VERSION!r}, got {document.get('apiVersion')!r}")
    if document.get("kind") != KIND:
        raise BadReview(f"kind must be {KIND!r}, got {document.get('kind')!r}")
    request = document.get("request")
    if not isinstance(request, dict):
        raise BadReview("AdmissionReview has no 'request' object")
    return _request(request, body_bytes=len(body))


def _deeper_than(document: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` levels, found level by level
    (no recursion, so any depth the parser accepted is measured)."""
    level: list[Any] = [document]
    for _ in range(limit):
        below: list[Any] = []
        for node in level:
            for value in node.values() if isinstance(node, dict) else node:
                if isinstance(value, (dict, list)):
                    below.append(value)
        if not below:
            return False
        level = below
    return True


def _request(request: dict[str, Any], *, body_bytes: int) -> Request:
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("request.uid is missing or not a string")
    kind = _object(request, "kind")
    obj = request.get("object")
    if obj is not None and not isinstance(obj, dict):
        raise BadReview("request.object must be an object")
    user = request.get("userInfo")
    return Request(
        uid=uid,
        kind=_text(kind.get("kind")),
        group=_text(kind.get("group")),
        operation=_text(request.get("operation")),
        namespace=_text(request.get("namespace")),
        name=_text(request.get("name")),
        dry_run=request.get("dryRun") is True,
        username=_text(user.get("username")) if isinstance(user, dict) else "",
        object=obj,
        raw=request,
        body_bytes=body_bytes,
    )


def _object(request: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = request.get(key)
    if not isinstance(value, dict):
        raise BadReview(f"request.{key} is missing or not an object")
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def respond(
    uid: str,
    *,
    allowed: bool = True,
    patch: Sequence[Mapping[str, Any]] = (),
    warnings: Sequence[str] = (),
    message: str = "",
) -> ReviewResponse:
    """A response echoing ``uid``; patch, warnings and status only when non-empty."""
    response: Response = {"uid": uid, "allowed": allowed}
    if patch:
        encoded = json.dumps(list(patch), separators=(",", ":")).encode()
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(encoded).decode()
    if warnings:
        response["warnings"] = [_warning_text(w) for w in _at_most(list(warnings), MAX_WARNINGS)]
    if not allowed:
        response["status"] = {"code": 403, "message": message or "denied by carbongate"}
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}


def _at_most(warnings: list[str], limit: int) -> list[str]:
    """The first warnings and the last (the action's own sentence), with a count of the rest."""
    if len(warnings) <= limit:
        return warnings
    hidden = len(warnings) - (limit - 1)
    return [*warnings[:limit - 2], f"carbongate: {hidden} more warnings not shown", warnings[-1]]


def _warning_text(warning: str) -> str:
    """Kubernetes rejects warnings over 256 characters and with control characters."""
    # Nearly every warning is printable already: one C-speed check spares a Python step per character.
    printable = warning if warning.isprintable() else "".join(c if c.isprintable() else " " for c in warning)
    return printable if len(printable) <= 256 else printable[:253] + "..."


def decoded_patch(review: ReviewResponse) -> list[dict[str, Any]]:
    """The JSON patch of a response, decoded (for tests, the CLI and logs)."""
    encoded = review["response"].get("patch")
    return [] if not encoded else list(json.loads(base64.b64decode(encoded)))
