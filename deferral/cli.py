"""``carbongate release`` (run the controller, or ``--all`` to let everything go) and
``carbongate deferred`` (what waits).

All three reach the cluster the same way as every carbongate command
(``--kubeconfig``, ``--context``, ``--api-url``; :mod:`carbongate.kube`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from carbongate import clock, platform
from carbongate import kube as kube_config
from carbongate import settings as settings_mod


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    run = subparsers.add_parser("release", parents=[common],
                                help="run the deferral controller (releases gated pods and "
                                     "suspended jobs); --all releases everything at once",
                                description="Run the deferral release controller, or with --all "
                                            "release everything carbongate holds and exit.")
    run.add_argument("--all", action="store_true", dest="release_all",
                     help="release every workload carbongate holds now and exit (before an "
                          "uninstall: docs/deploy.md)")
    kube_config.add_arguments(run)
    run.set_defaults(handler=_release)
    listing = subparsers.add_parser("deferred", parents=[common],
                                    help="list the workloads carbongate holds, why and until when")
    kube_config.add_arguments(listing)
    kube_config.add_namespace_arguments(listing)
    listing.add_argument("--json", action="store_true", help="print JSON rows")
    listing.set_defaults(handler=_deferred)


def settings(args: argparse.Namespace) -> settings_mod.Settings:
    """The settings with the cluster flags applied (also ``python -m deferral``)."""
    cluster = kube_config.overrides(args)
    return settings_mod.load(config_file=args.config,
                             overrides={"kube": cluster} if cluster else None)


def _release(args: argparse.Namespace) -> int:
    from deferral import service

    if args.release_all:
        return _release_all(settings(args))
    return service.serve_forever(settings(args))


def _default_duration_s(loaded: settings_mod.Settings) -> int:
    """The same figure the controller and the webhook's deadline use (carbongate.platform)."""
    return platform.read(loaded.engine.policy_dir).default_duration_s(loaded)


def _gateway(section: settings_mod.Settings, *, namespace: str | None = None) -> Any:
    from deferral import kube

    return kube.Gateway(api_client=kube_config.api_client(section.kube),
                        request_timeout_s=section.deferral.request_timeout_s, namespace=namespace)


def _release_all(loaded: settings_mod.Settings) -> int:
    import socket

    from deferral import events, kube, uninstall

    try:
        gateway = _gateway(loaded)
        with kube_config.quiet_retries():
            outcome = uninstall.release_all(
                gateway, recorder=events.Recorder(gateway=gateway, instance=socket.gethostname()),
                now=clock.utc_now, default_duration_s=_default_duration_s(loaded))
    except kube.API_ERRORS as error:
        print(f"carbongate release --all: cannot read the cluster: {error}", file=sys.stderr)
        return 1
    print(uninstall.summary(outcome))
    return 0 if outcome.ok else 1


def _deferred(args: argparse.Namespace) -> int:
    from deferral import kube, listing, service
    from deferral import metrics as metrics_mod

    loaded = settings(args)
    namespace = kube_config.namespace(args, loaded.kube)
    try:
        config = platform.read(loaded.engine.policy_dir)
        controller = service.controller_config(loaded, config)
        with kube_config.quiet_retries():
            rows = listing.collect(_gateway(loaded, namespace=namespace), now=clock.utc_now(),
                                   default_duration_s=controller.default_duration_s,
                                   grid_view=service.grid_view(loaded, config, metrics=metrics_mod.Metrics()),
                                   pausing_config=controller.pausing)
    except kube.API_ERRORS as error:
        print(f"carbongate deferred: cannot read the cluster: {error}", file=sys.stderr)
        return 1
    print(json.dumps(rows, indent=2) if args.json else listing.table(rows))
    return 0
