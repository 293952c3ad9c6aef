"""Reading a policy directory: modules, data paths, the digest and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy_engine import errors, loader
from tests.policy_engine.conftest import write


def test_modules_are_named_by_their_path_and_tests_are_left_out(policy_dir: Path) -> None:
    policies = loader.load(policy_dir)

    assert [module.path for module in policies.modules] == [
        "carbongate/admission/decision.rego", "carbongate/release/decision.rego"]


def test_the_test_runner_can_ask_for_test_modules_too(policy_dir: Path) -> None:
    policies = loader.load(policy_dir, include_tests=True)

    tests = [module.path for module in policies.modules if module.is_test]
    assert tests == ["carbongate/admission/decision_test.rego"]


def test_data_file_is_mounted_at_its_directory_path(policy_dir: Path) -> None:
    (document,) = loader.load(policy_dir).documents

    assert document.data_path == "carbongate.config"
    assert document.file == "carbongate/config/data.json"
    assert document.value == {"home_region": "GB", "threshold_g_per_kwh": 300}


def test_version_is_a_prefix_of_the_sha256_digest(policy_dir: Path) -> None:
    policies = loader.load(policy_dir)

    assert len(policies.digest) == 64
    assert policies.version == policies.digest[:12]


def test_digest_is_stable_and_equals_the_fingerprint(policy_dir: Path) -> None:
    assert loader.load(policy_dir).digest == loader.load(policy_dir).digest
    assert loader.fingerprint(policy_dir) == loader.load(policy_dir).digest


def test_digest_changes_with_a_policy_or_config_edit(policy_dir: Path) -> None:
    before = loader.load(policy_dir).digest
    decision = policy_dir / "carbongate/admission/decision.rego"
    decision.write_text(decision.read_text() + "\n# reviewed\n")
    after_policy = loader.load(policy_dir).digest
    write(policy_dir / "carbongate/config/data.json", '{"home_region": "FR"}')

    assert len({before, after_policy, loader.load(policy_dir).digest}) == 3


def test_digest_ignores_test_files(policy_dir: Path) -> None:
    before = loader.load(policy_dir).digest
    write(policy_dir / "carbongate/release/decision_test.rego", "package carbongate.release_test\n")

    assert loader.load(policy_dir).digest == before


def test_invalid_json_names_the_file_and_line(policy_dir: Path) -> None:
    write(policy_dir / "carbongate/config/data.json", '{\n  "home_region": "GB",\n}\n')

    with pytest.raises(errors.PolicyLoadError) as raised:
        loader.load(policy_dir)

    (problem,) = raised.value.problems
    assert (problem.file, problem.line) == ("carbongate/config/data.json", 3)
    assert "carbongate/config/data.json:3: invalid JSON" in str(raised.value)


def test_every_bad_file_is_reported_at_once(policy_dir: Path) -> None:
    write(policy_dir / "carbongate/config/data.json", "[1, 2]")
    write(policy_dir / "carbongate/admission/empty.rego", "  \n")

    with pytest.raises(errors.PolicyLoadError) as raised:
        loader.load(policy_dir)

    assert {(p.file, p.message) for p in raised.value.problems} == {
        ("carbongate/admission/empty.rego", "empty module"),
        ("carbongate/config/data.json", "must hold a JSON object, not list"),
    }


def test_a_file_that_is_not_utf8_is_rejected_with_its_line(policy_dir: Path) -> None:
    (policy_dir / "carbongate/release/decision.rego").write_bytes(b"package x\n\n# caf\xe9\n")

    with pytest.raises(errors.PolicyLoadError) as raised:
        loader.load(policy_dir)

    assert str(raised.value.problems[0]) == "carbongate/release/decision.rego:3: not valid UTF-8"


def test_a_file_that_vanishes_while_listed_is_reported_not_crashed(policy_dir: Path) -> None:
    """A dangling symlink stands in for a file deleted between listing and reading."""
    (policy_dir / "carbongate/release/gone.rego").symlink_to(policy_dir / "nowhere.rego")

    with pytest.raises(errors.PolicyLoadError) as raised:
        loader.load(policy_dir)

    assert raised.value.problems[0].file == "carbongate/release/gone.rego"
    assert "cannot read" in raised.value.problems[0].message


def test_data_json_at_the_top_is_refused(policy_dir: Path) -> None:
    write(policy_dir / "data.json", "{}")

    with pytest.raises(errors.PolicyLoadError, match="would replace all of data"):
        loader.load(policy_dir)


def test_data_directory_must_be_a_rego_identifier(policy_dir: Path) -> None:
    write(policy_dir / "carbongate/my-team/data.json", "{}")

    with pytest.raises(errors.PolicyLoadError, match="not a Rego identifier"):
        loader.load(policy_dir)


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(errors.PolicyLoadError, match="does not exist"):
        loader.load(tmp_path / "absent")


def test_directory_without_policies_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "carbongate/config/data.json", "{}")
    write(tmp_path / "carbongate/x_test.rego", "package x_test\n")

    with pytest.raises(errors.PolicyLoadError, match="holds no .rego policy"):
        loader.load(tmp_path)


def test_load_error_is_a_compile_error_for_reload_callers() -> None:
    assert issubclass(errors.PolicyLoadError, errors.PolicyCompileError)


def test_configmap_mount_layout_is_read_through_its_symlinks(tmp_path: Path) -> None:
    """kubelet mounts ``..2026_x/`` and ``..data -> ..2026_x``; visible names are symlinks."""
    mount = tmp_path / "mount"
    version = mount / "..2026_11_21_12_00_00.1"
    write(version / "carbongate/admission/decision.rego", "package carbongate.admission\n"
          "decision := 1\n")
    write(version / "carbongate/config/data.json", "{}")
    (mount / "..data").symlink_to(version.name)
    (mount / "carbongate").symlink_to("..data/carbongate")
    write(mount / ".decision.rego.swp", "editor junk")

    policies = loader.load(mount)

    assert [module.path for module in policies.modules] == ["carbongate/admission/decision.rego"]
    assert [document.data_path for document in policies.documents] == ["carbongate.config"]


def test_a_symlink_loop_does_not_hang_the_walk(policy_dir: Path) -> None:
    (policy_dir / "carbongate/admission/loop").symlink_to(policy_dir / "carbongate")

    policies = loader.load(policy_dir)

    assert "carbongate/admission/decision.rego" in [m.path for m in policies.modules]
