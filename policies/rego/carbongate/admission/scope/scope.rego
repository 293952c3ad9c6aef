# METADATA
# title: Scope
# description: |
#   What carbongate may do to a workload depends on what it is. Jobs (those a
#   CronJob creates included) and bare Pods are batch work: deferrable. Pods
#   of a ReplicaSet, StatefulSet or ReplicationController are services: never
#   deferred (a gate would hold a rollout for hours); where the platform
#   config allows it (scope.services_may_shift) they may receive a preferred
#   node affinity towards a greener region within the tier's latency budget.
#   Pods of a DaemonSet (and mirror pods, owned by a Node) are never touched.
#   The owner kinds are config, so a platform can add its own controllers.
package carbongate.admission.scope

import rego.v1

default_service_owner_kinds := ["ReplicaSet", "StatefulSet", "ReplicationController"]

default_untouched_owner_kinds := ["DaemonSet", "Node"]

# METADATA
# description: batch, service or untouched, for a workload of kind with this controller owner kind.
class(kind, owner_kind, config) := "untouched" if {
	kind == "Pod"
	owner_kind in object.get(scope_config(config), "untouched_owner_kinds", default_untouched_owner_kinds)
} else := "service" if {
	kind == "Pod"
	owner_kind in object.get(scope_config(config), "service_owner_kinds", default_service_owner_kinds)
} else := "batch"

# METADATA
# description: Whether services may be steered (preferred affinity only) towards a greener region.
services_may_shift(config) := true if {
	object.get(scope_config(config), "services_may_shift", false) == true
} else := false

scope_config(config) := value if {
	value := config.scope
	is_object(value)
} else := {}
