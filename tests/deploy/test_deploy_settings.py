"""The settings each container gets build a valid ``Settings`` that fits its pod.

For every carbongate container of every overlay, the environment and the
mounted TOML file are fed to the real :func:`carbongate.settings.load`, and
the result is checked against the pod around it: every file the process
writes lies on a writable volume (the root filesystem is read-only), every
file it reads on a mounted one, each bind address matches a declared port,
and the OPA addresses and tokens line up with the sidecar.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from opa_bindings import OpaEngine

from carbongate import settings as settings_mod
from governance import budgets
from tests.deploy import support

DEPLOYMENTS = ("carbongate-webhook", "carbongate-deferral", "carbongate-governance")
# A stand-in for a Secret's value: settings only name the variable that holds it.
SECRET_VALUE = "s" * 40


@dataclasses.dataclass(frozen=True)
class Mount:
    path: PurePosixPath
    volume: dict[str, Any]
    read_only: bool

    @property
    def writable(self) -> bool:
        return not self.read_only and ("emptyDir" in self.volume or "persistentVolumeClaim" in self.volume)


@dataclasses.dataclass(frozen=True)
class Box:
    """One container as it runs: its settings, mounts and declared ports."""

    deployment: dict[str, Any]
    container: dict[str, Any]
    settings: settings_mod.Settings
    environ: dict[str, str]

    @property
    def mounts(self) -> list[Mount]:
        volumes = {v["name"]: v for v in support.pod_spec(self.deployment)["volumes"]}
        return [Mount(PurePosixPath(m["mountPath"]), volumes[m["name"]], bool(m.get("readOnly")))
                for m in self.container.get("volumeMounts") or []]

    def mount_of(self, path: Path) -> Mount:
        target = PurePosixPath(path)
        found = [m for m in self.mounts if target == m.path or m.path in target.parents]
        assert found, f"{self.container['name']}: {path} is on no mounted volume"
        return max(found, key=lambda m: len(m.path.parts))

    def port(self, name: str) -> int:
        ports = {p["name"]: p["containerPort"] for p in self.container["ports"]}
        return int(ports[name])


def _carbongate_containers(resources: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    found = []
    for name in DEPLOYMENTS:
        deployment = support.one(resources, "Deployment", name)
        found += [(deployment, c) for c in support.containers(deployment)
                  if not c["image"].startswith("openpolicyagent/")]
    return found


def box(resources: list[dict[str, Any]], deployment: dict[str, Any], container: dict[str, Any],
        scratch: Path) -> Box:
    environ: dict[str, str] = {}
    for env in container.get("env") or []:
        environ[env["name"]] = env.get("value", SECRET_VALUE)
    partial = Box(deployment, container, settings_mod.Settings(), environ)
    config = Path(environ["CARBONGATE_CONFIG"])
    mount = partial.mount_of(config)
    config_map = support.one(resources, "ConfigMap", mount.volume["configMap"]["name"])
    local = scratch / f"{deployment['metadata']['name']}-{container['name']}.toml"
    local.write_text(config_map["data"][config.name], encoding="utf-8")
    loaded = settings_mod.load(environ={**environ, "CARBONGATE_CONFIG": str(local)})
    return Box(deployment, container, loaded, environ)


@pytest.fixture(params=["dev", "prod"])
def boxes(request: pytest.FixtureRequest, rendered: Mapping[str, list[dict[str, Any]]],
          tmp_path: Path) -> dict[tuple[str, str], Box]:
    resources = rendered[request.param]
    return {(d["metadata"]["name"], c["name"]): box(resources, d, c, tmp_path)
            for d, c in _carbongate_containers(resources)}


def _package(found: Box) -> str:
    (package,) = support.entry_packages({"spec": {"template": {"spec": {"containers": [found.container]}}}})
    return package


def test_every_carbongate_variable_names_a_real_setting(boxes: dict[tuple[str, str], Box]) -> None:
    """settings.load ignores unknown variables, so a misspelt one would do nothing silently."""
    fields = {f"CARBONGATE_{section.name}_{item.name}".upper()
              for section in dataclasses.fields(settings_mod.Settings)
              for item in dataclasses.fields(typing.get_type_hints(settings_mod.Settings)[section.name])}
    for found in boxes.values():
        named_by_settings = {found.settings.engine.opa_token_env,
                             found.settings.governance.database_url_env}
        for variable in found.environ:
            if variable.startswith("CARBONGATE_"):
                assert variable in fields | named_by_settings | {"CARBONGATE_CONFIG"}, variable


def test_what_each_process_writes_is_on_a_writable_volume(boxes: dict[tuple[str, str], Box]) -> None:
    for (deployment, container), found in boxes.items():
        settings = found.settings
        writes: list[Path] = [Path(found.environ["TMPDIR"])]
        package = _package(found)
        if package == "webhook":
            writes.append(settings.webhook.metrics_dir)
        if package == "carbon_feed":
            writes += [settings.grid.snapshot_path.parent, settings.feed.state_dir]
        if package == "governance":
            writes.append(settings.governance.budgets_snapshot_path.parent)
            if settings.governance.database_url.startswith("sqlite:///") and \
                    settings.governance.database_url_env not in found.environ:
                writes.append(Path(settings.governance.database_url.removeprefix("sqlite:///")).parent)
        for path in writes:
            assert found.mount_of(path).writable, f"{deployment}/{container} writes {path}"


def test_what_each_process_reads_is_mounted(boxes: dict[tuple[str, str], Box]) -> None:
    for found in boxes.values():
        settings = found.settings
        package = _package(found)
        reads: list[Path] = []
        if package == "webhook":
            reads += [settings.webhook.certfile, settings.webhook.keyfile]
        if package in ("webhook", "deferral", "governance"):
            reads.append(settings.engine.policy_dir / "carbongate" / "config" / "data.json")
        if package == "governance" and settings.governance.budgets_file is not None:
            reads.append(settings.governance.budgets_file)
        if package == "carbon_feed" and settings.feed.providers_file is not None:
            reads.append(settings.feed.providers_file)
        for path in reads:
            found.mount_of(path)


def test_the_tls_files_come_from_the_serving_certificate_secret(
    boxes: dict[tuple[str, str], Box],
) -> None:
    found = boxes[("carbongate-webhook", "webhook")]
    for path in (found.settings.webhook.certfile, found.settings.webhook.keyfile):
        mount = found.mount_of(path)
        assert mount.volume["secret"]["secretName"] == "carbongate-webhook-tls"
        assert path.name in {item["path"] for item in mount.volume["secret"]["items"]}


def test_the_grid_snapshot_is_shared_between_feed_and_its_readers(
    boxes: dict[tuple[str, str], Box],
) -> None:
    for deployment, reader in (("carbongate-webhook", "webhook"), ("carbongate-deferral", "controller"),
                               ("carbongate-governance", "governance")):
        feed, consumer = boxes[(deployment, "carbon-feed")], boxes[(deployment, reader)]
        assert feed.settings.grid.snapshot_path == consumer.settings.grid.snapshot_path
        assert (feed.mount_of(feed.settings.grid.snapshot_path).volume["name"]
                == consumer.mount_of(consumer.settings.grid.snapshot_path).volume["name"])


def test_every_webhook_pod_reads_the_budgets_config_map_governance_publishes(
    boxes: dict[tuple[str, str], Box],
) -> None:
    """Each pod has its own OPA: the budgets reach them all through one mounted ConfigMap."""
    governance = boxes[("carbongate-governance", "governance")].settings.governance
    webhook = boxes[("carbongate-webhook", "webhook")]
    path = webhook.settings.governance.budgets_snapshot_path
    assert governance.budgets_configmap and path.name == budgets.CONFIGMAP_KEY
    mount = webhook.mount_of(path)
    # Optional: governance creates it at run time, after the first webhook pods start.
    assert mount.volume["configMap"] == {"name": governance.budgets_configmap, "optional": True}
    assert mount.read_only and mount.path == PurePosixPath(path).parent
    # A subPath mount would never see the kubelet's updates of the ConfigMap.
    assert not [m for m in webhook.container["volumeMounts"] if m.get("subPath")]
    assert governance.namespace == webhook.deployment["metadata"]["namespace"]


def test_governance_elects_a_leader_on_its_own_lease(boxes: dict[tuple[str, str], Box]) -> None:
    governance = boxes[("carbongate-governance", "governance")].settings.governance
    deferral = boxes[("carbongate-deferral", "controller")].settings.deferral
    assert governance.lease_name and governance.lease_name != deferral.lease_name
    assert governance.namespace == deferral.namespace


def test_bind_addresses_match_the_declared_ports(boxes: dict[tuple[str, str], Box]) -> None:
    expected = {"webhook": ("webhook", "https"), "carbon_feed": ("feed", "feed-http"),
                "deferral": ("deferral", "metrics"), "governance": ("governance", "http")}
    for found in boxes.values():
        section, port_name = expected[_package(found)]
        host, _, port = getattr(found.settings, section).bind.rpartition(":")
        assert host == "0.0.0.0", f"{section}.bind must listen beyond localhost for probes"
        assert int(port) == found.port(port_name)


def test_webhook_and_feed_reach_the_opa_sidecar_with_their_own_tokens(
    boxes: dict[tuple[str, str], Box], dev: list[dict[str, Any]],
) -> None:
    opa = support.container(support.one(dev, "Deployment", "carbongate-webhook"), "opa")
    (address,) = [a.removeprefix("--addr=") for a in opa["args"] if a.startswith("--addr=")]
    for container, caller in (("webhook", "webhook"), ("carbon-feed", "feed")):
        found = boxes[("carbongate-webhook", container)]
        assert found.settings.engine.opa_url == f"http://{address}"
        (token,) = [e for e in found.container["env"] if e["name"] == found.settings.engine.opa_token_env]
        assert token["valueFrom"]["secretKeyRef"]["key"] == caller
    assert boxes[("carbongate-webhook", "webhook")].settings.engine.kind == "opa"
    assert boxes[("carbongate-webhook", "carbon-feed")].settings.feed.publish_to == "opa"


def test_opa_gets_every_token_its_authz_policy_compares(dev: list[dict[str, Any]]) -> None:
    opa = support.container(support.one(dev, "Deployment", "carbongate-webhook"), "opa")
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in opa["env"]}
    authz = support.one(dev, "ConfigMap", "carbongate-opa-authz")["data"]["authz.rego"]
    engine = OpaEngine()
    try:
        engine.add_policy("authz.rego", authz)
        variables = engine.eval_document("system.authz.token_variables", {})
    finally:
        engine.close()
    assert {variable: {"name": env[variable]["name"], "key": caller}
            for caller, variable in variables.items()} == {
        variable: env[variable] for variable in variables.values()}


def test_processes_without_opa_sidecar_use_the_embedded_engine(boxes: dict[tuple[str, str], Box]) -> None:
    assert boxes[("carbongate-deferral", "controller")].settings.engine.kind == "embedded"
    assert boxes[("carbongate-governance", "governance")].settings.engine.kind == "embedded"
    for deployment in ("carbongate-deferral", "carbongate-governance"):
        assert boxes[(deployment, "carbon-feed")].settings.feed.publish_to == "file"


def test_a_mistyped_setting_in_the_toml_would_be_refused(tmp_path: Path, dev: list[dict[str, Any]]) -> None:
    """The load above is a real check: the same file with a wrong key fails."""
    text = support.one(dev, "ConfigMap", "carbongate-settings")["data"]["carbongate.toml"]
    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace("own_namespace", "own_namespaces"), encoding="utf-8")
    with pytest.raises(settings_mod.SettingsError, match="own_namespaces"):
        settings_mod.load(environ={}, config_file=broken)
