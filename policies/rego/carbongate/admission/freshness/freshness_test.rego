package carbongate.admission.freshness_test

import rego.v1

import data.carbongate.admission.freshness

now_ns := time.parse_rfc3339_ns("2026-11-21T12:00:00Z")

fresh := {
	"now_g_per_kwh": 412.0, "signal": "average", "stale": false,
	"observed_at": "2026-11-21T11:30:00Z", "windows": [],
}

test_recent_unflagged_data_is_usable if {
	freshness.usable(fresh, now_ns, 3600)
	not freshness.problem("GB", fresh, now_ns, 3600)
}

test_data_flagged_stale_by_the_feed_is_not_used if {
	region := object.union(fresh, {"stale": true})
	not freshness.usable(region, now_ns, 3600)
	freshness.problem("GB", region, now_ns, 3600) == {
		"reason": "stale-data",
		"text": "grid data for GB is stale (observed 30m ago at 2026-11-21T11:30:00Z)",
	}
}

test_data_older_than_the_config_limit_is_stale_even_unflagged if {
	region := object.union(fresh, {"observed_at": "2026-11-21T08:45:00Z"})
	freshness.problem("DE", region, now_ns, 3600).text == "grid data for DE is stale (observed 3h15m ago at 2026-11-21T08:45:00Z)"
}

test_data_without_a_stale_flag_is_treated_as_stale if {
	region := object.remove(fresh, ["stale"])
	freshness.problem("GB", region, now_ns, 3600).reason == "stale-data"
}

test_data_with_an_unreadable_observation_time_is_stale if {
	region := object.union(fresh, {"observed_at": "an hour ago"})
	freshness.problem("GB", region, now_ns, 3600).text == "grid data for GB is stale (observed at an unknown time)"
}

test_a_region_missing_from_the_plan_has_no_data if {
	freshness.problem("NO", null, now_ns, 3600) == {"reason": "no-data", "text": "no grid data for NO"}
}

test_an_index_signal_has_no_usable_intensity if {
	region := object.union(fresh, {"now_g_per_kwh": null, "signal": "index"})
	freshness.problem("GB", region, now_ns, 3600) == {
		"reason": "no-data",
		"text": "grid data for GB has no intensity in gCO2/kWh (signal index)",
	}
}
