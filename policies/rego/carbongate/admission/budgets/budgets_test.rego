package carbongate.admission.budgets_test

import rego.v1

import data.carbongate.admission.budgets

budget_config := {
	"warn_percent": 80, "exhausted_action": "cleanest-only",
	"exhausted_tiers": ["3"], "cleanest_max_g_per_kwh": 100,
}

ml(used, state) := {"limit_g": 800000, "used_g": used, "percent": (used / 800000) * 100, "state": state}

test_the_published_entry_is_used if {
	budgets.entry({"teams": {"ml": ml(1, "ok")}}, {"team": "ml", "used_g": 2}, "ml") == ml(1, "ok")
}

test_the_input_copy_is_used_when_nothing_is_published if {
	budgets.entry({}, {"team": "ml", "used_g": 2}, "ml") == {"team": "ml", "used_g": 2}
	not budgets.entry({}, {"team": "data", "used_g": 2}, "ml")
	not budgets.entry({}, null, "ml")
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
	budgets.usage("ml", ml(652000, "warn")) == "team ml has used 652 of 800 kgCO2e this month (82%)"
	budgets.usage("ml", {"used_g": 1000}) == "team ml has used 1 of 0 kgCO2e this month (0%)"
}

facts(state, reaction) := {"team": "ml", "budget": ml(812000, state), "state": state, "reaction": reaction, "tier": "3"}

test_warnings_say_what_the_budget_does if {
	budgets.warning(facts("warn", "warn"), budget_config) == "team ml has used 812 of 800 kgCO2e this month (102%)"
	budgets.warning(facts("exhausted", "warn"), budget_config) == "team ml has used 812 of 800 kgCO2e this month (102%); budget exhausted"
	budgets.warning(facts("exhausted", "cleanest-only"), budget_config) == concat("", [
		"team ml has used 812 of 800 kgCO2e this month (102%); ",
		"budget exhausted: tier-3 work waits for windows at or below 100 gCO2/kWh",
	])
	not budgets.warning(facts("ok", "none"), budget_config)
	not budgets.warning(facts("exhausted", "deny"), budget_config)
}

test_a_denial_names_team_use_and_limit if {
	budgets.denial(facts("exhausted", "deny")) == concat("", [
		"team ml has used 812 of 800 kgCO2e this month (102%); ",
		"budget exhausted: tier-3 workloads are refused until it resets",
	])
}
