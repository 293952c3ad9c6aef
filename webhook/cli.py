"""``carbongate serve`` and ``carbongate review``.

``review`` is how a platform team checks a Rego edit before it ships: one
AdmissionReview file in, the decision, the decoded patch and the warnings
out, decided offline by the same code path as the running webhook.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from carbongate import clock, kube, timefmt
from carbongate import settings as settings_mod


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    serve = subparsers.add_parser("serve", parents=[common], help="serve the admission webhook (gunicorn, TLS)")
    serve.add_argument("--dev", action="store_true",
                       help="run the carbon feed over the bundled demo traces in the same server")
    serve.add_argument("--bind", help="host:port (default: webhook.bind)")
    kube.add_arguments(serve)
    serve.set_defaults(handler=_serve)

    review = subparsers.add_parser("review", parents=[common],
                                   help="decide one AdmissionReview offline and print decision, patch, warnings")
    review.add_argument("file", type=Path, help="an AdmissionReview v1 JSON file")
    review.add_argument("--now", help="RFC 3339 instant to decide at (default: the trace's time of year now)")
    review.add_argument("--grid", type=Path, nargs="+", metavar="TRACE.csv",
                        help="grid traces (Electricity Maps data-portal CSV); default: the bundled demo traces")
    review.add_argument("--policy-dir", type=Path, help="Rego policy directory (default: the shipped policies)")
    review.add_argument("--namespace-label", action="append", default=[], metavar="KEY=VALUE",
                        help="a label of the request's namespace (repeatable)")
    review.add_argument("--budgets", type=Path, help="a budgets document (data.carbongate.budgets) as JSON")
    review.add_argument("--json", action="store_true", help="print one JSON object")
    review.set_defaults(handler=_review)


def _serve(args: argparse.Namespace) -> int:
    """Run ``python -m webhook`` in a fresh interpreter (see webhook/__main__.py for why)."""
    argv = [sys.executable, "-m", "webhook"]
    if args.config:
        argv += ["--config", str(args.config)]
    if args.kubeconfig:
        argv += ["--kubeconfig", str(args.kubeconfig)]
    if args.context:
        argv += ["--context", args.context]
    if args.api_url:
        argv += ["--api-url", args.api_url]
    argv += ["--log-level", args.log_level]
    if args.dev:
        argv.append("--dev")
    if args.bind:
        argv += ["--bind", args.bind]
    os.execv(sys.executable, argv)
    return 0  # not reached


def _review(args: argparse.Namespace) -> int:
    from webhook import offline

    overrides: dict[str, dict[str, Any]] = {}
    if args.policy_dir:
        overrides["engine"] = {"policy_dir": args.policy_dir}
    settings = settings_mod.load(config_file=args.config, overrides=overrides)
    try:
        labels = dict(_label(item) for item in args.namespace_label)
        now = _instant(args.now) if args.now else clock.utc_now().replace(microsecond=0)
        outcome = offline.review_file(
            args.file,
            settings=settings,
            now=now,
            traces=tuple(args.grid or ()),
            namespace_labels=labels,
            budgets_file=args.budgets,
        )
    except offline.ReviewError as error:
        print(f"carbongate review: {error}", file=sys.stderr)
        return 2
    print(json.dumps(outcome.as_json(), indent=2) if args.json else outcome.as_text())
    return 0


def _label(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise SystemExit(f"carbongate review: --namespace-label wants KEY=VALUE, got {item!r}")
    return key, value


def _instant(text: str) -> datetime:
    try:
        return timefmt.read_time(text, "--now")
    except ValueError as error:
        raise SystemExit(f"carbongate review: {error}") from error
