"""``python -m deferral``: run the release controller (same as ``carbongate release``)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deferral", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML settings file")
    parser.add_argument("--api-url", help="Kubernetes API URL (default: in-cluster/kubeconfig)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from carbongate import settings as settings_mod
    from deferral import service

    overrides = {"deferral": {"api_url": args.api_url}} if args.api_url else None
    return service.serve_forever(settings_mod.load(config_file=args.config, overrides=overrides))


if __name__ == "__main__":
    sys.exit(main())
