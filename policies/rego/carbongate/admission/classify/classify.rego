# METADATA
# title: Classification and the platform's mandate
# description: |
#   Which tier and team a workload belongs to. The namespace's tier label is
#   the platform's decision (its mandate); without one, the platform default
#   applies. A workload's own tier label may choose another tier only where
#   the platform allows it: a tier listed in the namespace label
#   carbongate.io/allowed-tiers (a comma list) or in the config's
#   mandate.workload_may_choose. Otherwise the label is refused: the mandated
#   tier applies and a warning names the refused tier and why. A tier value
#   that is not configured is skipped with a warning naming it, so a typo
#   never changes how a workload is treated silently.
package carbongate.admission.classify

import rego.v1

tier_label := "carbongate.io/tier"

team_label := "carbongate.io/team"

allowed_tiers_label := "carbongate.io/allowed-tiers"

# METADATA
# description: The tier id ("1", "2", "3") for these labels under this config.
tier(labels, namespace_labels, config) := asked if {
	asked := chosen_by_workload(labels, namespace_labels, config)
} else := mandated(namespace_labels, config)

# METADATA
# description: Where the tier came from - "workload label", "namespace label" or "default".
tier_source(labels, namespace_labels, config) := "workload label" if {
	chosen_by_workload(labels, namespace_labels, config)
} else := "namespace label" if {
	known_tier(object.get(namespace_labels, tier_label, ""), config)
} else := "default"

# METADATA
# description: The platform's tier for a namespace - its known tier label, else the default.
mandated(namespace_labels, config) := value if {
	value := object.get(namespace_labels, tier_label, "")
	known_tier(value, config)
} else := config.default_tier

# METADATA
# description: The tiers a workload label may choose in a namespace (always including the mandated one).
allowed(namespace_labels, config) := ({mandated(namespace_labels, config)} | from_namespace) | from_config if {
	from_namespace := {trim_space(t) |
		some t in split(object.get(namespace_labels, allowed_tiers_label, ""), ",")
		trim_space(t) != ""
	}
	from_config := {t | some t in object.get(object.get(config, "mandate", {}), "workload_may_choose", [])}
}

# METADATA
# description: |
#   The configured tier a workload label asks for that the platform does not
#   allow in its namespace; undefined when there is none.
refused(labels, namespace_labels, config) := asked if {
	asked := object.get(labels, tier_label, "")
	known_tier(asked, config)
	not asked in allowed(namespace_labels, config)
}

chosen_by_workload(labels, namespace_labels, config) := asked if {
	asked := object.get(labels, tier_label, "")
	known_tier(asked, config)
	asked in allowed(namespace_labels, config)
}

known_tier(value, config) if {
	value != ""
	value in object.keys(config.tiers)
}

# METADATA
# description: Warnings for tier labels that were skipped (not configured) or refused (not allowed here).
tier_warnings(labels, namespace_labels, config) := array.concat(unknown_warnings(labels, namespace_labels, config), refusal_warnings(labels, namespace_labels, config))

unknown_warnings(labels, namespace_labels, config) := [sprintf(
	"tier %s on the %s is not a configured tier (%s); using tier %s",
	[json.marshal(o.value), o.source, concat(", ", sort(object.keys(config.tiers))), tier(labels, namespace_labels, config)],
) |
	some o in consulted(labels, namespace_labels, config)
	not known_tier(o.value, config)
]

# The labels the decision looked at: the workload's, then the namespace's unless the workload's was taken.
consulted(labels, namespace_labels, config) := [o |
	some o in [
		{"source": "workload label", "value": object.get(labels, tier_label, "")},
		{"source": "namespace label", "value": object.get(namespace_labels, tier_label, "")},
	]
	o.value != ""
	not skipped(o, labels, namespace_labels, config)
]

skipped(o, labels, namespace_labels, config) if {
	o.source == "namespace label"
	chosen_by_workload(labels, namespace_labels, config)
}

refusal_warnings(labels, namespace_labels, config) := [sprintf(
	"tier %s on the workload label is refused: the platform set tier %s for this namespace (%s allowed here); using tier %s",
	[refused_tier, mandated_tier, concat(", ", sort(allowed(namespace_labels, config))), mandated_tier],
)] if {
	refused_tier := refused(labels, namespace_labels, config)
	mandated_tier := mandated(namespace_labels, config)
} else := []

# METADATA
# description: The team charged for the workload, or null when neither it nor its namespace names one.
team(labels, namespace_labels) := labels[team_label] if {
	labels[team_label] != ""
} else := namespace_labels[team_label] if {
	namespace_labels[team_label] != ""
} else := null
