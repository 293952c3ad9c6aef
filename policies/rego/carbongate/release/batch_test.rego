package carbongate.release.batch_test

import rego.v1

import data.carbongate.release
import data.carbongate.release.batch

hour_ns := 3600000000000

t0 := time.parse_rfc3339_ns("2026-11-21T12:00:00Z")

item(now, not_before_h, windows) := {
	"facts_version": 2, "now_ns": now,
	"workload": {
		"tier": "3", "annotations": {}, "not_before_ns": t0 + (not_before_h * hour_ns),
		"deadline": "2026-11-21T20:00:00Z", "release_by_ns": t0 + (6 * hour_ns),
	},
	"plan": {"home_region": "GB", "regions": {"GB": {
		"now_g_per_kwh": 400, "stale": false, "fresh_until_ns": t0 + (48 * hour_ns),
		"windows": [{"start_ns": t0 + (h * hour_ns), "mean_g_per_kwh": m} | some [h, m] in windows],
	}}},
}

waiting := item(t0, 3, [[0, 400], [3, 120]])

open_now := item(t0 + (3 * hour_ns), 3, [[3, 120]])

replanned := item(t0, 3, [[0, 400], [3, 120], [5, 60]])

test_each_item_is_decided_as_alone if {
	items := [waiting, open_now, replanned]
	decided := batch.decisions with input as {"items": items}
	count(decided) == 3
	every i, one in items {
		decided[i] == release.decision with input as one
	}
	decided[0].reason == "waiting"
	decided[1].reason == "window-open"
	decided[2].not_before == "2026-11-21T17:00:00Z"
}

test_an_undefined_decision_is_left_out if {
	decided := batch.decisions with input as {"items": [waiting, {"workload": "not a record"}, open_now]}
	object.keys(decided) == {0, 2}
}

test_no_items_no_decisions if {
	count(batch.decisions) == 0 with input as {"items": []}
}
