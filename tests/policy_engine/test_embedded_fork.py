"""Fork safety under gunicorn: import in the master, build engines in the workers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.policy_engine.conftest import FIXTURE_POLICIES

REPO = Path(__file__).resolve().parents[2]


def test_importing_the_engines_does_not_start_the_go_runtime_and_a_forked_worker_builds_one(
) -> None:
    """What a gunicorn master does (import, fork) followed by what a worker does (build)."""
    script = textwrap.dedent(f"""
        import os, sys
        from opa_bindings import engine as bindings
        from policy_engine import embedded, factory, opa_server
        assert bindings._lib is None, "importing policy_engine loaded the Go runtime"
        pid = os.fork()
        if pid == 0:
            worker = embedded.EmbeddedEngine(policy_dir={str(FIXTURE_POLICIES)!r})
            worker.put_data("grid", {{"regions": {{"GB": {{"g_per_kwh": 100}}}}}})
            decision = worker.evaluate("carbongate/admission/decision", {{"kind": "Pod"}})
            os._exit(0 if decision["action"] == "admit" else 3)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    """)
    completed = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                               text=True, timeout=60, check=False)

    assert completed.returncode == 0, completed.stderr


def test_an_engine_built_before_a_fork_refuses_to_evaluate_in_the_child() -> None:
    script = textwrap.dedent(f"""
        import os, sys
        from policy_engine import embedded, errors
        master = embedded.EmbeddedEngine(policy_dir={str(FIXTURE_POLICIES)!r})
        pid = os.fork()
        if pid == 0:
            try:
                master.evaluate("carbongate/admission/decision", {{"kind": "Pod"}})
            except errors.PolicyEvaluationError as error:
                os._exit(0 if "build it in the worker" in str(error) else 4)
            os._exit(5)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    """)
    completed = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                               text=True, timeout=60, check=False)

    assert completed.returncode == 0, completed.stderr

