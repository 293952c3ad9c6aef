"""Write the expected patched resources of tests/cases/carbongate-test.yaml from what the policies decide now.

For a deliberate policy change only: run it, then READ the diff of the
expected files (``git diff tests/cases/expected``) before committing, as with
``kyverno test`` golden resources. ``carbongate test`` never writes them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from carbongate import settings as settings_mod
from webhook import offline, suite

SUITE = Path(__file__).resolve().parent / suite.SUITE_FILE


def main() -> int:
    settings = settings_mod.load(environ={})
    reviewer = offline.Reviewer(settings, policy_version=suite.POLICY_VERSION)
    for test in suite.load(SUITE):
        for outcome in suite.decide(test, reviewer=reviewer, settings=settings):
            decision = outcome.result.decision or {}
            print(f"{test.name}: {decision.get('action')} {decision.get('reason')}")
            for expected in test.results:
                target = expected.get("patchedResource")
                if target and suite.matches(outcome.request, expected):
                    path = SUITE.parent / str(target)
                    path.write_text(json.dumps(suite.patched(outcome), indent=2, sort_keys=True) + "\n")
    reviewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
