"""Images from a registry under the real CLI: what the Docker client does to them on create.

On create the provider asks the engine to query the registry: the client pins the tag to the
digest the registry reports and fills in the placement platforms; on update it does neither.
So a stack that names an image by tag alone changes (restarts) its service on the next run and
loses the pin; one that names `repository:tag@sha256:…` is left as it is (docs/operations.md, "Images").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker
import pytest

from . import harness, registry
from .pulumi_cli import Project, Stack, disposable_stack, stack_service, steps
from .test_pulumi_real import stack_config

STACK = f"rg{harness.SESSION_ID}"


@pytest.fixture(scope="module")
def registry_stack(pulumi_project: Project, engine: docker.DockerClient) -> Iterator[Stack]:
    with disposable_stack(pulumi_project, STACK, engine) as stack:
        yield stack


def logging_spec(engine: docker.DockerClient) -> dict[str, Any]:
    # The logging daemon's image is the smallest to push; every service is created the same way.
    return stack_service(engine, STACK, "logging").attrs["Spec"]["TaskTemplate"]


def test_a_tag_is_pinned_on_create_and_only_a_digest_pin_keeps_the_next_run_quiet(
    engine: docker.DockerClient,
    pulumi_project: Project,
    registry_stack: Stack,
    lab_images: dict[str, str],
    test_registry: str,
) -> None:
    tagged, pinned = registry.push(engine, lab_images["logging"], test_registry)
    node = str(engine.info()["Name"])
    config = stack_config(lab_images, harness.free_tcp_port(), node, logging={"image": tagged})
    config["envLabel"] = f"rg-{harness.SESSION_ID}"
    stack = pulumi_project.stack(STACK, config)

    stack.up()
    created = logging_spec(engine)
    assert created["ContainerSpec"]["Image"] == pinned
    assert created["Placement"].get("Platforms"), "the client filled in the image's platforms"
    # Named by tag: the next run "updates" the image back to the bare tag (a restart of every task).
    assert steps(stack.preview_json()) == {"logging-logspout": "update"}

    # Named by digest: what the client wrote is what the stack asks for, and the platforms it added
    # are no change (the program ignores them): the next runs leave the service alone.
    stack.write_config({**config, "logging": {**config["logging"], "image": pinned}})
    stack.up()
    stack.preview("--expect-no-changes")
    stack.pulumi("refresh", "--yes", "--skip-preview", "--expect-no-changes")
    assert logging_spec(engine)["ContainerSpec"]["Image"] == pinned
