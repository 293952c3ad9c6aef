# METADATA
# title: Classification
# description: |
#   Which tier and team a workload belongs to. The workload's own label wins,
#   then its namespace's label, then the platform default. A tier value that is
#   not configured is skipped with a warning naming it, so a typo never changes
#   how a workload is treated silently: the warning says which tier was used.
package carbongate.admission.classify

import rego.v1

tier_label := "carbongate.io/tier"

team_label := "carbongate.io/team"

# METADATA
# description: The tier id ("1", "2", "3") for these labels under this config.
tier(labels, namespace_labels, config) := chosen.value if {
	chosen := first_known(labels, namespace_labels, config)
} else := config.default_tier

# METADATA
# description: Where the tier came from - "workload label", "namespace label" or "default".
tier_source(labels, namespace_labels, config) := chosen.source if {
	chosen := first_known(labels, namespace_labels, config)
} else := "default"

# METADATA
# description: One warning for each unknown tier value consulted before the tier that was used.
tier_warnings(labels, namespace_labels, config) := [sprintf(
	"tier %s on the %s is not a configured tier (%s); using tier %s",
	[json.marshal(o.value), o.source, concat(", ", sort(object.keys(config.tiers))), tier(labels, namespace_labels, config)],
) |
	consulted := offers(tier_label, labels, namespace_labels)
	some i, o in consulted
	i < first_known_index(consulted, config)
]

# METADATA
# description: The team charged for the workload, or null when neither it nor its namespace names one.
team(labels, namespace_labels) := named[0].value if {
	named := offers(team_label, labels, namespace_labels)
	count(named) > 0
} else := null

first_known(labels, namespace_labels, config) := consulted[first_known_index(consulted, config)] if {
	consulted := offers(tier_label, labels, namespace_labels)
}

# The position of the first configured tier value, or the length when there is none.
first_known_index(consulted, config) := min({i | some i, o in consulted; o.value in object.keys(config.tiers)}) if {
	some o in consulted
	o.value in object.keys(config.tiers)
} else := count(consulted)

offers(key, labels, namespace_labels) := [o |
	some o in [
		{"source": "workload label", "value": object.get(labels, key, "")},
		{"source": "namespace label", "value": object.get(namespace_labels, key, "")},
	]
	o.value != ""
]
