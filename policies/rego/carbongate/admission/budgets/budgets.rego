# METADATA
# title: Carbon budget reactions
# description: |
#   What a team's carbon budget does to its workloads. Governance publishes
#   each team's use in a period (data.carbongate.budgets, with the period's
#   bounds); a document applies only while input.now is inside its period, so
#   last month's "exhausted" never holds this month's work, whether governance
#   is a minute late at the turn or down for days. From "warn" on, every
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
#   Either applies only while now_ns is inside its period (see current).
entry(published, copied, team, now_ns) := published.teams[team] if {
	is_object(published.teams[team])
	current(published, now_ns)
} else := copied if {
	is_object(copied)
	copied.team == team
	current(copied, now_ns)
}

# METADATA
# description: The document a team's entry comes from (the published one, else the input copy), for its period.
origin(published, copied, team) := published if {
	is_object(published.teams[team])
} else := copied if {
	is_object(copied)
} else := {}

# METADATA
# description: |
#   Whether a budgets document (or the input's copy of an entry, which carries
#   the same period fields) is for the period now_ns is in:
#   by its period_start_ns and period_end_ns, else by a monthly period name
#   (YYYY-MM). A document that cannot be placed in time is not applied.
current(published, now_ns) if {
	[start_ns, end_ns] := bounds(published)
	start_ns <= now_ns
	now_ns < end_ns
}

bounds(published) := [published.period_start_ns, published.period_end_ns] if {
	is_number(published.period_start_ns)
	is_number(published.period_end_ns)
} else := [start_ns, time.add_date(start_ns, 0, 1, 0)] if {
	is_string(published.period)
	regex.match(`^[0-9]{4}-[0-9]{2}$`, published.period)
	start_ns := time.parse_rfc3339_ns(sprintf("%s-01T00:00:00Z", [published.period]))
}

# METADATA
# description: The published period's name (2026-11, 2026-W47), or "this period" when it has none.
period_name(published) := published.period if {
	is_string(published.period)
	published.period != ""
} else := "this period"

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
# description: "team ml has used 652 of 800 kgCO2e in 2026-11 (82%)".
usage(team, budget, period) := sprintf("team %s has used %s of %s kgCO2e in %s (%s)", [
	team,
	units.kilograms(object.get(budget, "used_g", 0)),
	units.kilograms(object.get(budget, "limit_g", 0)),
	period,
	units.percent(percent_or_zero(budget)),
])

percent_or_zero(budget) := value if {
	value := percent(budget)
} else := 0

# METADATA
# description: |
#   The warning (without prefix) for a team's budget; facts: team, budget,
#   state, reaction, tier, period. Undefined when there is nothing to say.
warning(facts, budget_config) := usage(facts.team, facts.budget, facts.period) if {
	facts.state == "warn"
} else := sprintf("%s; budget exhausted", [usage(facts.team, facts.budget, facts.period)]) if {
	facts.reaction == "warn"
} else := sprintf("%s; budget exhausted: tier-%s work waits for windows at or below %s gCO2/kWh", [
	usage(facts.team, facts.budget, facts.period),
	facts.tier,
	units.intensity(budget_config.cleanest_max_g_per_kwh),
]) if {
	facts.reaction == "cleanest-only"
}

# METADATA
# description: Why a workload is refused when its team's budget is exhausted and the config says deny.
denial(facts) := sprintf("%s; budget exhausted: tier-%s workloads are refused until it resets", [
	usage(facts.team, facts.budget, facts.period),
	facts.tier,
])
