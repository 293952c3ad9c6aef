# METADATA
# title: Exemptions
# description: |
#   Workloads carbongate never changes, in the order they are checked: system
#   namespaces and carbongate's own, DaemonSet (and mirror) pods, workloads
#   already decided (a Pod created from a Job carbongate decided on, or any
#   object already carrying carbongate.io/decision), tier 1 (production),
#   namespaces with enforcement off, and services (pods of a ReplicaSet or
#   StatefulSet) where the platform does not let services shift. Deciding a Job's pods a second time would gate them after
#   the Job was released, so "already decided" matters as much as the rest.
package carbongate.admission.exemptions

import rego.v1

decision_annotation := "carbongate.io/decision"

# METADATA
# description: |
#   {"reason", "message"} when the workload is exempt, undefined otherwise.
#   facts: namespace, own_namespace, tier, mode, template_decision, annotations,
#   workload_class (batch, service, untouched), owner_kind, services_may_shift.
exemption(facts, config) := {"reason": "exempt", "message": sprintf("namespace %s is exempt", [facts.namespace])} if {
	facts.namespace in config.exempt_namespaces
} else := {"reason": "exempt", "message": sprintf("namespace %s is carbongate's own", [facts.namespace])} if {
	facts.namespace == facts.own_namespace
} else := {"reason": "untouched", "message": sprintf("pods of a %s are never touched", [facts.owner_kind])} if {
	facts.workload_class == "untouched"
} else := {"reason": "exempt", "message": sprintf("already decided by carbongate (%s)", [earlier])} if {
	earlier := earlier_decision(facts)
} else := {"reason": "tier-1", "message": "tier 1 (production) is never changed"} if {
	facts.tier == "1"
} else := {"reason": "enforcement-off", "message": "enforcement is off in this namespace"} if {
	facts.mode == "off"
} else := {"reason": "service", "message": sprintf("pods of a %s are a service: never deferred", [facts.owner_kind])} if {
	facts.workload_class == "service"
	not facts.services_may_shift
}

# METADATA
# description: The decision a workload already carries, from its template's owner or itself.
earlier_decision(facts) := facts.template_decision if {
	is_string(facts.template_decision)
	facts.template_decision != ""
} else := value if {
	value := facts.annotations[decision_annotation]
	value != ""
}
