"""``python -m webhook``: serve the admission webhook under gunicorn.

The Prometheus multiprocess directory has to be in the environment before
anything imports prometheus-client, so this module sets it first and imports
the server afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from carbongate import cli, kube


def parser() -> argparse.ArgumentParser:
    """The flags ``carbongate serve`` passes on."""
    found = argparse.ArgumentParser(prog="python -m webhook", description=__doc__)
    found.add_argument("--config", type=Path, help="TOML settings file")
    found.add_argument("--dev", action="store_true",
                       help="also run the carbon feed over the bundled demo traces (make run)")
    found.add_argument("--bind", help="host:port (default from settings)")
    found.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR (default INFO)")
    kube.add_arguments(found)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cli.configure_logging(args.log_level)  # the same format as every carbongate command

    from carbongate import settings as settings_mod

    try:
        settings = settings_mod.load(config_file=args.config, overrides=flag_overrides(args))
        if settings.webhook.namespace_labels_source == "api":
            kube.api_client(settings.kube)  # fail here, not in every gunicorn worker
    except settings_mod.SettingsError as error:
        print(f"python -m webhook: {error}", file=sys.stderr)
        return 2
    settings.webhook.metrics_dir.mkdir(parents=True, exist_ok=True)
    # Written for prometheus-client, which reads it when it is first imported.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.webhook.metrics_dir.resolve())

    from webhook import server

    server.WebhookServer(settings, dev=args.dev).run()
    return 0


def flag_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Flags into settings; naming a cluster (--kubeconfig/--context) means reading its
    namespace labels, the only thing the webhook asks the API server."""
    overrides: dict[str, dict[str, Any]] = {}
    if args.bind:
        overrides["webhook"] = {"bind": args.bind}
    cluster = kube.overrides(args)
    if cluster:
        overrides["kube"] = cluster
        overrides.setdefault("webhook", {})["namespace_labels_source"] = "api"
    return overrides


if __name__ == "__main__":
    sys.exit(main())
