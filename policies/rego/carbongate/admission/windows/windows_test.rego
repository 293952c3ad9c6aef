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

cand(region, hours, mean, move) := object.union(window(hours, mean), {"region": region, "move_g": move})

# allowed regions

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

# candidates

test_candidates_stop_at_the_latest_start_and_carry_their_region if {
	plan := {"GB": {"move_g": 0, "windows": [window(0, 400), window(1, 300), window(3, 100)]}}
	windows.candidates(plan, {"GB"}, t0 + 2 * hour) == [cand("GB", 0, 400, 0), cand("GB", 1, 300, 0)]
}

test_candidates_skip_malformed_windows_and_default_move_cost if {
	plan := {"NO": {"windows": [window(0, 40), {"start_ns": "soon", "mean_g_per_kwh": 1}, window(1, null)]}}
	windows.candidates(plan, {"NO"}, t0 + hour) == [cand("NO", 0, 40, 0)]
}

# run now

test_running_now_costs_the_window_starting_now if {
	plan := {"GB": {"now_g_per_kwh": 412, "windows": [window(0, 380), window(1, 200)]}}
	windows.run_now(plan, "GB", t0 + 5) == 380
}

test_running_now_falls_back_to_the_reading_without_a_current_window if {
	plan := {"GB": {"now_g_per_kwh": 412, "windows": [window(1, 200)]}}
	windows.run_now(plan, "GB", t0) == 412
}

# choosing

test_best_window_is_the_lowest_mean if {
	windows.best([cand("GB", 0, 400, 0), cand("GB", 5, 90, 0), cand("GB", 2, 150, 0)], "GB").start_ns == t0 + 5 * hour
}

test_equal_means_go_to_the_earliest_start if {
	windows.best([cand("GB", 4, 90, 0), cand("GB", 2, 90, 0)], "GB").start_ns == t0 + 2 * hour
}

test_equal_means_and_starts_go_to_home if {
	windows.best([cand("DE", 2, 90, 0), cand("GB", 2, 90, 0)], "GB").region == "GB"
	windows.best([cand("NO", 2, 90, 0), cand("DE", 2, 90, 0)], "GB").region == "DE"
}

test_first_clean_window_is_the_earliest_under_the_limit if {
	cands := [cand("GB", 0, 300, 0), cand("GB", 2, 95, 0), cand("GB", 6, 40, 0)]
	windows.first_clean(cands, 100, "GB").start_ns == t0 + 2 * hour
	not windows.first_clean(cands, 30, "GB")
}

test_away_ranks_home_first if {
	windows.away("GB", "GB") == 0
	windows.away("DE", "GB") == 1
}

# breakeven

test_a_cleaner_region_with_nothing_to_move_is_worth_moving_to if {
	windows.worth_moving(null, 400, 50, 0)
	not windows.worth_moving(null, 400, 450, 0)
}

test_moving_pays_only_when_the_saving_exceeds_the_network_cost if {
	windows.worth_moving(1, 400, 50, 349)
	not windows.worth_moving(1, 400, 50, 350)
	not windows.worth_moving(null, 400, 50, 10)
}

test_other_regions_are_choosable_only_past_the_breakeven if {
	cands := [cand("GB", 0, 400, 0), cand("NO", 0, 30, 500), cand("DE", 0, 200, 10)]
	choosable := windows.choosable(cands, "GB", 400, 1)
	{c.region | some c in choosable} == {"GB", "DE"}
}

test_home_reference_is_homes_best_window if {
	windows.home_reference([cand("GB", 0, 400, 0), cand("GB", 1, 300, 0), cand("NO", 0, 30, 0)], "GB", 410) == 300
}

test_home_reference_without_home_windows_is_the_run_now_value if {
	windows.home_reference([cand("NO", 0, 30, 0)], "GB", 410) == 410
}
