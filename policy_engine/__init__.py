"""Policy engines: the ``PolicyEngine`` protocol and its two implementations.

- :mod:`policy_engine.engine` — the protocol and path helpers;
- :mod:`policy_engine.embedded` — OPA's Go engine in-process;
- :mod:`policy_engine.opa_server` — an OPA server (sidecar) over REST;
- :mod:`policy_engine.factory` — ``build(settings.engine)``, also offered here;
- :mod:`policy_engine.loader`, :mod:`policy_engine.watcher` — the policy directory.

Importing the package does nothing else: engines are built explicitly, in
the process that uses them (for gunicorn, in the worker after the fork).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from carbongate.settings import EngineSettings
    from policy_engine.engine import PolicyEngine


def build(settings: EngineSettings, *, watch: bool = False) -> PolicyEngine:
    """``policy_engine.factory.build``: the configured engine, or a clear start-up error.

    Imported lazily so that ``import policy_engine`` stays free of the HTTP
    client and the engine bindings until an engine is actually wanted.
    """
    from policy_engine import factory

    return factory.build(settings, watch=watch)
