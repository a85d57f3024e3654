"""Preflight: is the swarm ready for this stack? Run by the program before it declares a resource.

`read_swarm` asks the stack's Docker host in three API calls (well under a second on a reachable
host) with a connection that can't hang (swarmlib.client); `evaluate` judges the facts against the
settings without touching an engine, so every rule is unit-tested and each finding says how to fix
it. During a preview an unreachable host is only a warning (a PR job may not reach prod); during an
update it is an error, like every other finding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from stackconfig.names import ENV_LABEL_KEY
from stackconfig.settings import StackSettings
from swarmlib.claims import find_node_ids, refusal, stack_owner
from swarmlib.client import DockerHostError, docker_client
from swarmlib.facts import NodeFacts, SwarmFacts, gather_facts

# Longer than ssh's own limits (swarmlib.client): reached only when something still hangs.
PREFLIGHT_DEADLINE_SECONDS = 60


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


def read_swarm(settings: StackSettings, deadline: int = PREFLIGHT_DEADLINE_SECONDS) -> SwarmFacts:
    """Facts from the stack's Docker host, or DockerHostError saying why there are none."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    started = time.monotonic()
    try:
        client = docker_client(settings.docker_host, settings.docker_ssh_opts, timeout=deadline, deadline=deadline)
        try:
            return gather_facts(client, settings.docker_host)
        finally:
            client.close()
    except (DockerException, RequestException, OSError) as error:
        # An ssh cut at the deadline fails as a broken pipe or a dropped connection: say why it was cut.
        late = time.monotonic() - started >= deadline
        raise DockerHostError(f"did not answer within {deadline} s: {error}" if late else str(error)) from error


@dataclass(frozen=True)
class Context:
    """Who asks: the stack's project (its config namespace) and name."""

    project: str
    stack: str

    def key(self, name: str) -> str:
        return f"{self.project}:{name}"


def _label_command(value: str, node: str = "<node>") -> str:
    return f"docker node update --label-add {ENV_LABEL_KEY}={value} {node}"


def unreachable_finding(docker_host: str, reason: str, context: Context) -> Finding:
    return Finding(
        "docker-host",
        f"cannot reach the Docker host {docker_host}: {reason}",
        f"check {context.key('dockerHost')}, that dockerd runs there, and for ssh:// that "
        f"`ssh <host> docker info` works with this machine's ssh config",
    )


def _swarm_findings(facts: SwarmFacts, context: Context) -> list[Finding]:
    host = facts.docker_host
    if facts.swarm_state != "active":
        return [
            Finding(
                "swarm-mode",
                f"the Docker host {host} is not in swarm mode (swarm state {facts.swarm_state!r})",
                f"run `docker swarm init` there (or `docker swarm join` it to the swarm), "
                f"or point {context.key('dockerHost')} at a swarm manager",
            )
        ]
    if not facts.is_manager:
        return [
            Finding(
                "swarm-manager",
                f"the Docker host {host} is a swarm worker; services can only be managed through a manager",
                f"point {context.key('dockerHost')} at a manager (`docker node ls` on a manager lists them), "
                f"or promote this node with `docker node promote`",
            )
        ]
    return []


def label_plan(facts: SwarmFacts, settings: StackSettings, context: Context) -> tuple[set[str], list[Finding]]:
    """IDs of the nodes the label resource will label, and findings for names it would refuse (the
    same rule as the resource's provider: swarmlib.claims.refusal)."""
    names_key = context.key("nodes.names")
    planned: set[str] = set()
    findings: list[Finding] = []
    owners = {stack_owner(context.project, context.stack)}
    for name in settings.node_labels.nodes:
        ids = find_node_ids(name, [(n.id, n.hostname) for n in facts.nodes])
        if len(ids) != 1:
            what = "no node of this swarm" if not ids else f"{len(ids)} nodes"
            findings.append(
                Finding(
                    "node-names",
                    f"{names_key} lists {name!r}, which matches {what}",
                    f"use a hostname or node ID from `docker node ls` in {names_key}",
                )
            )
            continue
        node = facts.nodes_by_id()[ids[0]]
        problem = None if settings.node_labels.take_over else refusal(node.labels, settings.env_label, owners)
        if problem:
            findings.append(
                Finding(
                    "node-names",
                    f"node {node.hostname} ({node.id}) {problem}",
                    f"set {context.key('nodes.takeOver')}: true to move it to this stack, "
                    f"or remove it from {names_key}",
                )
            )
            continue
        planned.add(node.id)
    return planned, findings


def _will_match(node: NodeFacts, env: str, planned: set[str]) -> bool:
    return node.labels.get(ENV_LABEL_KEY) == env or node.id in planned


def nodes_for_stack(facts: SwarmFacts, settings: StackSettings, context: Context) -> list[NodeFacts]:
    """Nodes that will take the stack's new tasks once its own labels are applied."""
    planned, _refused = label_plan(facts, settings, context)
    return [n for n in facts.nodes if n.accepts_new_tasks and _will_match(n, settings.env_label, planned)]


def _placement_findings(
    facts: SwarmFacts, settings: StackSettings, planned: set[str], context: Context
) -> list[Finding]:
    env = settings.env_label
    if any(node.accepts_new_tasks and _will_match(node, env, planned) for node in facts.nodes):
        return []
    unschedulable = [n for n in facts.nodes if _will_match(n, env, planned)]
    candidates = ", ".join(n.hostname for n in facts.nodes if n.accepts_new_tasks) or "none"
    problem = f"no ready, active node will match {settings.placement_constraint}, so every service would stay pending"
    fix = f"label a node: `{_label_command(env)}`, or list nodes in {context.key('nodes.names')} for the stack to label"
    if unschedulable:
        problem += "; matching but unschedulable: " + ", ".join(
            f"{n.hostname} ({n.state}, {n.availability})" for n in unschedulable
        )
        fix += "; `docker node update --availability active <node>` brings a drained or paused node back"
    return [Finding("placement", f"{problem} (ready, active nodes: {candidates})", fix)]


def _port_findings(facts: SwarmFacts, settings: StackSettings, context: Context) -> list[Finding]:
    port = settings.wordpress.port
    return [
        Finding(
            "port",
            f"port {port} is already published ({p.mode} mode) by service {service.name}, "
            + (f"of stack {service.stack!r}" if service.stack else "which no stack of this project owns"),
            f"choose another {context.key('wordpress.port')}, "
            f"or remove that service (`docker service rm {service.name}`)",
        )
        for service in facts.services
        if service.stack != context.stack
        for p in service.ports
        if p.published == port and p.protocol == "tcp"
    ]


def _data_node_findings(
    facts: SwarmFacts, settings: StackSettings, planned: set[str], context: Context
) -> list[Finding]:
    data_node = settings.mysql.data_node
    if data_node is None:
        return []
    data_node_key = context.key("mysql.dataNode")
    # MySQL is pinned with node.hostname==<dataNode>, so only the hostname counts here.
    matches = [n for n in facts.nodes if n.hostname == data_node]
    if not matches:
        return [
            Finding(
                "data-node",
                f"{data_node_key} is {data_node!r}, which is no node of this swarm",
                f"set {data_node_key} to a hostname from `docker node ls` (the node that holds MySQL's volume)",
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
                    f"{data_node_key} {data_node} has "
                    + (f"{ENV_LABEL_KEY}={current}" if current else f"no {ENV_LABEL_KEY} label")
                    + f", so MySQL's constraint {settings.placement_constraint} excludes it",
                    f"`{_label_command(env, data_node)}`, or add {data_node} to {context.key('nodes.names')}",
                )
            )
        elif not node.accepts_new_tasks:
            findings.append(
                Finding(
                    "data-node",
                    f"{data_node_key} {data_node} is {node.state} and {node.availability}; MySQL cannot start there",
                    f"bring the node back (`docker node update --availability active {data_node}`), "
                    f"or move the data and set {data_node_key}",
                )
            )
    return findings


def evaluate(facts: SwarmFacts, settings: StackSettings, context: Context) -> list[Finding]:
    """Every reason the swarm is not ready for the stack with these settings; empty when it is."""
    findings = _swarm_findings(facts, context)
    if findings:
        return findings  # nothing else can be read from an engine that is no usable manager
    planned, findings = label_plan(facts, settings, context)
    return [
        *findings,
        *_placement_findings(facts, settings, planned, context),
        *_port_findings(facts, settings, context),
        *_data_node_findings(facts, settings, planned, context),
    ]


def preflight(settings: StackSettings) -> None:
    """The program's check of its swarm: raises PreflightError with every finding; only warns when a
    preview can't reach the Docker host."""
    import pulumi

    context = Context(pulumi.get_project(), pulumi.get_stack())
    try:
        facts = read_swarm(settings)
    except DockerHostError as error:
        if pulumi.runtime.is_dry_run():
            pulumi.log.warn(
                f"preflight skipped: cannot reach the Docker host {settings.docker_host} ({error}); "
                f"`pulumi up` will fail unless it can"
            )
            return
        raise PreflightError([unreachable_finding(settings.docker_host, str(error), context)]) from error
    findings = evaluate(facts, settings, context)
    if findings:
        raise PreflightError(findings)
    matching = ", ".join(n.hostname for n in nodes_for_stack(facts, settings, context))
    pulumi.log.info(f"preflight passed on {facts.docker_host}: {settings.placement_constraint} matches {matching}")
