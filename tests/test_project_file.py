"""Pulumi.yaml as the CLI reads it: valid against the CLI's own project schema, typed config as documented."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from components.settings import CONFIG_KEYS, DEFAULT_DOCKER_HOST
from tests.support import ROOT, STACKS, project_file

# Copied from pulumi/pulumi sdk/go/common/workspace/project.json; its $id says so.
SCHEMA: dict[str, Any] = json.loads((Path(__file__).parent / "data" / "pulumi-project.schema.json").read_text())


def test_schema_is_the_pulumi_cli_project_schema() -> None:
    assert SCHEMA["$id"].endswith("pulumi/pulumi/blob/master/sdk/go/common/workspace/project.json")


def test_project_file_validates_against_the_cli_schema() -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(project_file())


def test_schema_catches_what_the_cli_would_refuse() -> None:
    # Guards the test itself: an object-typed config declaration is refused by the CLI.
    broken = project_file()
    broken["config"]["wordpress"] = {"type": "object"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(broken)


def test_runtime_runs_the_program_from_its_virtualenv_without_a_typechecker() -> None:
    # No `typechecker`: it ran pyright over the whole tree (tests, policy) before every preview and
    # up, so a type error in a test could block a prod deploy. scripts/test type-checks everything.
    runtime = project_file()["runtime"]
    assert runtime["name"] == "python"
    assert runtime["options"] == {"toolchain": "pip", "virtualenv": ".venv"}


def test_declared_config_is_typed_described_and_read_by_the_program() -> None:
    declared: dict[str, Any] = project_file()["config"]
    assert set(declared) <= set(CONFIG_KEYS)
    for key, spec in declared.items():
        assert spec["type"] in {"string", "integer", "boolean", "array"}, key
        assert spec["description"].strip(), key
    assert "default" not in declared["envLabel"], "each stack must choose its environment"
    assert declared["dockerHost"]["default"] == DEFAULT_DOCKER_HOST


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_only_use_keys_the_program_reads(stack: str) -> None:
    import yaml

    keys = (yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]).keys()
    assert {key.partition(":")[2] for key in keys} <= set(CONFIG_KEYS)
    assert all(key.startswith("wordpress-swarm:") for key in keys)
