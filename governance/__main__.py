"""``python -m governance``: the governance service (same as ``carbongate governance``)."""

from __future__ import annotations

import sys

from carbongate import cli

if __name__ == "__main__":
    sys.exit(cli.main(["governance", *sys.argv[1:]]))
