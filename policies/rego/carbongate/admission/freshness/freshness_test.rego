package carbongate.admission.freshness_test

import rego.v1

import data.carbongate.admission.freshness

now_ns := time.parse_rfc3339_ns("2026-11-21T12:00:00Z")

minute_ns := 60000000000

# Observed at 11:00 on an hourly series: the next point is due at 12:00, and with 15 minutes of
# grace the data is fresh until 12:15.
fresh := {
	"now_g_per_kwh": 412.0, "signal": "average", "stale": false,
	"observed_at": "2026-11-21T11:00:00Z", "fresh_until_ns": now_ns + 15 * minute_ns, "windows": [],
}

test_data_within_its_cadence_and_grace_is_usable if {
	freshness.usable(fresh, now_ns)
	not freshness.problem("GB", fresh, now_ns)
}

test_an_hourly_point_an_hour_old_is_still_fresh_until_the_next_is_due_plus_grace if {
	freshness.usable(fresh, now_ns + 14 * minute_ns)
	not freshness.usable(fresh, now_ns + 15 * minute_ns)
}

test_data_flagged_stale_by_the_feed_is_not_used if {
	region := object.union(fresh, {"stale": true})
	not freshness.usable(region, now_ns)
	freshness.problem("GB", region, now_ns) == {
		"reason": "stale-data",
		"text": "grid data for GB is stale (observed 1h ago at 2026-11-21T11:00:00Z)",
	}
}

test_data_past_its_fresh_until_is_stale_even_unflagged if {
	region := object.union(fresh, {"observed_at": "2026-11-21T08:45:00Z", "fresh_until_ns": now_ns - 60 * minute_ns})
	freshness.problem("DE", region, now_ns).text == "grid data for DE is stale (observed 3h15m ago at 2026-11-21T08:45:00Z)"
}

test_data_without_a_stale_flag_is_treated_as_stale if {
	region := object.remove(fresh, ["stale"])
	freshness.problem("GB", region, now_ns).reason == "stale-data"
}

test_data_without_a_fresh_until_is_treated_as_stale if {
	region := object.remove(fresh, ["fresh_until_ns"])
	freshness.problem("GB", region, now_ns).reason == "stale-data"
}

test_data_with_an_unreadable_observation_time_says_so if {
	region := object.union(fresh, {"observed_at": "an hour ago", "stale": true})
	freshness.problem("GB", region, now_ns).text == "grid data for GB is stale (observed at an unknown time)"
}

test_a_region_missing_from_the_plan_has_no_data if {
	freshness.problem("NO", null, now_ns) == {"reason": "no-data", "text": "no grid data for NO"}
}

test_an_index_signal_has_no_usable_intensity if {
	region := object.union(fresh, {"now_g_per_kwh": null, "signal": "index"})
	freshness.problem("GB", region, now_ns) == {
		"reason": "no-data",
		"text": "grid data for GB has no intensity in gCO2/kWh (signal index)",
	}
}
