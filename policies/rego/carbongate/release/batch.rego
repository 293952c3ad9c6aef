# METADATA
# title: Release decisions of many workloads in one evaluation
# description: |
#   The controller's work comes in bursts: every waiting workload is re-planned
#   when a new grid snapshot arrives. Each engine call has a fixed cost besides
#   the decision (taking the input in, handing the result out), so the burst is
#   asked in one call. Nothing is decided here: each item is exactly
#   data.carbongate.release.decision with that item as its input.
package carbongate.release.batch

import rego.v1

# METADATA
# description: |
#   input: {"items": [release input, ...]}. Result: {"<index>": decision} for
#   every item whose decision is defined; an undefined decision is left out,
#   as a single evaluation would answer nothing.
decisions := {i: d |
	some i, item in input.items
	d := data.carbongate.release.decision with input as item
}
