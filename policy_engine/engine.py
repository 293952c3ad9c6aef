"""The boundary every decision goes through: :class:`PolicyEngine`.

Two implementations answer the same questions: the embedded OPA engine
(:mod:`policy_engine.embedded`, in-process) and an OPA server over REST
(:mod:`policy_engine.opa_server`, a sidecar). Callers hold a
``PolicyEngine`` and never know which one they have, so the same policies
decide in production, in tests and in the simulator.

Paths are given the way OPA's Data API names documents
(``carbongate/admission/decision``); data roots are single names under
``data.carbongate`` (``grid``, ``budgets``). Both are checked here, once,
because the embedded engine keeps one prepared query per distinct path and
an OPA server would happily create documents anywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final, Protocol, runtime_checkable

from policy_engine import errors

# Documents the engines evaluate; compiled policies are probed on these.
ADMISSION_DECISION: Final = "carbongate/admission/decision"
RELEASE_DECISION: Final = "carbongate/release/decision"
INTERRUPT_DECISION: Final = "carbongate/interrupt/decision"
ENTRY_POINTS: Final = (ADMISSION_DECISION, RELEASE_DECISION, INTERRUPT_DECISION)

# Every data document carbongate writes lives under data.carbongate.<root>.
DATA_PREFIX: Final = "carbongate"

_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@runtime_checkable
class PolicyEngine(Protocol):
    """Evaluates carbongate's Rego policies over carbongate's data documents."""

    @property
    def version(self) -> str:
        """Digest prefix of the policy files and config now answering."""
        ...

    @property
    def ready(self) -> bool:
        """True when policies are compiled and grid data is present."""
        ...

    def evaluate(self, path: str, input: Mapping[str, Any], *, wait_s: float | None = None) -> Any | None:
        """The document at ``data.<path>`` for this input; None when undefined.

        ``wait_s`` bounds how long the caller waits in line for the engine
        before evaluation starts (None: as long as it takes): a caller whose
        answer is already given up must not queue behind busy engines.

        Raises :class:`policy_engine.errors.PolicyEvaluationError` when the
        engine fails (runtime error in a policy, unreachable server, timeout,
        no engine free within ``wait_s``).
        """
        ...

    def put_data(self, root: str, value: Mapping[str, Any]) -> None:
        """Replace ``data.carbongate.<root>`` as a whole (old keys disappear)."""
        ...

    def reload_policies(self) -> str:
        """Compile the policy directory, swap it in and return its version.

        On any compile error raises :class:`policy_engine.errors.PolicyCompileError`
        naming file and line, and the previous policies keep answering.
        """
        ...

    def start_watching(self, interval_s: float) -> None:
        """Poll the policy directory and reload when its digest changes."""
        ...

    def close(self) -> None:
        """Stop watching and release the engine's resources."""
        ...


def dotted_path(path: str) -> str:
    """``carbongate/admission/decision`` (or already dotted) -> ``carbongate.admission.decision``.

    Only plain identifiers are accepted: a path is part of a fixed,
    application-controlled set of queries, never user input.
    """
    segments = path.strip("/").replace(".", "/").split("/")
    for segment in segments:
        if not _SEGMENT.match(segment):
            raise ValueError(f"policy path {path!r}: {segment!r} is not a Rego identifier")
    return ".".join(segments)


def slash_path(path: str) -> str:
    """The same path as an OPA REST URL suffix (``carbongate/admission/decision``)."""
    return dotted_path(path).replace(".", "/")


def check_data_root(root: str) -> str:
    """A data root must be one identifier (``grid``), so it cannot escape ``data.carbongate``."""
    if not _SEGMENT.match(root):
        raise ValueError(f"data root {root!r} must be a single identifier such as 'grid'")
    return root


def json_document(value: Mapping[str, Any]) -> dict[str, Any]:
    """A private, JSON-only copy of a data document for ``put_data``.

    Copying decouples the engine from later mutation by the caller, and
    rejects what OPA could not store (NaN, sets, datetimes) with a clear
    :class:`errors.PolicyDataError` instead of a failure deep in an engine.
    """
    if not isinstance(value, Mapping):
        raise errors.PolicyDataError(f"data must be a JSON object, not {type(value).__name__}")
    try:
        copied: dict[str, Any] = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as error:
        raise errors.PolicyDataError(f"data is not JSON: {error}") from error
    return copied
