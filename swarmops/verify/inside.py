"""Running a script inside a stack's own task, which only works on the node verify talks to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docker import DockerClient


def run_in_local_task(
    client: DockerClient, service_name: str, script: str, *, task: str, placed: str
) -> tuple[str | None, str]:
    """The output of `bash -c script` in the service's task on this node, or None and why not.
    `task` names the task ("MySQL task"); `placed` says where it runs when elsewhere, with {node}.
    A task in its health check's start period ("starting") runs too: a half-initialised MySQL
    never gets further."""
    from docker.errors import APIError

    here = (client.info().get("Swarm") or {}).get("NodeID")
    tasks: list[dict[str, Any]] = client.api.tasks(filters={"service": service_name, "desired-state": "running"})
    running = [t for t in tasks if t["Status"]["State"] in ("running", "starting")]
    if not running:
        return None, f"no {task} is running"
    local = [t for t in running if t.get("NodeID") == here]
    if not local:
        node = client.api.inspect_node(running[0]["NodeID"])["Description"]["Hostname"]
        return None, f"not tried: {placed.format(node=node)}, not on the node verify talks to"
    container = local[0]["Status"]["ContainerStatus"]["ContainerID"]
    try:
        execution = client.api.exec_create(container, ["bash", "-c", script])
        return client.api.exec_start(execution["Id"]).decode(errors="replace"), ""
    except APIError as error:
        return None, f"not tried: cannot run a script in the {task} ({error.explanation or error})"
