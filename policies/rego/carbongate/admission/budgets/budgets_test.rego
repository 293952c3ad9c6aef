package carbongate.admission.budgets_test

import rego.v1

import data.carbongate.admission.budgets

budget_config := {
	"warn_percent": 80, "exhausted_action": "cleanest-only",
	"exhausted_tiers": ["3"], "cleanest_max_g_per_kwh": 100,
}

ml(used, state) := {"limit_g": 800000, "used_g": used, "percent": (used / 800000) * 100, "state": state}

november_ns := time.parse_rfc3339_ns("2026-11-22T17:00:00Z")

december_ns := time.parse_rfc3339_ns("2026-12-01T00:00:00Z")

published(teams) := {
	"period": "2026-11", "teams": teams,
	"period_start_ns": time.parse_rfc3339_ns("2026-11-01T00:00:00Z"), "period_end_ns": december_ns,
}

copy(team, used) := {"team": team, "used_g": used, "period": "2026-11", "period_start_ns": 0, "period_end_ns": december_ns}

test_the_published_entry_is_used if {
	budgets.entry(published({"ml": ml(1, "ok")}), copy("ml", 2), "ml", november_ns) == ml(1, "ok")
}

test_the_input_copy_is_used_when_nothing_is_published if {
	budgets.entry({}, copy("ml", 2), "ml", november_ns) == copy("ml", 2)
	not budgets.entry({}, copy("data", 2), "ml", november_ns)
	not budgets.entry({}, null, "ml", november_ns)
}

test_a_budget_from_an_earlier_period_is_not_applied if {
	not budgets.entry(published({"ml": ml(900000, "exhausted")}), null, "ml", december_ns)
	not budgets.entry({}, copy("ml", 2), "ml", december_ns)
	budgets.entry(published({"ml": ml(900000, "exhausted")}), null, "ml", december_ns - 1)
}

test_a_monthly_period_name_places_a_document_without_bounds if {
	budgets.current({"period": "2026-11"}, november_ns)
	not budgets.current({"period": "2026-11"}, december_ns)
	budgets.current({"period": "2028-02"}, time.parse_rfc3339_ns("2028-02-29T23:59:59Z"))
	not budgets.current({"period": "2026-W47"}, november_ns)
	not budgets.current({}, november_ns)
}

test_the_period_is_named_as_published if {
	budgets.period_name(published({})) == "2026-11"
	budgets.period_name({}) == "this period"
	budgets.origin(published({"ml": {}}), copy("ml", 1), "ml").period == "2026-11"
	budgets.origin({}, copy("ml", 1), "ml") == copy("ml", 1)
}

test_states_follow_the_published_state if {
	budgets.state({"state": "exhausted"}, budget_config) == "exhausted"
	budgets.state({"state": "warn"}, budget_config) == "warn"
	budgets.state({"state": "ok", "percent": 10}, budget_config) == "ok"
}

test_states_follow_the_share_used_against_the_config if {
	budgets.state(ml(652000, "ok"), budget_config) == "warn"
	budgets.state(ml(812000, "warn"), budget_config) == "exhausted"
	budgets.state(ml(652000, "ok"), object.union(budget_config, {"warn_percent": 90})) == "ok"
}

test_percent_is_computed_when_not_published if {
	budgets.percent({"used_g": 200, "limit_g": 800}) == 25
	not budgets.percent({"used_g": 200, "limit_g": 0})
	budgets.state({"used_g": 900, "limit_g": 800}, budget_config) == "exhausted"
}

test_exhausted_listed_tiers_get_the_configured_action if {
	budgets.reaction("exhausted", "3", budget_config) == "cleanest-only"
	budgets.reaction("exhausted", "3", object.union(budget_config, {"exhausted_action": "deny"})) == "deny"
}

test_an_unknown_exhausted_action_means_cleanest_only if {
	budgets.reaction("exhausted", "3", object.union(budget_config, {"exhausted_action": "panic"})) == "cleanest-only"
}

test_other_tiers_and_warn_states_only_warn if {
	budgets.reaction("exhausted", "2", budget_config) == "warn"
	budgets.reaction("warn", "3", budget_config) == "warn"
	budgets.reaction("ok", "3", budget_config) == "none"
}

test_the_warning_names_team_use_and_limit if {
	budgets.usage("ml", ml(652000, "warn"), "2026-11") == "team ml has used 652 of 800 kgCO2e in 2026-11 (82%)"
	budgets.usage("ml", {"used_g": 1000}, "2026-W47") == "team ml has used 1 of 0 kgCO2e in 2026-W47 (0%)"
}

facts(state, reaction) := {
	"team": "ml", "budget": ml(812000, state), "state": state, "reaction": reaction, "tier": "3",
	"period": "2026-11",
}

test_warnings_say_what_the_budget_does if {
	budgets.warning(facts("warn", "warn"), budget_config) == "team ml has used 812 of 800 kgCO2e in 2026-11 (102%)"
	budgets.warning(facts("exhausted", "warn"), budget_config) == "team ml has used 812 of 800 kgCO2e in 2026-11 (102%); budget exhausted"
	budgets.warning(facts("exhausted", "cleanest-only"), budget_config) == concat("", [
		"team ml has used 812 of 800 kgCO2e in 2026-11 (102%); ",
		"budget exhausted: tier-3 work waits for windows at or below 100 gCO2/kWh",
	])
	not budgets.warning(facts("ok", "none"), budget_config)
	not budgets.warning(facts("exhausted", "deny"), budget_config)
}

test_a_denial_names_team_use_and_limit if {
	budgets.denial(facts("exhausted", "deny")) == concat("", [
		"team ml has used 812 of 800 kgCO2e in 2026-11 (102%); ",
		"budget exhausted: tier-3 workloads are refused until it resets",
	])
}
