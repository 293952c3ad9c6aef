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

from carbongate import kube


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webhook", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML settings file")
    parser.add_argument("--dev", action="store_true",
                        help="also run the carbon feed over the bundled demo traces (make run)")
    parser.add_argument("--bind", help="host:port (default from settings)")
    kube.add_arguments(parser)
    args = parser.parse_args(argv)

    from carbongate import settings as settings_mod

    settings = settings_mod.load(config_file=args.config, overrides=_overrides(args))
    settings.webhook.metrics_dir.mkdir(parents=True, exist_ok=True)
    # Written for prometheus-client, which reads it when it is first imported.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.webhook.metrics_dir.resolve())

    from webhook import server

    server.WebhookServer(settings, dev=args.dev).run()
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
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
