"""``carbongate review`` shows an interruptible Job's plan of slices.

The captured nightly-train Job (v1.28 API server) is made interruptible with
10 h of work and reviewed offline with the shipped policies on the demo
traces at 2023-11-22 18:00 UTC: tier 3 may wait 12 h, so it must be done by
16:00 the next day, and its slices go to the cleanest night and morning
hours. Without the annotation no plan is shown.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from carbongate import settings as settings_mod
from carbongate import timefmt
from webhook import offline

CAPTURED = (Path(__file__).resolve().parent.parent / "fixtures" / "admission" / "k8s-v1.28-loopback"
            / "01_create-job_nightly-train.json")
AT = datetime(2023, 11, 22, 18, tzinfo=UTC)
LABELS = {"carbongate.io/tier": "3", "carbongate.io/team": "ml"}


def _review(tmp_path: Path, notes: dict[str, str]) -> offline.Outcome:
    review = json.loads(CAPTURED.read_text(encoding="utf-8"))
    review["request"]["object"]["metadata"]["annotations"].update(notes)
    path = tmp_path / "review.json"
    path.write_text(json.dumps(review), encoding="utf-8")
    return offline.review_file(path, settings=settings_mod.load(environ={}), now=AT, traces=(),
                               namespace_labels=LABELS, budgets_file=None)


def test_an_interruptible_job_is_shown_with_its_slices(tmp_path) -> None:
    outcome = _review(tmp_path, {"carbongate.io/interruptible": "true",
                                 "carbongate.io/expected-duration": "10h"})
    decision = outcome.result.decision or {}
    deadline = timefmt.parse_time(decision["deadline"])
    plan = outcome.slice_plan
    assert plan is not None and plan.slices
    assert plan.slices[0].start >= AT and plan.slices[-1].end <= deadline
    work = sum((s.end - s.start).total_seconds() for s in plan.slices)
    assert work == 10 * 3600 + 15 * 60 * (len(plan.slices) - 1)  # first start is free
    # Cleaner than running the 10 h straight from now.
    assert plan.mean_g_per_kwh < 150
    text = outcome.as_text()
    assert "slices:   11-2" in text
    assert outcome.as_json()["slice_plan"][0]["start"] == timefmt.format_time(plan.slices[0].start)


def test_a_job_that_did_not_opt_in_has_no_slices(tmp_path) -> None:
    outcome = _review(tmp_path, {})
    assert outcome.slice_plan is None
    assert "slices:" not in outcome.as_text()
    assert outcome.as_json()["slice_plan"] is None
