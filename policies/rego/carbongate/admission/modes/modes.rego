# METADATA
# title: Enforcement modes
# description: |
#   How far a namespace lets carbongate act: enforce (patch), warn (warnings
#   only), dryrun (decide and log), off (untouched). The namespace label sets
#   it. A namespace the platform has labelled (carbongate.io/tier or
#   carbongate.io/enforcement) without a mode takes config default_mode; a
#   namespace it has not labelled takes config unlabelled_mode (dryrun as
#   shipped), so installing carbongate changes nothing until the platform opts
#   namespaces in. An unknown value falls back to default_mode with a warning,
#   because guessing "off" or "enforce" from a typo would surprise someone.
package carbongate.admission.modes

import rego.v1

enforcement_label := "carbongate.io/enforcement"

tier_label := "carbongate.io/tier"

known := ["enforce", "warn", "dryrun", "off"]

# METADATA
# description: The enforcement mode for a namespace's labels under this config.
mode(namespace_labels, config) := value if {
	value := namespace_labels[enforcement_label]
	value in known
} else := config.default_mode if {
	opted_in(namespace_labels)
} else := object.get(config, "unlabelled_mode", "dryrun")

# METADATA
# description: Whether the platform has labelled the namespace for carbongate at all.
opted_in(namespace_labels) if namespace_labels[enforcement_label]

opted_in(namespace_labels) if namespace_labels[tier_label]

# METADATA
# description: A warning when the namespace names a mode that does not exist.
warnings(namespace_labels, config) := [sprintf(
	"enforcement %s on the namespace is not a mode (%s); using %s",
	[json.marshal(value), concat(", ", known), config.default_mode],
)] if {
	value := namespace_labels[enforcement_label]
	not value in known
} else := []
