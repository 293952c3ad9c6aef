"""Errors raised by the policy engines.

Callers (the webhook, the deferral controller) fail open on any
:class:`PolicyEngineError`: they catch the base class, log it, count it and
admit unchanged. The subclasses exist so that operators get a precise
message (a compile error names the file and line) and so tests can tell a
bad policy edit from an unreachable OPA server.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class CompileProblem:
    """One problem in one policy file, as an editor would point at it."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}" if where else self.message


class PolicyEngineError(Exception):
    """Base class: anything that went wrong in or towards a policy engine."""


class PolicyEvaluationError(PolicyEngineError):
    """A decision could not be computed (engine error, timeout, bad answer)."""


class EngineBusyError(PolicyEvaluationError):
    """No engine was free within the caller's wait (``evaluate(..., wait_s=...)``)."""


class PolicyCompileError(PolicyEngineError):
    """The policy directory does not compile; the running policies were kept."""

    def __init__(self, summary: str, problems: Iterable[CompileProblem] = ()) -> None:
        self.summary = summary
        self.problems = tuple(problems)
        lines = [summary, *(f"  {problem}" for problem in self.problems)]
        super().__init__("\n".join(lines))


class PolicyLoadError(PolicyCompileError):
    """A file of the policy directory cannot be read or parsed (JSON, UTF-8).

    A subclass of :class:`PolicyCompileError` because to the caller of
    ``reload_policies`` both mean the same thing: the edit was rejected and
    the previous policies keep answering.
    """


class PolicyDataError(PolicyEngineError):
    """A data document given to ``put_data`` cannot be loaded; the old data stays."""


class EngineUnavailableError(PolicyEngineError):
    """The OPA server cannot be reached or answered something unusable."""


class EngineConfigError(PolicyEngineError):
    """The engine settings cannot be used (unknown kind, malformed URL)."""
