"""The one way a carbongate process builds its Kubernetes API client.

Every component that talks to a cluster (the webhook's namespace labels, the
deferral controller, governance, the feed's leader election, ``carbongate
deferred`` and ``release --all``) calls :func:`api_client` with the
``[kube]`` settings, so ``--kubeconfig`` and ``--context`` mean the same
everywhere and the fallback is the one Kubernetes controllers use
(controller-runtime's ``GetConfig``), which is what kubectl users expect:

1. ``kube.api_url``: a plain URL, no credentials (``kubectl proxy``, a local
   API double);
2. ``kube.kubeconfig`` (``--kubeconfig``), with ``kube.context``;
3. ``$KUBECONFIG`` (one file or several joined by ``:``, as kubectl merges them);
4. the in-cluster service account (a pod: ``KUBERNETES_SERVICE_HOST`` and the
   mounted token), unless a context was named, which only a kubeconfig has;
5. ``~/.kube/config``.

This is also the one module that imports the ``kubernetes`` package (an
import-linter contract holds it): the API classes, ``ApiException`` and the
watch helpers every component uses are taken from here, so a change of client
library or version is one file's business.

Nothing is tried at import time; a configuration that cannot be used raises
:class:`KubeConfigError` saying what was tried, so a command can print it
instead of a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbongate import settings as settings_mod

if TYPE_CHECKING:
    import kubernetes.client
    from kubernetes.client import ApiClient as ApiClient
    from kubernetes.client import ApiException as ApiException
    from kubernetes.client import BatchV1Api as BatchV1Api
    from kubernetes.client import CoordinationV1Api as CoordinationV1Api
    from kubernetes.client import CoreV1Api as CoreV1Api
    from kubernetes.watch import Watch as Watch
    from kubernetes.watch.watch import iter_resp_lines as iter_resp_lines

# The client's names above, imported on first use: ``kubernetes`` costs about 35 MB of
# memory and 1.5 s to import, and the webhook's master imports this module for its flags
# alone, then forks every worker with it (docs/performance.md, "Memory"). A worker that
# reads no namespace labels from a cluster never needs the client.
_LAZY = {
    "ApiClient": ("kubernetes.client", "ApiClient"),
    "ApiException": ("kubernetes.client", "ApiException"),
    "BatchV1Api": ("kubernetes.client", "BatchV1Api"),
    "CoordinationV1Api": ("kubernetes.client", "CoordinationV1Api"),
    "CoreV1Api": ("kubernetes.client", "CoreV1Api"),
    "Watch": ("kubernetes.watch", "Watch"),
    "iter_resp_lines": ("kubernetes.watch.watch", "iter_resp_lines"),
}


def __getattr__(name: str) -> Any:
    """The client's classes, imported when first asked for (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value

DEFAULT_KUBECONFIG = Path("~/.kube/config")


class KubeConfigError(settings_mod.SettingsError):
    """No usable way to reach the API server; the message lists what was tried."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--kubeconfig``, ``--context`` and ``--api-url``, the same on every command that talks to a cluster."""
    parser.add_argument("--kubeconfig", type=Path,
                        help="kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: its current-context)")
    parser.add_argument("--api-url", help="Kubernetes API URL without credentials (kubectl proxy); "
                                          "wins over the kubeconfig")


def add_namespace_arguments(parser: argparse.ArgumentParser) -> None:
    """``-n/--namespace`` and ``-A/--all-namespaces``, as kubectl reads them, for commands that list."""
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="only this namespace (default: the kubeconfig context's, "
                                                 "else default)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")


def namespace(args: argparse.Namespace, section: settings_mod.KubeSettings, *,
              environ: dict[str, str] | None = None) -> str | None:
    """The namespace to list (None: all), by kubectl's rule: -A, -n, the context's, ``default``."""
    if getattr(args, "all_namespaces", False):
        return None
    if getattr(args, "namespace", None):
        return str(args.namespace)
    return context_namespace(section, environ=environ) or "default"


def context_namespace(section: settings_mod.KubeSettings, *, environ: dict[str, str] | None = None) -> str | None:
    """The namespace the kubeconfig's (current or named) context sets, if any."""
    if section.api_url:
        return None
    files = (str(section.kubeconfig) if section.kubeconfig is not None
             else settings_mod.environment_value("KUBECONFIG", environ=environ))
    if not files:
        default = DEFAULT_KUBECONFIG.expanduser()
        files = str(default) if default.is_file() else ""
    if not files:
        return None
    import kubernetes.config

    config: Any = kubernetes.config  # untyped module
    try:
        contexts, active = config.list_kube_config_contexts(config_file=files.split(":")[0])
    except (config.ConfigException, OSError, ValueError):
        return None
    chosen = next((c for c in contexts if c.get("name") == section.context), active) if section.context else active
    found = ((chosen or {}).get("context") or {}).get("namespace")
    return str(found) if found else None


@contextlib.contextmanager
def quiet_retries() -> Iterator[None]:
    """A one-shot command's retries stay silent: its error says what failed, once.

    The client's urllib3 logs a ``Retrying (Retry(total=2 ...))`` warning per
    attempt, which a person running ``carbongate deferred`` against an API
    server that is down reads before the one line that matters.
    """
    logger = logging.getLogger("urllib3.connectionpool")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``[kube]`` settings the flags of :func:`add_arguments` set."""
    found = {"kubeconfig": getattr(args, "kubeconfig", None),
             "context": getattr(args, "context", None),
             "api_url": getattr(args, "api_url", None)}
    return {key: value for key, value in found.items() if value}


def api_client(section: settings_mod.KubeSettings, *,
               environ: dict[str, str] | None = None) -> kubernetes.client.ApiClient:
    """A client by the rules in the module docstring; :class:`KubeConfigError` when none fits."""
    import kubernetes.client

    if section.api_url:
        return kubernetes.client.ApiClient(kubernetes.client.Configuration(host=section.api_url))
    context = section.context or None
    if section.kubeconfig is not None:
        return _from_kubeconfig(str(section.kubeconfig), context)
    listed = settings_mod.environment_value("KUBECONFIG", environ=environ)
    if listed:
        return _from_kubeconfig(listed, context)
    tried = []
    if context is None:
        configuration = _in_cluster(environ)
        if configuration is not None:
            return kubernetes.client.ApiClient(configuration)
        tried.append("no in-cluster service account (KUBERNETES_SERVICE_HOST unset or no token)")
    default = DEFAULT_KUBECONFIG.expanduser()
    if default.is_file():
        return _from_kubeconfig(str(default), context)
    tried.append(f"no {default}")
    raise KubeConfigError("cannot reach the Kubernetes API: " + "; ".join(tried)
                          + "; pass --kubeconfig (and --context) or set [kube] in the settings")


def _from_kubeconfig(files: str, context: str | None) -> kubernetes.client.ApiClient:
    import kubernetes.config

    config: Any = kubernetes.config  # untyped module
    try:
        client: kubernetes.client.ApiClient = config.new_client_from_config(
            config_file=files, context=context)
    except (config.ConfigException, OSError, ValueError) as error:
        where = f"context {context!r} of " if context else ""
        raise KubeConfigError(f"cannot use {where}kubeconfig {files}: {error}") from error
    return client


def _in_cluster(environ: dict[str, str] | None) -> kubernetes.client.Configuration | None:
    """The service account's configuration, or None outside a pod."""
    import kubernetes.client
    import kubernetes.config
    from kubernetes.config import incluster_config

    if not settings_mod.environment_value(incluster_config.SERVICE_HOST_ENV_NAME, environ=environ):
        return None
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration)
    except kubernetes.config.ConfigException:
        return None
    return configuration
