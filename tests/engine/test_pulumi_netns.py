"""A stack on a 3-node swarm (netns nodes) under the real Pulumi CLI: the nodes it lists are
labelled by the stack itself, the logging daemon runs on exactly those, and a new envLabel with a
new node list moves every label and service in one `up` with no failed step.

The move goes to a node that held none of the stack's tasks. With host-mode publishing, a node
that stays in the environment through the move can fail WordPress's update (seen here, about one
run in five): the relabel rejects the old task, whose container still holds the host port while it
stops, and Swarm places the updated task on that node at once ("port is already allocated"); the
update rolls back to the old constraint, which no node matches any more. docs/operations.md, "Node labels",
gives the recovery. Ingress publishing (prod) binds no port per container.

The private overlay is not encrypted here (mysql.encryptNetwork: false): these hosts have no IPsec,
and MySQL and WordPress may land on different nodes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from stackconfig.names import STACK_LABEL

from . import harness, netns
from .pulumi_cli import Project, PulumiError, Stack, stack_service

STACK = f"nx{harness.SESSION_ID}"
FIRST, SECOND = f"nx-a-{harness.SESSION_ID}", f"nx-b-{harness.SESSION_ID}"


def config(swarm: netns.NetnsSwarm, images: dict[str, str], label: str, nodes: list[str]) -> dict[str, Any]:
    return {
        "envLabel": label,
        "dockerHost": swarm.manager.base_url,
        "wordpress": {"image": images["wordpress"], "port": 30280, "publishMode": "host", "memoryMb": 256},
        "mysql": {"image": images["mysql"], "memoryMb": 512, "encryptNetwork": False},
        "logging": {"image": images["logging"], "memoryMb": 32},
        "nodes": {"names": nodes},
    }


@pytest.fixture(scope="module")
def netns_stack(
    pulumi_project: Project, netns_swarm: netns.NetnsSwarm, netns_lab_images: dict[str, str]
) -> Iterator[Stack]:
    n1, n2, _ = netns_swarm.nodes
    stack = pulumi_project.stack(STACK, config(netns_swarm, netns_lab_images, FIRST, [n1.hostname, n2.hostname]))
    yield stack
    stack.tear_down()  # a label left behind would break the next netns test


def running_nodes(client: docker.DockerClient, role: str) -> Counter[str]:
    """node id -> running tasks of this stack's service of `role`."""
    return Counter(
        str(task["NodeID"])
        for task in stack_service(client, STACK, role).tasks(filters={"desired-state": "running"})
        if task["Status"]["State"] == "running"
    )


def task_report(swarm: netns.NetnsSwarm) -> str:
    """Every task of this stack's services: where, in what state, why."""
    hostnames = {node.node_id: node.hostname for node in swarm.nodes}
    lines = []
    for service in swarm.client.services.list(filters={"label": f"{STACK_LABEL}={STACK}"}):
        for task in sorted(service.tasks(), key=lambda t: t["CreatedAt"]):
            status = task["Status"]
            lines.append(
                f"{service.name} v{task['Version']['Index']} on {hostnames.get(task.get('NodeID', ''), '-')}: "
                f"{status['State']} (desired {task['DesiredState']}) {status.get('Err', '')} {status.get('Message')}"
            )
    return "\n".join(lines)


def env_labels(swarm: netns.NetnsSwarm) -> dict[str, str | None]:
    return {
        node.hostname: (swarm.client.nodes.get(node.node_id).attrs["Spec"].get("Labels") or {}).get("env")
        for node in swarm.nodes
    }


def test_a_new_env_label_moves_every_label_and_service(
    netns_swarm: netns.NetnsSwarm, netns_lab_images: dict[str, str], netns_stack: Stack
) -> None:
    n1, n2, n3 = netns_swarm.nodes
    client = netns_swarm.client
    first, second = FIRST, SECOND
    netns_stack.up()
    assert env_labels(netns_swarm) == {n1.hostname: first, n2.hostname: first, n3.hostname: None}
    assert running_nodes(client, "logging") == Counter({n1.node_id: 1, n2.node_id: 1})
    for role in ("mysql", "wordpress"):
        assert set(running_nodes(client, role)) <= {n1.node_id, n2.node_id}, role

    netns_stack.write_config(config(netns_swarm, netns_lab_images, second, [n3.hostname]))
    try:
        netns_stack.up()  # raises on any failed step
    except PulumiError as error:
        raise PulumiError(f"{error}\n\ntasks:\n{task_report(netns_swarm)}") from None
    assert env_labels(netns_swarm) == {n1.hostname: None, n2.hostname: None, n3.hostname: second}

    def moved() -> bool:
        return all(
            running_nodes(client, role) == Counter({n3.node_id: 1}) for role in ("logging", "mysql", "wordpress")
        )

    harness.wait_for(moved, timeout=90, interval=1, what=f"every task on {n3.hostname}")
    for service in client.services.list(filters={"label": f"{STACK_LABEL}={STACK}"}):
        constraints = service.attrs["Spec"]["TaskTemplate"]["Placement"]["Constraints"]
        assert f"node.labels.env=={second}" in constraints, service.name
    netns_stack.preview("--expect-no-changes")
