"""``python -m deferral``: run the release controller (same as ``carbongate release``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from carbongate import cli


def main(argv: Sequence[str] | None = None) -> int:
    """The ``carbongate release`` command: one parser, one way to read --config and the flags."""
    return cli.main(["release", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
