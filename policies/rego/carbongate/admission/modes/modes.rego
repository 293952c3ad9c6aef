# METADATA
# title: Enforcement modes
# description: |
#   How far a namespace lets carbongate act: enforce (patch), warn (warnings
#   only), dryrun (decide and log), off (untouched). The namespace label sets
#   it; an unknown value falls back to the platform default with a warning,
#   because guessing "off" or "enforce" from a typo would surprise someone.
package carbongate.admission.modes

import rego.v1

enforcement_label := "carbongate.io/enforcement"

known := ["enforce", "warn", "dryrun", "off"]

# METADATA
# description: The enforcement mode for a namespace's labels under this config.
mode(namespace_labels, config) := value if {
	value := namespace_labels[enforcement_label]
	value in known
} else := config.default_mode

# METADATA
# description: A warning when the namespace names a mode that does not exist.
warnings(namespace_labels, config) := [sprintf(
	"enforcement %s on the namespace is not a mode (%s); using %s",
	[json.marshal(value), concat(", ", known), config.default_mode],
)] if {
	value := namespace_labels[enforcement_label]
	not value in known
} else := []
