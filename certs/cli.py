"""``carbongate certs generate``: a development CA and serving certificate.

Prints the base64 CA bundle on standard output and nothing else, so it can be
captured straight into a webhook configuration
(``CA_BUNDLE=$(carbongate certs generate ...)``); what was written goes to
standard error. Never prints a private key.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from certs import authority, files

DEFAULT_DAYS = 365


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add ``certs generate`` to the carbongate command line."""
    certs = subparsers.add_parser(
        "certs", parents=[common], help="development certificates for the webhook"
    )
    actions = certs.add_subparsers(dest="certs_command", metavar="ACTION", required=True)
    generate = actions.add_parser(
        "generate",
        parents=[common],
        help="create ca.crt, ca.key, tls.crt, tls.key and print the caBundle",
        description="Create a self-signed CA and a serving certificate for every "
        "in-cluster name of the webhook Service, plus localhost and 127.0.0.1.",
    )
    generate.add_argument("--service", required=True, help="the webhook's Service name")
    generate.add_argument("--namespace", required=True, help="the Service's namespace")
    generate.add_argument("--out", required=True, type=Path, help="directory to write into")
    generate.add_argument("--force", action="store_true", help="replace existing files")
    generate.add_argument(
        "--days", type=int, default=DEFAULT_DAYS, help=f"validity (default {DEFAULT_DAYS})"
    )
    generate.set_defaults(handler=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    """Write the four files; exit 1 with a message when the request cannot be honoured."""
    try:
        identity = authority.ServiceIdentity(service=args.service, namespace=args.namespace)
        written = files.generate(
            out_dir=args.out, identity=identity, days=args.days, force=args.force
        )
    except (authority.CertificateError, files.FilesExist) as error:
        print(f"carbongate certs generate: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"carbongate certs generate: cannot write {args.out}: {error}", file=sys.stderr)
        return 1
    names = ", ".join((*identity.dns_names(), *map(str, authority.LOOPBACK_ADDRESSES)))
    print(f"wrote {', '.join(files.FILE_NAMES)} in {written.directory} for {names}",
          file=sys.stderr)
    print(written.ca_bundle)
    return 0
