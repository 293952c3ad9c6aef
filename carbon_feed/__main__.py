"""``python -m carbon_feed``: the feed sidecar, the same as ``carbongate feed``."""

from __future__ import annotations

import sys

from carbongate import cli

if __name__ == "__main__":
    sys.exit(cli.main(["feed", *sys.argv[1:]]))
