"""deploy/render.py renders kustomizations exactly as kustomize does.

Where kubectl (with its built-in kustomize) is installed, every overlay is
rendered by both and compared object for object; the unit tests below pin
the semantics the overlays rely on, with expectations recorded from
``kubectl kustomize`` (kustomize v5.5.0).
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import support

render = support.renderer()


def _write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


DEPLOYMENT = """\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: w}
    spec:
      selector: {matchLabels: {a: b}}
      template:
        metadata: {labels: {a: b}}
        spec:
          containers:
          - name: c
            image: carbongate
            env: [{name: A, value: "1"}, {name: B, value: "2"}]
          volumes:
          - {name: a, configMap: {name: settings}}
          - {name: b, emptyDir: {}}
          - {name: c, emptyDir: {}}
"""


@pytest.mark.parametrize("target", ["overlays/dev", "overlays/prod", "base", "monitoring"])
def test_renderer_output_equals_kubectl_kustomize(tree: Path, target: str) -> None:
    binary = support.kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed here: the renderer cannot be compared with it")
    done = subprocess.run([binary, "kustomize", str(tree / "deploy" / target)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    expected = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert render.build(tree / "deploy" / target) == expected


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        # Recorded from kubectl kustomize: literals k=v.
        ("ConfigMap", {"k": "v"}, "bdg947hgcc"),
        # A file holding 'a<b & "c"\nline2 é\n': Go escapes <, > and &, keeps UTF-8.
        ("ConfigMap", {"t.txt": 'a<b & "c"\nline2 \u00e9\n'}, "776bhm2978"),
        ("Secret", {"k": "dg=="}, "ftgtgc4t9f"),
    ],
)
def test_content_hash_matches_kustomize(kind: str, data: dict[str, str], expected: str) -> None:
    resource: dict[str, Any] = {"kind": kind, "metadata": {"name": "any"}, "data": data}
    if kind == "Secret":
        resource["type"] = "Opaque"
    assert render.content_hash(resource) == expected


def test_generated_names_get_a_suffix_and_references_follow(tmp_path: Path) -> None:
    _write(tmp_path, {
        "kustomization.yaml": """\
            resources: [deployment.yaml]
            configMapGenerator:
            - name: settings
              literals: [k=v]
        """,
        "deployment.yaml": DEPLOYMENT,
    })
    built = render.build(tmp_path)
    config_map = support.one(built, "ConfigMap", "settings")
    assert config_map["metadata"]["name"] == "settings-bdg947hgcc"
    volume = support.pod_spec(support.one(built, "Deployment", "w"))["volumes"][0]
    assert volume["configMap"]["name"] == "settings-bdg947hgcc"


def test_strategic_merge_puts_patched_list_items_first_as_kustomize_does(tmp_path: Path) -> None:
    _write(tmp_path, {
        "kustomization.yaml": "resources: [deployment.yaml]\npatches:\n- path: patch.yaml\n",
        "deployment.yaml": DEPLOYMENT,
        "patch.yaml": """\
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: w}
            spec:
              template:
                spec:
                  containers:
                  - name: c
                    env: [{name: B, value: "9"}, {name: Z, value: "0"}]
                  volumes:
                  - {name: c, emptyDir: null, secret: {secretName: s}}
                  - {name: a, $patch: delete}
        """,
    })
    spec = support.pod_spec(support.one(render.build(tmp_path), "Deployment", "w"))
    assert spec["containers"][0]["env"] == [
        {"name": "B", "value": "9"}, {"name": "Z", "value": "0"}, {"name": "A", "value": "1"}]
    assert spec["volumes"] == [{"name": "c", "secret": {"secretName": "s"}},
                               {"name": "b", "emptyDir": {}}]


def test_a_delete_patch_removes_the_object(tmp_path: Path) -> None:
    _write(tmp_path, {
        "kustomization.yaml": "resources: [deployment.yaml]\npatches:\n- path: patch.yaml\n",
        "deployment.yaml": DEPLOYMENT,
        "patch.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\n$patch: delete\n",
    })
    assert render.build(tmp_path) == []


def test_images_namespace_and_labels_are_applied(tmp_path: Path) -> None:
    _write(tmp_path, {
        "kustomization.yaml": """\
            namespace: ns
            labels:
            - pairs: {team: platform}
            resources: [deployment.yaml]
            images:
            - {name: carbongate, newName: registry.local/carbongate, newTag: "1.2"}
        """,
        "deployment.yaml": DEPLOYMENT,
    })
    (deployment,) = render.build(tmp_path)
    assert deployment["metadata"]["namespace"] == "ns"
    assert deployment["metadata"]["labels"] == {"team": "platform"}
    assert support.pod_spec(deployment)["containers"][0]["image"] == "registry.local/carbongate:1.2"
    assert deployment["spec"]["selector"] == {"matchLabels": {"a": "b"}}


def test_replacements_copy_a_field_into_every_list_element(tmp_path: Path) -> None:
    _write(tmp_path, {
        "kustomization.yaml": """\
            resources: [webhook.yaml]
            secretGenerator:
            - name: tls
              literals: [ca.crt=PEM]
              options: {disableNameSuffixHash: true}
            replacements:
            - source: {kind: Secret, name: tls, fieldPath: "data.[ca.crt]"}
              targets:
              - select: {kind: MutatingWebhookConfiguration}
                fieldPaths: ["webhooks.*.clientConfig.caBundle"]
                options: {create: true}
        """,
        "webhook.yaml": """\
            apiVersion: admissionregistration.k8s.io/v1
            kind: MutatingWebhookConfiguration
            metadata: {name: m}
            webhooks:
            - {name: a.x.io, clientConfig: {url: "https://a"}}
            - {name: b.x.io, clientConfig: {url: "https://b"}}
        """,
    })
    webhooks = support.one(render.build(tmp_path), "MutatingWebhookConfiguration", "m")["webhooks"]
    assert [w["clientConfig"]["caBundle"] for w in webhooks] == ["UEVN", "UEVN"]


def test_long_secret_values_are_wrapped_like_kustomize() -> None:
    encoded = render._secret_base64(b"x" * 60)
    assert encoded.endswith("\n") and [len(line) for line in encoded.splitlines()] == [70, 10]
    assert render._secret_base64(b"short") == "c2hvcnQ="


def test_files_outside_the_kustomization_root_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, {"outside.txt": "x", "k/kustomization.yaml": """\
        configMapGenerator:
        - name: c
          files: [../outside.txt]
    """})
    with pytest.raises(render.RenderError, match="outside the kustomization root"):
        render.build(tmp_path / "k")


def test_kustomization_fields_the_renderer_lacks_are_refused_not_ignored(tmp_path: Path) -> None:
    _write(tmp_path, {"kustomization.yaml": "resources: []\nreplicas: [{name: w, count: 3}]\n"})
    with pytest.raises(render.RenderError, match="does not implement.*replicas"):
        render.build(tmp_path)


def test_output_is_ordered_namespace_first_and_webhooks_last(dev: list[dict[str, Any]]) -> None:
    kinds = [r["kind"] for r in dev]
    assert kinds[0] == "Namespace"
    assert kinds[-1] == "MutatingWebhookConfiguration"
    assert kinds.index("ServiceAccount") < kinds.index("Deployment")


def test_the_command_line_prints_a_yaml_stream(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert render.main(["build", str(tree / "deploy" / "overlays" / "prod")]) == 0
    printed = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert printed == render.build(tree / "deploy" / "overlays" / "prod")


def test_the_command_line_reports_a_broken_kustomization(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render.main(["build", str(tmp_path)]) == 1
    assert "no kustomization.yaml" in capsys.readouterr().err
