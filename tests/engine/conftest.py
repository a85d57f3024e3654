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
* ``standin_images``  -- session: role -> tag of the stand-in images on ``engine``.
* ``test_registry``   -- session: address (127.0.0.1:<port>) of a local image registry
                         (tests/engine/registry.py); skips with the reason when it can't be built.

Set WPSWARM_REQUIRE_ENGINE=1 (e.g. in CI) to turn those skips into failures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NoReturn

import docker
import pytest
from docker.errors import DockerException

from . import harness, images, netns, pulumi_cli, registry, standins


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
def standin_images(engine: docker.DockerClient) -> dict[str, str]:
    try:
        return standins.ensure_images(engine)
    except harness.HarnessError as exc:
        _unavailable(f"cannot build the stand-in images: {exc}")


@pytest.fixture(scope="session")
def test_registry(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = registry.registry_binary()
    if isinstance(binary, str):
        _unavailable(binary)
    with registry.running_registry(binary, tmp_path_factory.mktemp("registry")) as address:
        yield address


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if pulumi_cli.TIMINGS:
        terminalreporter.write_sep("-", "real pulumi operations (seconds)")
        for command, stack, seconds in pulumi_cli.TIMINGS:
            terminalreporter.write_line(f"{command:10} {stack:16} {seconds:6.1f}")
    if harness.TIMINGS:
        terminalreporter.write_sep("-", "wpswarm engine harness timings")
        for what, seconds in harness.TIMINGS.items():
            terminalreporter.write_line(f"{what}: {seconds:.1f}s")
