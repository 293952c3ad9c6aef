"""Write tests/cases/expected/*.patched.json from what the policies decide now.

For a deliberate policy change only: run it, then READ the diff of the
expected files (``git diff tests/cases/expected``) before committing, as with
``kyverno test`` golden resources. The test never calls this.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from carbongate import settings as settings_mod
from policy_engine import embedded
from tests.cases import test_cases
from webhook import patches, reviews


def main() -> int:
    engine = embedded.EmbeddedEngine(policy_dir=settings_mod.DEFAULT_POLICY_DIR, pool_size=1)
    test_cases.EXPECTED.mkdir(exist_ok=True)
    for name, case in test_cases.load_cases():
        document, result = test_cases.decide_case(engine, case)
        decision = result.decision or {}
        warnings = result.response["response"].get("warnings", [])
        print(f"{name}: {decision.get('action')} {decision.get('reason')} {warnings}")
        if case["expect"].get("unchanged"):
            continue
        patched = patches.apply_patch(document["request"]["object"], reviews.decoded_patch(result.response))
        (test_cases.EXPECTED / f"{name}.patched.json").write_text(json.dumps(patched, indent=2, sort_keys=True) + "\n")
    engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
