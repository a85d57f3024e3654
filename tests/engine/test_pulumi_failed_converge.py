"""A failed converge under the real CLI, and the recovery docs/operations.md gives ("When an `up` fails").

When an update doesn't converge, Swarm rolls WordPress back while the provider stores the failed
spec as the resource's outputs: the state describes a service that never went live (the next
preview still proposes the change again, from the inputs). `pulumi refresh` puts the live spec back
into the state; after it, the fixed config has nothing left to do. The program's converge timeout
(10 min) is shortened in this test's copy of the program, so the failure comes within a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from . import harness
from .pulumi_cli import Project, Stack, disposable_stack, stack_service, steps
from .test_pulumi_real import stack_config

STACK = f"fc{harness.SESSION_ID}"
CONVERGE_TIMEOUT = "45s"


@pytest.fixture(scope="module")
def quick_project(pulumi_project: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = Project(tmp_path_factory.mktemp("failed-converge"), pulumi_project.toolchain)
    for component in ("wordpress.py", "mysql.py"):
        source: Path = project.directory / "components" / component
        text = source.read_text()
        assert 'converge_config=converge("10m")' in text, component
        source.write_text(
            text.replace('converge_config=converge("10m")', f'converge_config=converge("{CONVERGE_TIMEOUT}")')
        )
    return project


@pytest.fixture(scope="module")
def failing_stack(quick_project: Project, engine: docker.DockerClient) -> Iterator[Stack]:
    with disposable_stack(quick_project, STACK, engine) as stack:
        yield stack


def running_image(engine: docker.DockerClient) -> str:
    return str(stack_service(engine, STACK, "wordpress").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"])


def test_after_a_failed_converge_only_a_refresh_shows_what_runs(
    engine: docker.DockerClient, quick_project: Project, failing_stack: Stack, lab_images: dict[str, str]
) -> None:
    node = str(engine.info()["Name"])
    config = stack_config(lab_images, harness.free_tcp_port(), node)
    config["envLabel"] = f"fc-{harness.SESSION_ID}"
    stack = quick_project.stack(STACK, config)
    stack.up()
    good = lab_images["wordpress"]
    assert running_image(engine) == good

    # An image no node has (and no registry serves): the new task can't start, Swarm rolls back.
    missing = "wpswarm-lab/wordpress:does-not-exist"
    stack.write_config({**config, "wordpress": {**config["wordpress"], "image": missing}})
    failed = stack.up(check=False)
    assert failed.returncode != 0
    harness.wait_for(lambda: running_image(engine) == good, timeout=120, interval=1, what="Swarm's rollback")

    # The state now describes the failed spec as live; the preview proposes the change again.
    assert state_image(stack) == missing
    assert steps(stack.preview_json()) == {"site-wordpress": "update"}
    # The documented recovery: refresh (the state learns the rolled-back spec), fix, up.
    stack.pulumi("refresh", "--yes", "--skip-preview")
    assert state_image(stack) == good
    stack.write_config(config)
    stack.preview("--expect-no-changes")
    stack.up("--expect-no-changes")
    assert running_image(engine) == good


def state_image(stack: Stack) -> str:
    resources = stack.export()["deployment"]["resources"]
    (wordpress,) = [r for r in resources if r["urn"].endswith("::site-wordpress")]
    return str(wordpress["outputs"]["taskSpec"]["containerSpec"]["image"])
