# METADATA
# title: Carbon budget reactions
# description: |
#   What a team's monthly carbon budget does to its workloads. Governance
#   publishes each team's use (data.carbongate.budgets); from "warn" on, every
#   decided workload carries a warning naming the team, its use and its limit.
#   Once exhausted, the tiers listed in config budgets.exhausted_tiers either
#   run only in the cleanest windows ("cleanest-only": the earliest window at
#   or below cleanest_max_g_per_kwh, else the best before the deadline, never
#   a dirty now) or are refused ("deny").
package carbongate.admission.budgets

import rego.v1

import data.carbongate.lib.units

known_actions := {"cleanest-only", "deny"}

# METADATA
# description: |
#   The team's budget entry: the published document's, else the copy in the
#   input when it is for the same team; undefined when the team has none.
entry(published, copied, team) := published.teams[team] if {
	is_object(published.teams[team])
} else := copied if {
	is_object(copied)
	copied.team == team
}

# METADATA
# description: ok, warn or exhausted - the worse of the published state and the share used against warn_percent.
state(budget, budget_config) := "exhausted" if {
	exhausted(budget)
} else := "warn" if {
	object.get(budget, "state", "") == "warn"
} else := "warn" if {
	percent(budget) >= budget_config.warn_percent
} else := "ok"

exhausted(budget) if object.get(budget, "state", "") == "exhausted"

exhausted(budget) if percent(budget) >= 100

# METADATA
# description: The share of the limit used, in percent - as published, else computed.
percent(budget) := budget.percent if is_number(budget.percent)

else := (budget.used_g / budget.limit_g) * 100 if {
	is_number(budget.used_g)
	is_number(budget.limit_g)
	budget.limit_g > 0
}

# METADATA
# description: What the budget state means for a workload of this tier - none, warn, cleanest-only or deny.
reaction(budget_state, tier, budget_config) := action(budget_config) if {
	budget_state == "exhausted"
	tier in object.get(budget_config, "exhausted_tiers", [])
} else := "warn" if {
	budget_state in {"warn", "exhausted"}
} else := "none"

action(budget_config) := budget_config.exhausted_action if budget_config.exhausted_action in known_actions

else := "cleanest-only"

# METADATA
# description: "team ml has used 652 of 800 kgCO2e this month (82%)".
usage(team, budget) := sprintf("team %s has used %s of %s kgCO2e this month (%s)", [
	team,
	units.kilograms(object.get(budget, "used_g", 0)),
	units.kilograms(object.get(budget, "limit_g", 0)),
	units.percent(percent_or_zero(budget)),
])

percent_or_zero(budget) := value if {
	value := percent(budget)
} else := 0

# METADATA
# description: |
#   The warning (without prefix) for a team's budget; facts: team, budget,
#   state, reaction, tier. Undefined when there is nothing to say.
warning(facts, budget_config) := usage(facts.team, facts.budget) if {
	facts.state == "warn"
} else := sprintf("%s; budget exhausted", [usage(facts.team, facts.budget)]) if {
	facts.reaction == "warn"
} else := sprintf("%s; budget exhausted: tier-%s work waits for windows at or below %s gCO2/kWh", [
	usage(facts.team, facts.budget),
	facts.tier,
	units.intensity(budget_config.cleanest_max_g_per_kwh),
]) if {
	facts.reaction == "cleanest-only"
}

# METADATA
# description: Why a workload is refused when its team's budget is exhausted and the config says deny.
denial(facts) := sprintf("%s; budget exhausted: tier-%s workloads are refused until it resets", [
	usage(facts.team, facts.budget),
	facts.tier,
])
