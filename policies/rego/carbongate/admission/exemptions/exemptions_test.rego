package carbongate.admission.exemptions_test

import rego.v1

import data.carbongate.admission.exemptions

config := {"exempt_namespaces": ["kube-system", "kube-public"]}

facts(changes) := object.union(
	{
		"namespace": "ml-team", "own_namespace": "carbongate", "tier": "3", "mode": "enforce",
		"template_decision": null, "annotations": {}, "workload_class": "batch", "owner_kind": null,
		"services_may_shift": false,
	},
	changes,
)

test_an_ordinary_batch_workload_is_not_exempt if {
	not exemptions.exemption(facts({}), config)
}

test_system_namespaces_are_exempt if {
	exemptions.exemption(facts({"namespace": "kube-system"}), config) == {
		"reason": "exempt", "message": "namespace kube-system is exempt",
	}
}

test_carbongates_own_namespace_is_exempt if {
	exemptions.exemption(facts({"namespace": "carbongate"}), config).message == "namespace carbongate is carbongate's own"
}

test_a_pod_of_a_decided_job_is_not_decided_again if {
	exemptions.exemption(facts({"template_decision": "defer"}), config) == {
		"reason": "exempt", "message": "already decided by carbongate (defer)",
	}
}

test_an_object_already_carrying_a_decision_is_not_decided_again if {
	exempt := exemptions.exemption(facts({"annotations": {"carbongate.io/decision": "admit"}}), config)
	exempt.message == "already decided by carbongate (admit)"
}

test_empty_decision_values_do_not_count_as_decided if {
	not exemptions.exemption(facts({"template_decision": "", "annotations": {"carbongate.io/decision": ""}}), config)
}

test_tier_one_is_never_changed if {
	exemptions.exemption(facts({"tier": "1"}), config).reason == "tier-1"
}

test_enforcement_off_leaves_the_workload_alone if {
	exemptions.exemption(facts({"mode": "off"}), config).reason == "enforcement-off"
}

test_namespace_exemption_is_reported_before_tier_one if {
	exemptions.exemption(facts({"namespace": "kube-public", "tier": "1"}), config).reason == "exempt"
}

test_daemonset_pods_are_never_touched if {
	exemptions.exemption(facts({"workload_class": "untouched", "owner_kind": "DaemonSet"}), config) == {
		"reason": "untouched", "message": "pods of a DaemonSet are never touched",
	}
}

test_daemonset_pods_are_untouched_even_in_tier_1 if {
	exemptions.exemption(facts({"workload_class": "untouched", "owner_kind": "DaemonSet", "tier": "1"}), config).reason == "untouched"
}

test_services_are_exempt_unless_the_platform_lets_them_shift if {
	exemptions.exemption(facts({"workload_class": "service", "owner_kind": "ReplicaSet"}), config) == {
		"reason": "service", "message": "pods of a ReplicaSet are a service: never deferred",
	}
	not exemptions.exemption(facts({"workload_class": "service", "owner_kind": "ReplicaSet", "services_may_shift": true}), config)
}
