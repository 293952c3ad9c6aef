package carbongate.admission.windows_test

import rego.v1

import data.carbongate.admission.windows

config := {
	"home_region": "GB",
	"regions": {
		"GB": {"latency_ms": 0},
		"DE": {"latency_ms": 15},
		"NO": {"latency_ms": 25},
	},
}

staging := {"may_shift": true, "max_latency_ms": 20}

batch := {"may_shift": true}

production := {"may_shift": false}

t0 := 1795352400000000000

hour := 3600000000000

window(hours, mean) := {"start_ns": t0 + hours * hour, "mean_g_per_kwh": mean}

tag(region, hours, mean, move) := object.union(window(hours, mean), {"region": region, "move_g": move})

# ---------------------------------------------------------------- allowed regions

test_without_requested_regions_only_home_is_allowed if {
	windows.allowed([], "GB", batch, config) == {"GB"}
}

test_requested_regions_are_allowed_when_configured if {
	windows.allowed(["DE", "NO"], "GB", batch, config) == {"DE", "NO"}
}

test_unknown_requested_regions_are_dropped_with_a_warning if {
	windows.allowed(["NO", "XX"], "GB", batch, config) == {"NO"}
	windows.unknown_region_warnings(["NO", "XX", 7], config) == [
		`region "XX" in carbongate.io/regions is not configured; ignored`,
		`region 7 in carbongate.io/regions is not configured; ignored`,
	]
}

test_only_unknown_regions_fall_back_to_home if {
	windows.allowed(["XX"], "GB", batch, config) == {"GB"}
}

test_regions_beyond_the_latency_budget_are_not_allowed if {
	windows.allowed(["GB", "DE", "NO"], "GB", staging, config) == {"GB", "DE"}
}

test_a_tier_that_may_not_shift_stays_at_home if {
	windows.allowed(["GB", "DE"], "GB", production, config) == {"GB"}
	windows.allowed(["DE"], "GB", production, config) == {"GB"}
}

# ---------------------------------------------------------------- windows of one region

test_windows_stop_at_the_latest_start if {
	windows.within({"windows": [window(0, 400), window(1, 300), window(3, 100)]}, t0 + 2 * hour) == [
		window(0, 400), window(1, 300),
	]
}

test_malformed_windows_are_skipped if {
	region := {"windows": [window(0, 40), {"start_ns": "soon", "mean_g_per_kwh": 1}, window(1, null)]}
	windows.within(region, t0 + hour) == [window(0, 40)]
}

test_lowest_is_the_lowest_mean_ties_to_the_earliest if {
	windows.lowest([window(0, 400), window(5, 90), window(2, 150)]) == window(5, 90)
	windows.lowest([window(4, 90), window(2, 90)]) == window(2, 90)
	not windows.lowest([])
}

test_earliest_at_most_takes_the_first_clean_enough_window if {
	ws := [window(0, 300), window(2, 95), window(6, 40)]
	windows.earliest_at_most(ws, 100) == window(2, 95)
	not windows.earliest_at_most(ws, 30)
}

test_region_bests_tag_each_regions_best_window if {
	plan := {
		"GB": {"windows": [window(0, 400), window(1, 300)], "move_g": 0},
		"NO": {"windows": [window(0, 40), window(5, 10)], "move_g": 12.5},
		"DE": {"windows": []},
	}
	windows.region_bests(plan, {"GB", "NO", "DE"}, t0 + 2 * hour) == {
		"GB": tag("GB", 1, 300, 0),
		"NO": tag("NO", 0, 40, 12.5),
	}
}

test_region_firsts_tag_each_regions_first_clean_window if {
	plan := {"GB": {"windows": [window(0, 400), window(1, 90), window(2, 50)]}}
	windows.region_firsts(plan, {"GB"}, t0 + 5 * hour, 100) == {"GB": tag("GB", 1, 90, 0)}
}

test_running_now_costs_the_window_starting_now if {
	plan := {"GB": {"now_g_per_kwh": 412, "windows": [window(0, 380), window(1, 200)]}}
	windows.run_now(plan, "GB", t0 + 5) == 380
}

test_running_now_falls_back_to_the_reading_without_a_current_window if {
	plan := {"GB": {"now_g_per_kwh": 412, "windows": [window(1, 200)]}}
	windows.run_now(plan, "GB", t0) == 412
}

# ---------------------------------------------------------------- choosing between regions

test_best_is_the_lowest_mean if {
	windows.best([tag("GB", 3, 90, 0), tag("NO", 0, 31, 0)], "GB").region == "NO"
}

test_equal_means_go_to_the_earliest_start if {
	windows.best([tag("GB", 4, 90, 0), tag("DE", 2, 90, 0)], "GB").region == "DE"
}

test_equal_means_and_starts_go_to_home_then_by_name if {
	windows.best([tag("DE", 2, 90, 0), tag("GB", 2, 90, 0)], "GB").region == "GB"
	windows.best([tag("NO", 2, 90, 0), tag("DE", 2, 90, 0)], "GB").region == "DE"
}

test_first_is_the_earliest_start_ties_to_the_lowest_mean if {
	windows.first([tag("GB", 4, 20, 0), tag("DE", 2, 90, 0), tag("NO", 2, 80, 0)], "GB").region == "NO"
}

test_away_ranks_home_first if {
	windows.away("GB", "GB") == 0
	windows.away("DE", "GB") == 1
}

test_only_keeps_the_named_regions if {
	windows.only({"GB": tag("GB", 0, 1, 0), "NO": tag("NO", 0, 2, 0)}, {"NO"}) == [tag("NO", 0, 2, 0)]
}

# ---------------------------------------------------------------- breakeven

test_a_cleaner_region_with_nothing_to_move_is_worth_moving_to if {
	windows.worth_moving(null, 400, 50, 0)
	not windows.worth_moving(null, 400, 450, 0)
}

test_moving_pays_only_when_the_saving_exceeds_the_network_cost if {
	windows.worth_moving(1, 400, 50, 349)
	not windows.worth_moving(1, 400, 50, 350)
	not windows.worth_moving(null, 400, 50, 10)
}

test_other_regions_count_only_past_the_breakeven if {
	bests := {"GB": tag("GB", 0, 400, 0), "NO": tag("NO", 0, 30, 500), "DE": tag("DE", 0, 200, 10)}
	windows.counted(bests, "GB", 400, 1) == {"GB", "DE"}
	windows.counted(bests, "GB", 400, 2) == {"GB", "DE", "NO"}
}

test_move_cost_defaults_to_zero if {
	windows.move_g({"move_g": null}) == 0
	windows.move_g({"move_g": 3.5}) == 3.5
}
