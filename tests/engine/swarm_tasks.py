"""Services, tasks and node labels on a real swarm: what the engine tests look for and wait on."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import DockerException
from docker.models.containers import Container
from docker.types import EndpointSpec

from swarmlib.claims import change_node_labels

from .harness import exclusive_lock, wait_for


def service_tasks(
    client: docker.DockerClient,
    service: str,
    *,
    desired_state: str | None = "running",
) -> list[dict[str, Any]]:
    """Tasks of ``service`` (name or id), by default only those meant to be running."""
    filters: dict[str, Any] = {"service": service}
    if desired_state:
        filters["desired-state"] = desired_state
    tasks: list[dict[str, Any]] = client.api.tasks(filters=filters)
    return tasks


def running_tasks(client: docker.DockerClient, service: str) -> list[dict[str, Any]]:
    """Tasks of ``service`` that are desired *and* actually running."""
    return [t for t in service_tasks(client, service) if t["Status"]["State"] == "running"]


def wait_running(
    client: docker.DockerClient,
    service: str,
    count: int,
    *,
    timeout: float = 60,
) -> list[dict[str, Any]]:
    """Wait until exactly ``count`` tasks of ``service`` run; return them.

    With a health check, swarm only reports a task "running" once it is healthy.
    """

    def probe() -> list[dict[str, Any]] | None:
        tasks = running_tasks(client, service)
        return tasks if len(tasks) == count and len(service_tasks(client, service)) == count else None

    try:
        return wait_for(probe, timeout=timeout, what=f"{count} running task(s) of {service}")
    except TimeoutError as exc:
        states = [
            (t["Status"]["State"], t["Status"].get("Err") or t["Status"].get("Message"))
            for t in service_tasks(client, service, desired_state=None)
        ]
        raise TimeoutError(f"{exc}; task states: {states}") from None


def service_filter(service_id: str) -> dict[str, str | list[str] | bool]:
    """``containers.list(filters=...)`` for the task containers of one service."""
    return {"label": f"com.docker.swarm.service.id={service_id}"}


def host_port_endpoint(published: int, target: int, protocol: str = "tcp") -> EndpointSpec:
    """Host-mode port publishing (the ingress routing mesh needs IPVS, absent here)."""
    spec = EndpointSpec()
    spec["Ports"] = [{"Protocol": protocol, "PublishedPort": published, "TargetPort": target, "PublishMode": "host"}]
    return spec


def exec_output(container: Container, cmd: Sequence[str]) -> tuple[int, str]:
    """``docker exec`` ``cmd`` in ``container``; return (exit code, decoded stdout+stderr)."""
    result = container.exec_run(list(cmd))
    output = result.output
    text = output.decode(errors="replace") if isinstance(output, bytes) else b"".join(output).decode(errors="replace")
    return int(result.exit_code or 0), text


def task_container_id(task: Mapping[str, Any]) -> str:
    return str(task["Status"]["ContainerStatus"]["ContainerID"])


def container_health(client: docker.DockerClient, container_id: str) -> str | None:
    """``healthy`` / ``unhealthy`` / ``starting``, or None without a health check."""
    health = (client.api.inspect_container(container_id).get("State") or {}).get("Health")
    return str(health["Status"]) if health else None


def set_node_labels(client: docker.DockerClient, node_id: str, labels: Mapping[str, str | None]) -> None:
    """Add/replace node labels; a value of None removes the label."""
    change_node_labels(client, node_id, lambda _current: labels)


def local_node_id(client: docker.DockerClient) -> str:
    return str(client.info()["Swarm"]["NodeID"])


def _env_label(client: docker.DockerClient, node_id: str) -> str | None:
    return (client.nodes.get(node_id).attrs["Spec"].get("Labels") or {}).get("env")


@contextlib.contextmanager
def env_label_on(client: docker.DockerClient, node_ids: Sequence[str], value: str) -> Iterator[None]:
    """Labels nodes env=<value> for the test; removes the label afterwards if it is still ours.
    A node labelled env by someone else is left alone: wait a while for it to be freed, then skip."""
    try:
        wait_for(
            lambda: all(_env_label(client, n) is None for n in node_ids), timeout=60, interval=1, what="free env label"
        )
    except TimeoutError:
        taken = {n[:12]: _env_label(client, n) for n in node_ids}
        pytest.skip(f"node(s) already labelled env by someone else {taken}; not overwriting")
    try:
        for node_id in node_ids:
            set_node_labels(client, node_id, {"env": value})
        yield
    finally:
        for node_id in node_ids:
            with contextlib.suppress(DockerException):
                if _env_label(client, node_id) == value:
                    set_node_labels(client, node_id, {"env": None})


#: Serialises the tests that label the machine's (shared) node across concurrent pytest runs.
ENV_LABEL_LOCK = Path(tempfile.gettempdir()) / "wpswarm-verify-env-label.lock"


def shared_node_lock(timeout: float = 180) -> contextlib.AbstractContextManager[None]:
    return exclusive_lock(ENV_LABEL_LOCK, timeout=timeout)


@contextlib.contextmanager
def local_node_labelled(client: docker.DockerClient, value: str) -> Iterator[str]:
    """env=<value> on the engine's own node for the block, under :func:`shared_node_lock`."""
    with shared_node_lock(), env_label_on(client, [local_node_id(client)], value):
        yield value
