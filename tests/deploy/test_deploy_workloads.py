"""The Deployments are hardened, sized, probed and spread as a platform team expects."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import support, test_deploy_settings
from webhook import server

DEPLOYMENTS = ("carbongate-webhook", "carbongate-deferral", "carbongate-governance")
# The official static build by tag; prod adds the digest (what the kubelet pulls).
OPA_IMAGE = re.compile(r"^openpolicyagent/opa:1\.\d+\.\d+-static(@sha256:[0-9a-f]{64})?$")


@pytest.fixture(params=["dev", "prod"])
def overlay(request: pytest.FixtureRequest,
            rendered: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = rendered[request.param]
    return resources


def _effective(pod: dict[str, Any], container: dict[str, Any], key: str) -> Any:
    """A security setting as the kubelet applies it: the container's, else the pod's."""
    own = (container.get("securityContext") or {}).get(key)
    return own if own is not None else (pod.get("securityContext") or {}).get(key)


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_every_container_is_locked_down(overlay: list[dict[str, Any]], name: str) -> None:
    pod = support.pod_spec(support.one(overlay, "Deployment", name))
    for container in support.containers(support.one(overlay, "Deployment", name)):
        where = f"{name}/{container['name']}"
        assert _effective(pod, container, "runAsNonRoot") is True, where
        assert _effective(pod, container, "seccompProfile") == {"type": "RuntimeDefault"}, where
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, where
        assert context["allowPrivilegeEscalation"] is False, where
        assert context["capabilities"]["drop"] == ["ALL"], where
        assert not context["capabilities"].get("add"), where


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_every_container_has_requests_limits_and_probes(overlay: list[dict[str, Any]], name: str) -> None:
    for container in support.containers(support.one(overlay, "Deployment", name)):
        where = f"{name}/{container['name']}"
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) >= {"cpu", "memory"}, where
        assert container.get("readinessProbe") and container.get("livenessProbe"), where


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_images_are_pinned(overlay: list[dict[str, Any]], name: str) -> None:
    for container in support.containers(support.one(overlay, "Deployment", name)):
        image = container["image"]
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image


def test_prod_pins_opa_by_digest(prod: list[dict[str, Any]]) -> None:
    opa = support.container(support.one(prod, "Deployment", "carbongate-webhook"), "opa")
    assert re.fullmatch(r"openpolicyagent/opa:[\w.-]+@sha256:[0-9a-f]{64}", opa["image"]), opa["image"]


def test_governance_has_a_budget_that_never_blocks_a_drain_and_spreads(overlay: list[dict[str, Any]]) -> None:
    deployment = support.one(overlay, "Deployment", "carbongate-governance")
    budget = support.one(overlay, "PodDisruptionBudget", "carbongate-governance")
    # maxUnavailable, not minAvailable: one SQLite replica must still drain.
    assert budget["spec"] == {"maxUnavailable": 1, "selector": budget["spec"]["selector"]}
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (spread,) = support.pod_spec(deployment)["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"]["matchLabels"].items() <= labels.items()


def test_deferral_probes_ask_about_its_loops_not_metrics(overlay: list[dict[str, Any]]) -> None:
    controller = support.container(support.one(overlay, "Deployment", "carbongate-deferral"), "controller")
    assert controller["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert controller["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {p["name"] for p in controller["ports"]}
    assert {controller["livenessProbe"]["httpGet"]["port"], controller["readinessProbe"]["httpGet"]["port"]} <= ports


def test_only_the_api_server_and_prometheus_reach_the_webhook(overlay: list[dict[str, Any]]) -> None:
    deployment = support.one(overlay, "Deployment", "carbongate-webhook")
    policy = support.one(overlay, "NetworkPolicy", "carbongate-webhook")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    declared = {p["name"] for c in support.containers(deployment) for p in c.get("ports", [])}
    api_server, prometheus = policy["spec"]["ingress"]
    # The API server: the webhook port only, from address blocks (it is no pod).
    assert [p["port"] for p in api_server["ports"]] == ["https"]
    assert all(set(peer) == {"ipBlock"} for peer in api_server["from"])
    # Prometheus pods: the metrics ports, nothing else.
    assert {p["port"] for p in prometheus["ports"]} <= declared
    (peer,) = prometheus["from"]
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    # No rule opens a port the pod does not declare, and OPA's REST API (8181) stays closed.
    opened = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert opened <= declared and 8181 not in opened


def test_on_kind_pods_are_kept_off_the_webhook_port(dev: list[dict[str, Any]]) -> None:
    policy = support.one(dev, "NetworkPolicy", "carbongate-webhook")
    blocks = [peer["ipBlock"] for peer in policy["spec"]["ingress"][0]["from"]]
    assert {"cidr": "0.0.0.0/0", "except": ["10.244.0.0/16"]} in blocks


def test_webhook_has_two_replicas_or_more_a_budget_and_spreads_across_nodes(
    overlay: list[dict[str, Any]],
) -> None:
    deployment = support.one(overlay, "Deployment", "carbongate-webhook")
    replicas = deployment["spec"]["replicas"]
    assert replicas >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    budget = support.one(overlay, "PodDisruptionBudget", "carbongate-webhook")
    assert 1 <= budget["spec"]["minAvailable"] < replicas
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    spread = support.pod_spec(deployment)["topologySpreadConstraints"]
    by_node = [c for c in spread if c["topologyKey"] == "kubernetes.io/hostname"]
    assert by_node and by_node[0]["whenUnsatisfiable"] == "DoNotSchedule"
    assert by_node[0]["labelSelector"]["matchLabels"].items() <= labels.items()


def test_webhook_probes_hit_the_real_endpoints_over_https(overlay: list[dict[str, Any]]) -> None:
    webhook = support.container(support.one(overlay, "Deployment", "carbongate-webhook"), "webhook")
    ports = {p["name"]: p["containerPort"] for p in webhook["ports"]}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = webhook[probe]["httpGet"]
        assert (get["scheme"], get["path"], ports[get["port"]]) == ("HTTPS", path, 8443)
    assert webhook["command"] == ["carbongate", "serve"]


def test_opa_sidecar_is_the_pinned_official_image_on_localhost_with_authz(
    overlay: list[dict[str, Any]],
) -> None:
    deployment = support.one(overlay, "Deployment", "carbongate-webhook")
    opa = support.container(deployment, "opa")
    assert OPA_IMAGE.match(opa["image"]), opa["image"]
    args = opa["args"]
    assert args[:2] == ["run", "--server"]
    assert "--addr=127.0.0.1:8181" in args
    assert not [a for a in args if a.startswith("--addr=") and a != "--addr=127.0.0.1:8181"]
    assert {"--authentication=token", "--authorization=basic"} <= set(args)
    (policy_file,) = [a for a in args if a.endswith(".rego")]
    (mount,) = [m for m in opa["volumeMounts"] if policy_file.startswith(m["mountPath"] + "/")]
    volume = next(v for v in support.pod_spec(deployment)["volumes"] if v["name"] == mount["name"])
    authz = support.one(overlay, "ConfigMap", "carbongate-opa-authz")
    assert volume["configMap"]["name"] == authz["metadata"]["name"]
    assert policy_file.rsplit("/", 1)[1] in authz["data"]


def test_webhook_pod_runs_webhook_opa_and_feed(overlay: list[dict[str, Any]]) -> None:
    deployment = support.one(overlay, "Deployment", "carbongate-webhook")
    assert {c["name"] for c in support.containers(deployment)} == {"webhook", "opa", "carbon-feed"}
    assert support.container(deployment, "carbon-feed")["command"] == ["python", "-m", "carbon_feed"]
    # Patches may reorder containers (kustomize puts patched ones first): say which
    # one `kubectl logs` and `kubectl exec` mean.
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["kubectl.kubernetes.io/default-container"] == "webhook"


def test_every_referenced_config_map_and_secret_exists_or_is_documented(
    overlay: list[dict[str, Any]], tmp_path: Path,
) -> None:
    """Names a pod needs must be rendered, or be one the overlay says to create first."""
    names = {(r["kind"], r["metadata"]["name"]) for r in overlay}
    # cert-manager creates the Secret a Certificate names.
    names |= {("Secret", c["spec"]["secretName"]) for c in support.of_kind(overlay, "Certificate")}
    # Governance writes its budgets ConfigMap itself (test_deploy_settings checks that it
    # is the one the webhook mounts, and optionally).
    names.add(("ConfigMap", _published_budgets(overlay, tmp_path)))
    kustomization = (support.REPO / "deploy" / "overlays" / ("prod" if _is_prod(overlay) else "dev")
                     / "kustomization.yaml").read_text(encoding="utf-8")
    for name in DEPLOYMENTS:
        spec = support.pod_spec(support.one(overlay, "Deployment", name))
        for kind, ref in _references(spec):
            if (kind, ref) not in names:
                assert ref in kustomization, f"{name} needs {kind} {ref}, neither rendered nor documented"


def _published_budgets(overlay: list[dict[str, Any]], scratch: Path) -> str:
    """The ConfigMap governance publishes, read from its container's real settings."""
    deployment = support.one(overlay, "Deployment", "carbongate-governance")
    found = test_deploy_settings.box(overlay, deployment, support.container(deployment, "governance"),
                                     scratch)
    name = found.settings.governance.budgets_configmap
    assert name, "governance publishes no budgets ConfigMap: the webhook pods would get no budgets"
    return name


def _is_prod(overlay: list[dict[str, Any]]) -> bool:
    return any(r["kind"] == "Certificate" for r in overlay)


def _references(spec: dict[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for volume in spec.get("volumes") or []:
        if "configMap" in volume:
            found.append(("ConfigMap", volume["configMap"]["name"]))
        if "secret" in volume:
            found.append(("Secret", volume["secret"]["secretName"]))
        if "persistentVolumeClaim" in volume:
            found.append(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]))
    for container in spec["containers"]:
        for env in container.get("env") or []:
            source = env.get("valueFrom") or {}
            if "secretKeyRef" in source:
                found.append(("Secret", source["secretKeyRef"]["name"]))
            if "configMapKeyRef" in source:
                found.append(("ConfigMap", source["configMapKeyRef"]["name"]))
    return found


def test_every_volume_mount_names_a_volume_of_its_pod(overlay: list[dict[str, Any]]) -> None:
    for name in DEPLOYMENTS:
        deployment = support.one(overlay, "Deployment", name)
        volumes = {v["name"] for v in support.pod_spec(deployment)["volumes"]}
        for container in support.containers(deployment):
            assert {m["name"] for m in container.get("volumeMounts") or []} <= volumes, name


def test_prod_keeps_the_ledger_in_postgresql_and_drops_the_sqlite_claim(
    prod: list[dict[str, Any]],
) -> None:
    assert not support.of_kind(prod, "PersistentVolumeClaim")
    governance = support.one(prod, "Deployment", "carbongate-governance")
    env = {e["name"]: e for e in support.container(governance, "governance")["env"]}
    assert env["CARBONGATE_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "carbongate-governance-database", "key": "url"}
    ledger = next(v for v in support.pod_spec(governance)["volumes"] if v["name"] == "ledger")
    assert "persistentVolumeClaim" not in ledger


def test_dev_keeps_the_ledger_on_a_claim_with_a_single_writer(dev: list[dict[str, Any]]) -> None:
    governance = support.one(dev, "Deployment", "carbongate-governance")
    claim = support.one(dev, "PersistentVolumeClaim", "carbongate-governance-ledger")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert governance["spec"]["replicas"] == 1
    assert governance["spec"]["strategy"]["type"] == "Recreate"


def test_every_command_starts_code_that_exists(dev: list[dict[str, Any]]) -> None:
    """`python -m X` needs X/__main__.py; `carbongate SUB` needs a registered subcommand."""
    for name in DEPLOYMENTS:
        for container in support.containers(support.one(dev, "Deployment", name)):
            command = container.get("command") or []
            if command[:2] == ["python", "-m"]:
                assert (support.REPO / command[2].replace(".", "/") / "__main__.py").is_file(), command
            elif command[:1] == ["carbongate"]:
                assert support.entry_packages({"spec": {"template": {"spec": {
                    "containers": [container]}}}}), command
            else:
                assert container["image"].startswith("openpolicyagent/"), command


def test_the_webhook_pauses_before_sigterm_and_drains_within_the_grace_period(
        overlay: list[dict[str, Any]]) -> None:
    """A preStop pause lets the endpoint removal land before gunicorn drains; both fit the grace period."""
    deployment = support.one(overlay, "Deployment", "carbongate-webhook")
    webhook = next(c for c in support.containers(deployment) if c["name"] == "webhook")
    command = webhook["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pause_s = float(command[1])
    graceful_s = server.GRACEFUL_TIMEOUT_S
    assert 0 < pause_s and pause_s + graceful_s < support.pod_spec(deployment)["terminationGracePeriodSeconds"]
