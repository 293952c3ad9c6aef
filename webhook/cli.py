"""``carbongate serve`` and ``carbongate review``.

``review`` is how a platform team checks a Rego edit before it ships: plain
manifests (what ``kubectl apply -f`` takes, a Namespace among them supplying
namespace labels) or AdmissionReviews in, the decision, the decoded patch and
the warnings out, decided offline by the same code path as the running webhook.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from carbongate import cliargs, clock, kube
from carbongate import settings as settings_mod


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    serve = subparsers.add_parser("serve", parents=[common], help="serve the admission webhook (gunicorn, TLS)")
    serve.add_argument("--dev", action="store_true",
                       help="run the carbon feed over the bundled demo traces in the same server")
    serve.add_argument("--bind", help="host:port (default: webhook.bind)")
    kube.add_arguments(serve)
    serve.set_defaults(handler=_serve)

    review = subparsers.add_parser(
        "review", parents=[common],
        help="decide manifests or AdmissionReviews offline: decision, patch, warnings",
        description="Decide every workload in the files as the webhook would (a CREATE of each), offline. "
                    "Files are YAML or JSON manifests, one or many documents, or AdmissionReviews; "
                    "a Namespace among them supplies its workloads' namespace labels.",
    )
    review.add_argument("file", type=Path, nargs="+", help="manifests (YAML/JSON) or AdmissionReview v1 JSON")
    review.add_argument("--now", type=cliargs.instant,
                        help="instant to decide at: RFC 3339 (2026-11-22T17:00:00Z) or now, now-2h, now+30m "
                             "(default: now, on the traces' same time of year)")
    review.add_argument("--grid", type=Path, nargs="+", metavar="TRACE.csv",
                        help="grid traces (any layout simulate --grid reads); default: the bundled demo traces")
    review.add_argument("--policy-dir", type=Path, help="Rego policy directory (default: the shipped policies)")
    review.add_argument("-n", "--namespace", help="namespace of manifests that name none (default: default)")
    review.add_argument("--namespace-label", action="append", default=[], metavar="KEY=VALUE", type=cliargs.label,
                        help="a namespace label, laid over those of a Namespace in the files (repeatable)")
    review.add_argument("--budgets", type=Path, help="a budgets document (data.carbongate.budgets) as JSON")
    review.add_argument("--json", action="store_true",
                        help="print JSON: one object, or a list when the files hold several workloads")
    review.set_defaults(handler=_review)

    test = subparsers.add_parser(
        "test", parents=[common],
        help="run declarative admission tests (carbongate-test.yaml) on manifests, for CI",
        description="Run every carbongate-test.yaml under the paths: decide its resources offline and check "
                    "the expected action, reason, warnings and patched resource. Exit 0 when all pass, "
                    "1 when any fails, 2 when a suite cannot be read. The format: docs/policies.md.",
    )
    test.add_argument("path", type=Path, nargs="+", help="directories to search, or suite files")
    test.add_argument("--policy-dir", type=Path, help="Rego policy directory (default: the shipped policies)")
    test.add_argument("-o", "--output", choices=("text", "json", "junit"), default="text",
                      help="text (default), json, or junit (JUnit XML for CI test reports)")
    test.add_argument("-v", "--verbose", action="store_true", help="print passing results too")
    test.set_defaults(handler=_test)


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

    settings = _offline_settings(args)
    try:
        outcomes = offline.review_files(
            list(args.file),
            settings=settings,
            now=args.now or clock.utc_now().replace(microsecond=0),
            traces=tuple(args.grid or ()),
            namespace_labels=dict(args.namespace_label),
            budgets_file=args.budgets,
            namespace=args.namespace,
        )
    except offline.ReviewError as error:
        print(f"carbongate review: {error}", file=sys.stderr)
        return 2
    if args.json:
        documents = [outcome.as_json() for outcome in outcomes]
        print(json.dumps(documents[0] if len(documents) == 1 else documents, indent=2))
    else:
        print("\n\n".join(outcome.as_text() for outcome in outcomes))
    return 0


def _offline_settings(args: argparse.Namespace) -> settings_mod.Settings:
    """The settings, with ``--policy-dir`` over the engine's policy directory."""
    overrides: dict[str, dict[str, Any]] = {"engine": {"policy_dir": args.policy_dir}} if args.policy_dir else {}
    return settings_mod.load(config_file=args.config, overrides=overrides)


def _test(args: argparse.Namespace) -> int:
    from carbongate import junit
    from webhook import offline, suite

    settings = _offline_settings(args)
    try:
        checks = suite.run(list(args.path), settings=settings)
    except (suite.SuiteError, offline.ReviewError) as error:
        print(f"carbongate test: {error}", file=sys.stderr)
        return 2
    if args.output == "json":
        print(json.dumps([check.as_json() for check in checks], indent=2))
    elif args.output == "junit":
        print(junit.render((junit.Case(suite=c.suite, name=f"{c.test} {c.resource}".strip(), status=c.status,  # type: ignore[arg-type]
                                       message=c.error or (c.problems[0] if c.problems else ""),
                                       detail="\n".join(c.problems) or c.error) for c in checks),
                           name="carbongate test"), end="")
    else:
        _print_checks(checks, verbose=bool(args.verbose))
    if any(check.status == "error" for check in checks):
        return 2
    return 1 if any(check.status == "fail" for check in checks) else 0


def _print_checks(checks: list[Any], *, verbose: bool) -> None:
    for check in checks:
        if check.status == "pass" and not verbose:
            continue
        print(f"{check.status.upper():5} {check.test} {check.resource}".rstrip() + f"  ({check.suite})")
        for line in [check.error] if check.error else check.problems:
            print("      " + line.replace("\n", "\n      "))
    counts = {status: sum(c.status == status for c in checks) for status in ("pass", "fail", "error")}
    print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['error']} errors")
