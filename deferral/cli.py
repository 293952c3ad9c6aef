"""``carbongate release`` (run the controller) and ``carbongate deferred`` (what waits)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from carbongate import settings as settings_mod


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    run = subparsers.add_parser("release", parents=[common],
                                help="run the deferral controller (releases gated pods and "
                                     "suspended jobs)")
    run.add_argument("--api-url", help="Kubernetes API URL (default: in-cluster or kubeconfig)")
    run.set_defaults(handler=_release)
    listing = subparsers.add_parser("deferred", parents=[common],
                                    help="list the workloads carbongate holds, why and until when")
    listing.add_argument("--api-url", help="Kubernetes API URL (default: in-cluster or kubeconfig)")
    listing.add_argument("--json", action="store_true", help="print JSON rows")
    listing.set_defaults(handler=_deferred)


def _settings(args: argparse.Namespace) -> settings_mod.Settings:
    overrides = {"deferral": {"api_url": args.api_url}} if args.api_url else None
    return settings_mod.load(config_file=args.config, overrides=overrides)


def _release(args: argparse.Namespace) -> int:
    from deferral import service

    return service.serve_forever(_settings(args))


def _deferred(args: argparse.Namespace) -> int:
    import kubernetes.config

    from deferral import kube, listing, service
    from deferral import metrics as metrics_mod

    try:
        settings = _settings(args)
    except settings_mod.SettingsError as error:
        print(f"carbongate deferred: {error}", file=sys.stderr)
        return 2
    section = settings.deferral
    try:
        client = kube.build_api_client(
            api_url=section.api_url,
            kubeconfig=str(section.kubeconfig) if section.kubeconfig else None)
        gateway = kube.Gateway(api_client=client, request_timeout_s=section.request_timeout_s)
        platform = service.platform_config(settings.engine.policy_dir)
        config = service.controller_config(section, platform=platform)
        rows = listing.collect(gateway, now=datetime.now(UTC),
                               default_duration_s=config.default_duration_s,
                               grid_view=service.grid_view(settings, metrics=metrics_mod.Metrics()),
                               pausing_config=config.pausing)
    except kube.API_ERRORS + (kubernetes.config.ConfigException,) as error:
        print(f"carbongate deferred: cannot read the cluster: {error}", file=sys.stderr)
        return 1
    print(json.dumps(rows, indent=2) if args.json else listing.table(rows))
    return 0
