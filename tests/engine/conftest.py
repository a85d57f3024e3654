"""Fixtures for tests against real Docker Engines (harness.py, images.py, swarm_tasks.py, netns.py).

* ``engine``          -- session: DockerClient for the machine's engine (a single-node
                         swarm manager, brought up by scripts/engine-up.sh); skips with
                         the reason when there is none.
* ``busybox_image``   -- session: tag (str) of the busybox image on ``engine``.
* ``engine_resources``-- function: harness.TestResources for ``engine``; label every
                         object with ``.labels``; everything so labelled is removed
                         after the test.
* ``netns_swarm``     -- session: a started netns.NetnsSwarm (3 nodes, busybox image
                         loaded on each); skips with the reason when it cannot be built.
* ``netns_resources`` -- function: harness.TestResources for ``netns_swarm.client``.
* ``pulumi_project``  -- session: a pulumi_cli.Project (a copy of the program with its own file
                         backend) run by the real CLI and providers of scripts/pulumi-toolchain;
                         skips with the reason when there is no toolchain.
* ``lab_images``      -- session: role -> tag of the lab images (swarmops.lab_images) on ``engine``.
* ``netns_lab_images``-- session: the same tags, the images copied onto every ``netns_swarm`` node.
* ``test_registry``   -- session: address (127.0.0.1:<port>) of a local image registry
                         (tests/engine/registry.py); skips with the reason when it can't be built.

Set WPSWARM_REQUIRE_ENGINE=1 (e.g. in CI) to turn those skips into failures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import NoReturn

import docker
import pytest
from docker.errors import DockerException

from swarmops.lab_images.build import ensure_images
from swarmops.lab_images.debian import LabImageError

from . import harness, images, netns, pulumi_cli, registry


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("WPSWARM_REQUIRE_ENGINE") == "1":
        pytest.fail(f"{reason} (WPSWARM_REQUIRE_ENGINE=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    result = harness.engine_client()
    if isinstance(result, str):
        _unavailable(result)
    yield result
    harness.cleanup_labelled(result, {harness.SESSION_LABEL: harness.SESSION_ID})
    result.close()


@pytest.fixture(scope="session")
def busybox_image(engine: docker.DockerClient) -> str:
    try:
        images.ensure_busybox_image(engine, images.BUSYBOX_TAG)
    except harness.HarnessError as exc:
        _unavailable(f"cannot build the busybox test image: {exc}")
    return images.BUSYBOX_TAG


@pytest.fixture
def engine_resources(engine: docker.DockerClient) -> Iterator[harness.TestResources]:
    resources = harness.TestResources(engine)
    yield resources
    resources.cleanup()


@pytest.fixture(scope="session")
def netns_swarm() -> Iterator[netns.NetnsSwarm]:
    reason = netns.netns_swarm_unavailable_reason()
    if reason:
        _unavailable(reason)
    swarm = netns.NetnsSwarm(nodes=3)
    try:
        swarm.start()  # tears itself down on failure
    except (harness.HarnessError, TimeoutError, DockerException) as exc:
        _unavailable(f"cannot build the netns swarm: {exc}")
    yield swarm
    swarm.close()


@pytest.fixture
def netns_resources(netns_swarm: netns.NetnsSwarm) -> Iterator[harness.TestResources]:
    resources = harness.TestResources(netns_swarm.client)
    yield resources
    resources.cleanup()


@pytest.fixture(scope="session")
def pulumi_project(tmp_path_factory: pytest.TempPathFactory) -> pulumi_cli.Project:
    toolchain = pulumi_cli.toolchain_env()
    if isinstance(toolchain, str):
        _unavailable(toolchain)
    return pulumi_cli.Project(tmp_path_factory.mktemp("pulumi-project"), toolchain)


@pytest.fixture(scope="session")
def lab_images(engine: docker.DockerClient) -> dict[str, str]:
    """role -> tag of the lab images (swarmops.lab_images) on `engine`, built when missing."""
    try:
        built = ensure_images(engine)
    except LabImageError as exc:
        _unavailable(f"cannot build the lab images: {exc}")
    for image in built.values():
        harness.TIMINGS[f"lab image {image.role} ({image.how})"] = image.seconds
    return {role: image.tag for role, image in built.items()}


@pytest.fixture(scope="session")
def netns_lab_images(
    engine: docker.DockerClient, netns_swarm: netns.NetnsSwarm, lab_images: dict[str, str]
) -> dict[str, str]:
    """The lab images, copied from this machine's engine onto every netns node (once a session)."""
    started = time.monotonic()
    for tag in lab_images.values():
        netns_swarm.distribute_image(tag, source=engine)
    harness.TIMINGS["lab images copied to the netns nodes"] = time.monotonic() - started
    return lab_images


@pytest.fixture(scope="session")
def test_registry(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = registry.registry_binary()
    if isinstance(binary, str):
        _unavailable(binary)
    with registry.running_registry(binary, tmp_path_factory.mktemp("registry")) as address:
        yield address
    # The images pushed there carry the registry's name: none is left behind to resolve to it.
    for image in engine.images.list():
        for tag in image.tags:
            if tag.startswith(f"{address}/"):
                engine.images.remove(tag, force=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if pulumi_cli.TIMINGS:
        terminalreporter.write_sep("-", "real pulumi operations (seconds)")
        for command, stack, seconds in pulumi_cli.TIMINGS:
            terminalreporter.write_line(f"{command:10} {stack:16} {seconds:6.1f}")
    if harness.TIMINGS:
        terminalreporter.write_sep("-", "wpswarm engine harness timings")
        for what, seconds in harness.TIMINGS.items():
            terminalreporter.write_line(f"{what}: {seconds:.1f}s")
    for what, figure in harness.FIGURES.items():
        terminalreporter.write_line(f"{what}: {figure}")
