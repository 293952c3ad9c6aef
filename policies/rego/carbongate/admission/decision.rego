# METADATA
# title: Admission decision
# description: |
#   The one entry point of the webhook: data.carbongate.admission.decision, in
#   the shape of "Decision" in docs/architecture.md, from the input described
#   under "OPA input" there. Only this package reads input and data; the
#   packages it imports are functions of the facts it hands them.
#
#   Order of questions: is this a Pod or Job CREATE; is it exempt (system
#   namespaces, DaemonSet pods, already decided, tier 1, enforcement off,
#   services where they may not shift); does the team's exhausted budget
#   refuse it; can the home region's grid data be trusted; does the budget
#   hold it to the cleanest windows; is now already clean; is any allowed
#   window enough cleaner than running now; then run now elsewhere (shift) or
#   later (defer, perhaps elsewhere). Services (pods of a ReplicaSet or
#   StatefulSet) only ever run now: at most shifted by a preferred affinity.
package carbongate.admission

import rego.v1

import data.carbongate.admission.budgets
import data.carbongate.admission.classify
import data.carbongate.admission.delays
import data.carbongate.admission.exemptions
import data.carbongate.admission.freshness
import data.carbongate.admission.modes
import data.carbongate.admission.scope
import data.carbongate.admission.windows
import data.carbongate.lib.durations
import data.carbongate.lib.units

config := data.carbongate.config

decided_kinds := {"Pod", "Job"}

# METADATA
# title: decision
# description: What to do with the workload in input; always defined for a well-formed input.
# entrypoint: true
decision := passive("not-applicable", sprintf("carbongate decides only Pod and Job CREATE, not %v %v", [
	object.get(input, "kind", null),
	object.get(input, "operation", null),
])) if {
	not applicable
}

decision := passive(exemption.reason, exemption.message) if {
	applicable
	exemption
}

decision := decided if {
	applicable
	not exemption
}

# METADATA
# title: info
# description: |
#   The classification behind the decision (tier, team, mode, exemption,
#   delays, regions, budget state) for the deferral controller and
#   `carbongate review`; the webhook acts on decision alone.
# entrypoint: true
info := {
	"applicable": applicable,
	"tier": tier,
	"tier_source": classify.tier_source(labels, namespace_labels, config),
	"team": team,
	"mode": mode,
	"exemption": exemption_or_null,
	"home_region": home,
	"max_delay_s": max_delay_s,
	"duration_s": duration_s,
	"regions": sort(allowed_regions),
	"usable_regions": sort(usable_regions),
	"budget_state": budget_state,
	"workload_class": workload_class,
	"tier_refused": tier_refused,
	"budget_period": budget_period,
}

# ---------------------------------------------------------------- facts from input

default applicable := false

applicable if {
	input.operation == "CREATE"
	input.kind in decided_kinds
}

workload := object_or_empty(object.get(input, "workload", {}))

labels := object_or_empty(object.get(workload, "labels", {}))

namespace_labels := object_or_empty(object.get(input, "namespace_labels", {}))

requested_regions := list_or_empty(object.get(workload, "regions", []))

plan_regions := object_or_empty(object.get(object_or_empty(object.get(input, "plan", {})), "regions", {}))

home := input.plan.home_region if {
	is_string(input.plan.home_region)
	input.plan.home_region != ""
} else := config.home_region

now_ns := input.now_ns if is_number(input.now_ns)

tier := classify.tier(labels, namespace_labels, config)

# The tier the workload's own label asked for and the platform refused, else null.
tier_refused := refused if {
	refused := classify.refused(labels, namespace_labels, config)
} else := null

workload_class := scope.class(input.kind, object.get(workload, "owner_kind", null), config)

tier_config := config.tiers[tier]

team := classify.team(labels, namespace_labels)

mode := modes.mode(namespace_labels, config)

exemption := exemptions.exemption(
	{
		"namespace": object.get(input, "namespace", ""),
		"own_namespace": object.get(input, "own_namespace", ""),
		"tier": tier,
		"mode": mode,
		"template_decision": object.get(workload, "template_decision", null),
		"annotations": object_or_empty(object.get(workload, "annotations", {})),
		"workload_class": workload_class,
		"owner_kind": object.get(workload, "owner_kind", null),
		"services_may_shift": scope.services_may_shift(config),
	},
	config,
)

exemption_or_null := exemption if {
	exemption
} else := null

object_or_empty(value) := value if is_object(value)

else := {}

list_or_empty(value) := value if is_array(value)

else := []

# ---------------------------------------------------------------- time and place

max_delay_s := delays.max_delay_s(object.get(workload, "max_delay_s", null), tier_config)

duration_s := delays.duration_s(object.get(workload, "expected_duration_s", null), config)

# A service runs now or not at all: it may only be steered, never held.
latest_start_ns := now_ns if {
	workload_class == "service"
} else := now_ns + durations.ns(max_delay_s)

deadline_ns := latest_start_ns + durations.ns(duration_s)

allowed_regions := windows.allowed(requested_regions, home, tier_config, config)

usable_regions := {r |
	some r in allowed_regions
	freshness.usable(plan_regions[r], now_ns)
}

region_bests := windows.region_bests(plan_regions, usable_regions, latest_start_ns)

now_g_per_kwh := plan_regions[home].now_g_per_kwh

run_now_g_per_kwh := windows.run_now(plan_regions, home, now_ns)

# What running at home would emit per kWh: its best window, else running now.
home_g_per_kwh := home_best.mean_g_per_kwh if {
	home_best := region_bests[home]
} else := run_now_g_per_kwh

# Regions worth choosing: home, and others past the carbon breakeven.
counted_regions := windows.counted(
	region_bests,
	home,
	home_g_per_kwh,
	object.get(workload, "energy_kwh", null),
)

best := windows.best(windows.only(region_bests, counted_regions), home)

# Why the home region's data cannot be used, if it cannot.
home_problem := {"reason": "no-data", "text": "the input has no now_ns"} if {
	not now_ns
} else := freshness.problem(home, object.get(plan_regions, home, null), now_ns)

# ---------------------------------------------------------------- budget

default published_budgets := {}

published_budgets := data.carbongate.budgets if is_object(data.carbongate.budgets)

# A budget document applies only within its own period: an October "exhausted"
# must not hold November's work, whether governance is late or down.
budget := budgets.entry(published_budgets, object.get(input, "budget", null), team, now_ns)

budget_period := budgets.period_name(budgets.origin(published_budgets, object.get(input, "budget", null), team))

budget_state := budgets.state(budget, config.budgets) if budget

else := "ok"

# A service is never refused or held for its team's budget: that would stop a rollout.
budget_reaction := "warn" if {
	workload_class == "service"
	budgets.reaction(budget_state, tier, config.budgets) != "none"
} else := budgets.reaction(budget_state, tier, config.budgets)

budget_facts := {
	"team": team, "budget": budget, "state": budget_state, "reaction": budget_reaction, "tier": tier,
	"period": budget_period,
}

# The earliest clean-enough window for an exhausted budget, else the best one.
cleanest := clean if {
	firsts := windows.region_firsts(plan_regions, counted_regions, latest_start_ns, config.budgets.cleanest_max_g_per_kwh)
	clean := windows.first(windows.only(firsts, counted_regions), home)
} else := best

# ---------------------------------------------------------------- outcome

# {action, reason, region, window, text, message}: text is the warning
# sentence of an action (null when there is nothing to say).
outcome := denied if {
	# Refusing needs no grid data, so it comes before the data check.
	budget_reaction == "deny"
} else := admitted(home_problem.reason, sprintf("%s; admitted unchanged", [home_problem.text])) if {
	home_problem
} else := placed(cleanest, "budget-exhausted") if {
	budget_reaction == "cleanest-only"
	cleanest
} else := admitted("clean-now", clean_now_message) if {
	now_g_per_kwh <= tier_config.threshold_g_per_kwh
} else := admitted("no-better-window", "no forecast window covers the expected duration") if {
	not best
} else := admitted("no-better-window", no_saving_message) if {
	units.saving_pct(run_now_g_per_kwh, best.mean_g_per_kwh) < tier_config.min_saving_pct
} else := placed(best, "")

clean_now_message := sprintf("%s %s gCO2/kWh now is at or below the tier-%s threshold %s", [
	home,
	units.intensity(now_g_per_kwh),
	tier,
	units.intensity(tier_config.threshold_g_per_kwh),
])

no_saving_message := sprintf("the best window (%s %s gCO2/kWh) is not %v%% cleaner than now (%s)", [
	best.region,
	units.intensity(best.mean_g_per_kwh),
	tier_config.min_saving_pct,
	units.intensity(run_now_g_per_kwh),
])

admitted(reason, message) := {
	"action": "admit", "reason": reason, "region": home, "window": null,
	"text": null, "message": message,
}

denied := {
	"action": "deny", "reason": "budget-exhausted", "region": null, "window": null,
	"text": sprintf("denied: %s", [budgets.denial(budget_facts)]),
	"message": budgets.denial(budget_facts),
}

# A chosen window becomes admit (home, now), shift (elsewhere, now) or defer (later).
placed(window, reason) := admitted(reason_or(reason, "no-better-window"), "running now is the best choice") if {
	window.start_ns <= now_ns
	window.region == home
} else := {
	"action": "shift", "reason": reason_or(reason, "cleaner-region"), "region": window.region, "window": window,
	"text": sprintf("shifted to %s (%s gCO2/kWh vs %s %s now)", [
		window.region, units.intensity(window.mean_g_per_kwh), home, units.intensity(now_g_per_kwh),
	]),
	"message": sprintf("shifted to %s", [window.region]),
} if {
	window.start_ns <= now_ns
} else := {
	"action": "defer", "reason": reason_or(reason, "cleaner-window"), "region": window.region, "window": window,
	"text": deferral_text(window),
	"message": sprintf("deferred until %s%s", [durations.minute(window.start_ns), elsewhere(window.region)]),
}

deferral_text(window) := sprintf("deferred until %s%s (%s %s gCO2/kWh now, %s%s forecast); deadline %s", [
	durations.minute(window.start_ns),
	elsewhere(window.region),
	home,
	units.intensity(now_g_per_kwh),
	region_prefix(window.region),
	units.intensity(window.mean_g_per_kwh),
	durations.minute(deadline_ns),
])

elsewhere(region) := "" if region == home

else := sprintf(" in %s", [region])

region_prefix(region) := "" if region == home

else := sprintf("%s ", [region])

reason_or(reason, fallback) := reason if reason != ""

else := fallback

# ---------------------------------------------------------------- the decision document

decided := {
	"action": outcome.action,
	"mode": mode,
	"tier": tier,
	"team": team,
	"reason": outcome.reason,
	"message": outcome.message,
	"warnings": shown_warnings,
	"region": outcome.region,
	"node_affinity": node_affinity(outcome.region),
	"not_before": not_before(outcome),
	"deadline": deadline(outcome),
	"annotations": annotations(outcome),
	"tier_refused": tier_refused,
}

passive(reason, message) := {
	"action": "admit", "mode": mode, "tier": tier, "team": team,
	"reason": reason, "message": message, "warnings": [],
	"region": null, "node_affinity": null, "not_before": null, "deadline": null,
	"annotations": {}, "tier_refused": null,
}

not_before(result) := durations.rfc3339(result.window.start_ns) if result.action == "defer"

else := null

deadline(result) := durations.rfc3339(deadline_ns) if result.action == "defer"

else := null

# METADATA
# description: The node selector term steering a workload to a region other than home, else null.
#   required is false for a service: a preferred term only, never narrowing what it requires.
node_affinity(region) := {"key": key, "values": [node_labels[key]], "required": workload_class != "service"} if {
	region != home
	node_labels := config.regions[region].node_labels
	key := sort(object.keys(node_labels))[0]
} else := null

# Annotations carbongate writes (values are strings). A refusal and an
# admission on untrusted data write none: nothing was decided about the object.
annotations(result) := {} if {
	result.action == "deny"
} else := {} if {
	result.reason in {"stale-data", "no-data"}
} else := object.union(
	{
		"carbongate.io/decision": result.action,
		"carbongate.io/reason": result.reason,
		"carbongate.io/region": result.region,
		"carbongate.io/intensity": units.intensity(now_g_per_kwh),
	},
	object.union(deferral_annotations(result), refusal_annotations),
)

refusal_annotations := {"carbongate.io/tier-refused": tier_refused} if is_string(tier_refused)

else := {}

deferral_annotations(result) := {
	"carbongate.io/not-before": durations.rfc3339(result.window.start_ns),
	"carbongate.io/deadline": durations.rfc3339(deadline_ns),
} if {
	result.action == "defer"
} else := {"carbongate.io/deadline": durations.rfc3339(deadline_ns)} if {
	# An interruptible Job that runs at once still has a deadline: the controller may pause
	# it while the grid is dirty and must finish it by then (data.carbongate.interrupt).
	interruptible
} else := {}

default interruptible := false

interruptible if {
	input.kind == "Job"
	object_or_empty(object.get(workload, "annotations", {}))["carbongate.io/interruptible"] == "true"
	is_object(object.get(tier_config, "interruptible", null))
}

# ---------------------------------------------------------------- warnings

# Every sentence worth telling the person who applied the workload, in a fixed
# order, without prefix; the action's own sentence last. One comprehension over
# the lists rather than nested array.concat: each concat copied its arrays.
notes := [note |
	some notes_of_one_kind in [
		modes.warnings(namespace_labels, config),
		classify.tier_warnings(labels, namespace_labels, config),
		parse_errors,
		windows.unknown_region_warnings(requested_regions, config),
		delays.warnings(object.get(workload, "max_delay_s", null), tier, tier_config),
		data_notes,
		budget_notes,
		action_notes,
	]
	some note in notes_of_one_kind
]

parse_errors := [sprintf("%v", [e]) | some e in list_or_empty(object.get(workload, "parse_errors", []))]

data_notes := [outcome.message] if outcome.reason in {"stale-data", "no-data"}

else := []

budget_notes := [budgets.warning(budget_facts, config.budgets)] if budget_reaction != "deny"

else := []

action_notes := [outcome.text] if {
	is_string(outcome.text)
	mode == "warn"
} else := [outcome.text] if {
	is_string(outcome.text)
	outcome.action != "deny"
} else := []

# enforce: "carbongate: ..."; warn: "carbongate (warn mode): would have ..."; dryrun: none.
shown_warnings := [] if mode == "dryrun"

else := [concat("", ["carbongate (warn mode): ", would_have(n)]) | some n in notes] if mode == "warn"

else := [concat("", ["carbongate: ", n]) | some n in notes]

would_have(note) := sprintf("would have %s", [note]) if note in action_notes

else := note
