"""Policy engines: the ``PolicyEngine`` protocol and its two implementations.

- :mod:`policy_engine.engine` — the protocol and path helpers;
- :mod:`policy_engine.embedded` — OPA's Go engine in-process;
- :mod:`policy_engine.opa_server` — an OPA server (sidecar) over REST;
- :mod:`policy_engine.factory` — ``build(settings.engine)``;
- :mod:`policy_engine.loader`, :mod:`policy_engine.watcher` — the policy directory.

Importing the package does nothing else: engines are built explicitly, in
the process that uses them.
"""
