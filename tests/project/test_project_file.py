"""Pulumi.yaml as the CLI reads it: valid against the CLI's own project schema, typed config as documented."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from stackconfig.settings import CONFIG_KEYS, GROUPS, KEYS, NAMESPACE
from tests.support import ROOT, STACKS, project_file

# Copied from pulumi/pulumi sdk/go/common/workspace/project.json; its $id says so.
SCHEMA: dict[str, Any] = json.loads((Path(__file__).parent / "data" / "pulumi-project.schema.json").read_text())


def test_schema_is_the_pulumi_cli_project_schema() -> None:
    assert SCHEMA["$id"].endswith("pulumi/pulumi/blob/master/sdk/go/common/workspace/project.json")


def test_project_file_validates_against_the_cli_schema() -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(project_file())


def test_schema_catches_what_the_cli_would_refuse() -> None:
    # Guards the test itself: an object-typed config declaration is refused by the CLI, which is
    # why the structured groups can't be declared there.
    broken = project_file() | {"config": {"wordpress": {"type": "object"}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(broken)


def test_runtime_runs_the_program_from_its_virtualenv_without_a_typechecker() -> None:
    # No `typechecker`: it ran pyright over the whole tree (tests, policy) before every preview and
    # up, so a type error in a test could block a prod deploy. scripts/test type-checks everything.
    runtime = project_file()["runtime"]
    assert runtime["name"] == "python"
    assert runtime["options"] == {"toolchain": "pip", "virtualenv": ".venv"}


def test_the_project_is_the_config_namespace_and_declares_no_config() -> None:
    # One source of keys and defaults (stackconfig.settings.KEYS): a declaration here would be a
    # second list of defaults, applied by the CLI, that could drift from the program's.
    assert project_file()["name"] == NAMESPACE
    assert "config" not in project_file()


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_only_use_keys_the_program_reads(stack: str) -> None:
    import yaml

    config: dict[str, Any] = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert all(key.startswith(f"{NAMESPACE}:") for key in config)
    members = {key.name for key in KEYS}
    for key, value in config.items():
        name = key.partition(":")[2]
        assert name in CONFIG_KEYS, key
        if name in GROUPS:
            assert {f"{name}.{member}" for member in value} <= members, key
