"""The image: built with Docker where an engine answers, its recipe checked everywhere.

``docker build`` needs a running Docker engine; where ``docker info`` does not
answer (this CI machine has the client only), the build test is skipped and
says why. The static checks below hold the Dockerfile to what the manifests
assume (non-root uid, the embedded OPA package, the wheel) on every machine.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tests.deploy import support

DOCKERFILE = support.REPO / "Dockerfile"
IMAGE_TAG = "carbongate:deploy-test"


def _docker_engine() -> str | None:
    """None when a Docker engine answers, else why not."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker client installed"
    try:
        done = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "docker info did not answer within 20 s"
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["docker info failed"])[-1]
        return f"no Docker engine answers ({reason})"
    return None


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


@pytest.mark.slow
@pytest.mark.xdist_group("docker")
def test_the_image_builds_and_runs_as_non_root() -> None:
    reason = _docker_engine()
    if reason is not None:
        pytest.skip(f"docker build not checked: {reason}")
    build = subprocess.run(["docker", "build", "-t", IMAGE_TAG, str(support.REPO)],
                           capture_output=True, text=True, timeout=1800, check=False)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run(["docker", "run", "--rm", "--read-only", "--tmpfs", "/tmp", IMAGE_TAG, "sh", "-c",
                          "id -u && carbongate certs --help > /dev/null"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[0] == "10001"


def _base_images() -> list[str]:
    instructions = _instructions()
    arguments = dict(re.findall(r"^(\w+)=(\S+)$", "\n".join(a for k, a in instructions if k == "ARG"),
                                re.MULTILINE))
    bases = [a.split()[0] for k, a in instructions if k == "FROM"]
    return [re.sub(r"\$\{(\w+)\}", lambda m: arguments[m.group(1)], base) for base in bases]


def test_the_build_is_multi_stage_from_a_slim_python_pinned_by_digest() -> None:
    images = _base_images()
    assert len(images) >= 2
    for image in images:
        assert re.fullmatch(r"python:3\.\d+(\.\d+)?-slim(-\w+)?@sha256:[0-9a-f]{64}", image), image


def test_the_image_python_is_one_the_embedded_engine_accepts() -> None:
    """So pip installs the engine as a declared dependency there, no --ignore-requires-python."""
    accepted = SpecifierSet(importlib.metadata.metadata("opa-golib-python-bindings")["Requires-Python"])
    for image in _base_images():
        found = re.match(r"python:(\d+\.\d+)", image)
        assert found and found.group(1) + ".0" in accepted, image
    runs = " ".join(a for k, a in _instructions() if k == "RUN")
    assert "--ignore-requires-python" not in runs


def test_the_final_stage_runs_as_the_uid_the_manifests_require(dev: list[dict[str, Any]]) -> None:
    users = [a for k, a in _final_stage() if k == "USER"]
    assert users, "the final stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    for deployment in support.of_kind(dev, "Deployment"):
        pod = support.pod_spec(deployment)
        for container in support.containers(deployment):
            if container["image"].startswith("carbongate"):
                assert pod["securityContext"]["runAsUser"] == int(uid)


def test_the_project_goes_in_as_a_wheel_and_every_install_is_constrained() -> None:
    runs = [a for k, a in _instructions() if k == "RUN"]
    assert any("pip wheel" in r for r in runs) and any(".whl" in r for r in runs)
    installs = [part for run in runs for part in run.split("&&") if "pip install" in part]
    assert installs and all("-c constraints.txt" in part for part in installs), installs


def test_the_makefile_installs_with_the_constraints_and_they_pin_the_engine() -> None:
    makefile = (support.REPO / "Makefile").read_text(encoding="utf-8")
    installs = [line for line in makefile.splitlines() if "pip install" in line and not line.startswith("#")]
    assert installs and all("-c constraints.txt" in line for line in installs), installs
    pins = dict(line.split("==", 1) for line in (support.REPO / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    project = tomllib.loads((support.REPO / "pyproject.toml").read_text())
    (engine,) = [d for d in project["project"]["dependencies"] if d.startswith("opa-golib-python-bindings")]
    requirement = Requirement(engine)
    assert requirement.specifier == SpecifierSet("==" + pins["opa-golib-python-bindings"])
    assert str(requirement.marker) == 'python_version >= "3.14"'
    # Everything pyproject.toml depends on is pinned.
    names = {Requirement(d).name.lower() for d in project["project"]["dependencies"]}
    assert names <= {name.lower().replace("_", "-") for name in pins}


def test_home_is_writable_under_a_read_only_root() -> None:
    """gunicorn (control socket) and matplotlib (cache) write under HOME."""
    env = " ".join(a for k, a in _final_stage() if k == "ENV")
    assert re.search(r"\bHOME=/tmp\b", env)


def test_the_final_stage_copies_only_the_virtualenv() -> None:
    copies = [a for k, a in _final_stage() if k == "COPY"]
    assert copies and all(a.startswith("--from=") for a in copies)


def test_dockerignore_keeps_secrets_and_local_state_out_but_not_the_code() -> None:
    ignored = {line.strip() for line in (support.REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", ".dev-certs", "build", "dist"} <= ignored
    project = tomllib.loads((support.REPO / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    needed = packages | {"pyproject.toml", "README.md", "constraints.txt", "carbongate/demo_grid"}
    assert not needed & ignored
    assert all(Path(support.REPO / p).exists() for p in needed - packages)
