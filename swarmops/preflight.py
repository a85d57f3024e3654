"""Preflight: is the swarm ready for this stack? Run by the program before it declares a resource.

Facts are gathered from the stack's Docker host through the docker SDK into plain dataclasses;
`evaluate` judges them against the settings without touching an engine, so every rule is unit-tested
and each finding says how to fix it. During a preview an unreachable host is only a warning (a PR
job may not reach prod); during an update it is an error, like every other finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi

from components.names import ENV_LABEL_KEY, STACK_LABEL
from components.node_labels import (
    NAMES_KEY,
    OWNER_LABEL_KEY,
    TAKE_OVER_KEY,
    find_node_ids,
    is_ours,
    owner_of,
    stack_owner,
)
from components.settings import PROJECT, StackSettings
from swarmops.docker_host import docker_client, within

if TYPE_CHECKING:
    from docker import DockerClient

DOCKER_HOST_KEY = f"{PROJECT}:dockerHost"
PORT_KEY = f"{PROJECT}:wordpress.port"
DATA_NODE_KEY = f"{PROJECT}:mysql.dataNode"


@dataclass(frozen=True)
class NodeFacts:
    node_id: str
    hostname: str
    state: str  # "ready", "down", ...
    availability: str  # "active", "pause", "drain"
    labels: Mapping[str, str] = field(default_factory=lambda: {})

    @property
    def schedulable(self) -> bool:
        return self.state == "ready" and self.availability == "active"


@dataclass(frozen=True)
class PublishedPort:
    service: str
    port: int
    protocol: str
    mode: str  # "ingress" or "host"
    stack: str | None  # the service's wordpress-swarm.stack label


@dataclass(frozen=True)
class SwarmFacts:
    """What the Docker host says; `unreachable` holds why it said nothing."""

    docker_host: str
    unreachable: str | None = None
    swarm_state: str = "inactive"  # LocalNodeState: inactive, pending, active, error, locked
    is_manager: bool = False
    nodes: tuple[NodeFacts, ...] = ()
    ports: tuple[PublishedPort, ...] = ()


@dataclass(frozen=True)
class Finding:
    check: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.problem}\n      fix: {self.fix}"


class PreflightError(Exception):
    """The swarm is not ready for this stack; raised before any resource is declared."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        super().__init__("preflight found the swarm not ready for this stack:\n  " + "\n  ".join(map(str, findings)))


# --------------------------------------------------------------------------- #
# facts
# --------------------------------------------------------------------------- #


def gather_facts(client: DockerClient, docker_host: str) -> SwarmFacts:
    """Reads what the checks need; a worker or a non-swarm engine answers with what it can."""
    swarm: dict[str, Any] = client.info().get("Swarm") or {}
    state = str(swarm.get("LocalNodeState") or "inactive")
    is_manager = bool(swarm.get("ControlAvailable"))
    if state != "active" or not is_manager:
        return SwarmFacts(docker_host=docker_host, swarm_state=state, is_manager=is_manager)
    nodes = tuple(
        NodeFacts(
            node_id=str(raw["ID"]),
            hostname=str(raw["Description"]["Hostname"]),
            state=str(raw["Status"]["State"]),
            availability=str(raw["Spec"].get("Availability", "active")),
            labels=dict(raw["Spec"].get("Labels") or {}),
        )
        for raw in client.api.nodes()
    )
    ports: list[PublishedPort] = []
    for raw in client.api.services():
        spec: dict[str, Any] = raw["Spec"]
        for port in (spec.get("EndpointSpec") or {}).get("Ports") or []:
            if port.get("PublishedPort"):
                ports.append(
                    PublishedPort(
                        service=str(spec["Name"]),
                        port=int(port["PublishedPort"]),
                        protocol=str(port.get("Protocol", "tcp")),
                        mode=str(port.get("PublishMode", "ingress")),
                        stack=(spec.get("Labels") or {}).get(STACK_LABEL),
                    )
                )
    return SwarmFacts(docker_host=docker_host, swarm_state=state, is_manager=True, nodes=nodes, ports=tuple(ports))


# Longer than ssh's own limits (SSH_SAFETY_OPTIONS): reached only when something still hangs.
PREFLIGHT_DEADLINE_SECONDS = 60.0


def facts_from_docker_host(settings: StackSettings, deadline: float = PREFLIGHT_DEADLINE_SECONDS) -> SwarmFacts:
    """Facts from the stack's Docker host; any failure to connect or read, or no answer within
    `deadline` seconds, becomes `unreachable` (a preview then warns instead of hanging)."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    def read() -> SwarmFacts:
        client = docker_client(settings.docker_host, settings.docker_ssh_opts)
        try:
            return gather_facts(client, settings.docker_host)
        finally:
            client.close()

    try:
        return within(deadline, read, f"the Docker host {settings.docker_host}")
    except (DockerException, RequestException, OSError, TimeoutError) as error:
        return SwarmFacts(docker_host=settings.docker_host, unreachable=str(error))


# --------------------------------------------------------------------------- #
# judgement
# --------------------------------------------------------------------------- #


def _label_command(value: str, node: str = "<node>") -> str:
    return f"docker node update --label-add {ENV_LABEL_KEY}={value} {node}"


def _node_of(name: str, nodes: tuple[NodeFacts, ...]) -> list[NodeFacts]:
    ids = find_node_ids(name, [(n.node_id, n.hostname) for n in nodes])
    return [n for n in nodes if n.node_id in ids]


def _swarm_findings(facts: SwarmFacts) -> list[Finding]:
    host = facts.docker_host
    if facts.unreachable is not None:
        return [
            Finding(
                "docker-host",
                f"cannot reach the Docker host {host}: {facts.unreachable}",
                f"check {DOCKER_HOST_KEY}, that dockerd runs there, and for ssh:// that "
                f"`ssh <host> docker info` works with this machine's ssh config",
            )
        ]
    if facts.swarm_state != "active":
        return [
            Finding(
                "swarm-mode",
                f"the Docker host {host} is not in swarm mode (swarm state {facts.swarm_state!r})",
                f"run `docker swarm init` there (or `docker swarm join` it to the swarm), "
                f"or point {DOCKER_HOST_KEY} at a swarm manager",
            )
        ]
    if not facts.is_manager:
        return [
            Finding(
                "swarm-manager",
                f"the Docker host {host} is a swarm worker; services can only be managed through a manager",
                f"point {DOCKER_HOST_KEY} at a manager (`docker node ls` on a manager lists them), "
                f"or promote this node with `docker node promote`",
            )
        ]
    return []


def label_plan(facts: SwarmFacts, settings: StackSettings, owner: str | None = None) -> tuple[set[str], list[Finding]]:
    """IDs of the nodes the label resource will label, and findings for names it would refuse.

    `owner` is the stack's `<project>/<stack>`: a listed node whose ownership marker names it is
    the stack's own whatever its env value (the stack's previous envLabel), and will be relabelled,
    as the label resource does. Without the marker (another stack's, or a node labelled before
    markers existed) another env value is refused unless nodes.takeOver.
    """
    env = settings.env_label
    owners = [owner] if owner else []
    planned: set[str] = set()
    findings: list[Finding] = []
    for name in settings.node_labels.nodes:
        matches = _node_of(name, facts.nodes)
        if len(matches) != 1:
            what = "no node of this swarm" if not matches else f"{len(matches)} nodes"
            findings.append(
                Finding(
                    "node-names",
                    f"{NAMES_KEY} lists {name!r}, which matches {what}",
                    f"use a hostname or node ID from `docker node ls` in {NAMES_KEY}",
                )
            )
            continue
        node = matches[0]
        current, marker = node.labels.get(ENV_LABEL_KEY), node.labels.get(OWNER_LABEL_KEY)
        if not settings.node_labels.take_over and not is_ours(current, marker, env, owners=owners):
            held = f"stack {owner_of(marker)}'s label" if marker else "another environment's label"
            findings.append(
                Finding(
                    "node-names",
                    f"node {node.hostname} ({node.node_id}) has {ENV_LABEL_KEY}={current}, {held}; "
                    f"this stack would label it {ENV_LABEL_KEY}={env}",
                    f"set {TAKE_OVER_KEY}: true to move it to this stack, or remove it from {NAMES_KEY}",
                )
            )
            continue
        planned.add(node.node_id)
    return planned, findings


def _will_match(node: NodeFacts, env: str, planned: set[str]) -> bool:
    return node.labels.get(ENV_LABEL_KEY) == env or node.node_id in planned


def nodes_for_stack(facts: SwarmFacts, settings: StackSettings, owner: str | None = None) -> list[NodeFacts]:
    """Ready, active nodes the stack's services may run on once its own labels are applied."""
    planned, _refused = label_plan(facts, settings, owner)
    return [n for n in facts.nodes if n.schedulable and _will_match(n, settings.env_label, planned)]


def _placement_findings(facts: SwarmFacts, settings: StackSettings, planned: set[str]) -> list[Finding]:
    env = settings.env_label
    if any(node.schedulable and _will_match(node, env, planned) for node in facts.nodes):
        return []
    unschedulable = [n for n in facts.nodes if _will_match(n, env, planned)]
    candidates = ", ".join(n.hostname for n in facts.nodes if n.schedulable) or "none"
    problem = f"no ready, active node will match {settings.placement_constraint}, so every service would stay pending"
    fix = f"label a node: `{_label_command(env)}`, or list nodes in {NAMES_KEY} for the stack to label"
    if unschedulable:
        problem += "; matching but unschedulable: " + ", ".join(
            f"{n.hostname} ({n.state}, {n.availability})" for n in unschedulable
        )
        fix += "; `docker node update --availability active <node>` brings a drained or paused node back"
    return [Finding("placement", f"{problem} (ready, active nodes: {candidates})", fix)]


def _port_findings(facts: SwarmFacts, settings: StackSettings, stack: str) -> list[Finding]:
    port = settings.wordpress.port
    taken = [p for p in facts.ports if p.port == port and p.protocol == "tcp" and p.stack != stack]
    return [
        Finding(
            "port",
            f"port {port} is already published ({p.mode} mode) by service {p.service}, "
            + (f"of stack {p.stack!r}" if p.stack else "which no stack of this project owns"),
            f"choose another {PORT_KEY}, or remove that service (`docker service rm {p.service}`)",
        )
        for p in taken
    ]


def _data_node_findings(facts: SwarmFacts, settings: StackSettings, planned: set[str]) -> list[Finding]:
    data_node = settings.mysql.data_node
    if data_node is None:
        return []
    # MySQL is pinned with node.hostname==<dataNode>, so only the hostname counts here.
    matches = [n for n in facts.nodes if n.hostname == data_node]
    if not matches:
        return [
            Finding(
                "data-node",
                f"{DATA_NODE_KEY} is {data_node!r}, which is no node of this swarm",
                f"set {DATA_NODE_KEY} to a hostname from `docker node ls` (the node that holds MySQL's volume)",
            )
        ]
    env = settings.env_label
    findings: list[Finding] = []
    for node in matches:
        if not _will_match(node, env, planned):
            current = node.labels.get(ENV_LABEL_KEY)
            findings.append(
                Finding(
                    "data-node",
                    f"{DATA_NODE_KEY} {data_node} has "
                    + (f"{ENV_LABEL_KEY}={current}" if current else f"no {ENV_LABEL_KEY} label")
                    + f", so MySQL's constraint {settings.placement_constraint} excludes it",
                    f"`{_label_command(env, data_node)}`, or add {data_node} to {NAMES_KEY}",
                )
            )
        elif not node.schedulable:
            findings.append(
                Finding(
                    "data-node",
                    f"{DATA_NODE_KEY} {data_node} is {node.state} and {node.availability}; MySQL cannot start there",
                    f"bring the node back (`docker node update --availability active {data_node}`), "
                    f"or move the data and set {DATA_NODE_KEY}",
                )
            )
    return findings


def evaluate(facts: SwarmFacts, settings: StackSettings, stack: str, *, project: str = PROJECT) -> list[Finding]:
    """Every reason the swarm is not ready for `stack` (of `project`) with these settings; empty when it is."""
    findings = _swarm_findings(facts)
    if findings:
        return findings  # nothing else can be read from an engine that is no usable manager
    planned, findings = label_plan(facts, settings, stack_owner(stack, project))
    return [
        *findings,
        *_placement_findings(facts, settings, planned),
        *_port_findings(facts, settings, stack),
        *_data_node_findings(facts, settings, planned),
    ]


# --------------------------------------------------------------------------- #
# the program's entry point
# --------------------------------------------------------------------------- #

FactSource = Callable[[StackSettings], SwarmFacts]
_fact_source: FactSource = facts_from_docker_host


@contextmanager
def facts_from(source: FactSource) -> Iterator[None]:
    """Makes `preflight` read facts from `source`: the mock-engine tests hand it a fake swarm."""
    global _fact_source
    previous, _fact_source = _fact_source, source
    try:
        yield
    finally:
        _fact_source = previous


def preflight(settings: StackSettings, stack: str | None = None, dry_run: bool | None = None) -> None:
    """Raises PreflightError with every finding; warns instead when a preview cannot reach the host."""
    # The program's own stack is named by the runtime, as NodeEnvLabel's owner is; a stack named
    # by the caller (a test, outside a Pulumi run) is one of this project.
    project = PROJECT if stack else pulumi.get_project()
    stack = stack or pulumi.get_stack()
    dry_run = pulumi.runtime.is_dry_run() if dry_run is None else dry_run
    facts = _fact_source(settings)
    if facts.unreachable is not None and dry_run:
        pulumi.log.warn(
            f"preflight skipped: cannot reach the Docker host {facts.docker_host} ({facts.unreachable}); "
            f"`pulumi up` will fail unless it can"
        )
        return
    findings = evaluate(facts, settings, stack, project=project)
    if findings:
        raise PreflightError(findings)
    matching = ", ".join(n.hostname for n in nodes_for_stack(facts, settings, stack_owner(stack, project)))
    pulumi.log.info(f"preflight passed on {facts.docker_host}: {settings.placement_constraint} matches {matching}")
