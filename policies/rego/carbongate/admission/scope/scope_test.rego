package carbongate.admission.scope_test

import rego.v1

import data.carbongate.admission.scope

config := {"scope": {
	"service_owner_kinds": ["ReplicaSet", "StatefulSet", "ReplicationController"],
	"untouched_owner_kinds": ["DaemonSet", "Node"],
	"services_may_shift": false,
}}

test_jobs_and_bare_pods_are_batch if {
	scope.class("Job", null, config) == "batch"
	scope.class("Job", "CronJob", config) == "batch"
	scope.class("Pod", null, config) == "batch"
	scope.class("Pod", "Job", config) == "batch"
}

test_pods_of_replicasets_and_statefulsets_are_services if {
	every owner in ["ReplicaSet", "StatefulSet", "ReplicationController"] {
		scope.class("Pod", owner, config) == "service"
	}
}

test_daemonset_and_mirror_pods_are_untouched if {
	scope.class("Pod", "DaemonSet", config) == "untouched"
	scope.class("Pod", "Node", config) == "untouched"
}

test_a_platform_can_name_its_own_service_controllers if {
	own := {"scope": {"service_owner_kinds": ["Rollout"], "untouched_owner_kinds": []}}
	scope.class("Pod", "Rollout", own) == "service"
	scope.class("Pod", "DaemonSet", own) == "batch"
}

test_without_a_scope_config_the_safe_defaults_apply if {
	scope.class("Pod", "ReplicaSet", {}) == "service"
	scope.class("Pod", "DaemonSet", {}) == "untouched"
	scope.services_may_shift({}) == false
}

test_services_shift_only_when_the_platform_says_so if {
	scope.services_may_shift(config) == false
	scope.services_may_shift({"scope": {"services_may_shift": true}}) == true
}
