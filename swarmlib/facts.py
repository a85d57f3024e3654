"""What a swarm manager says about its nodes, services, tasks and secrets, read once into plain
dataclasses. Preflight and the verifier judge these facts without touching an engine, so their
rules are tested on hand-made facts.

Only secret *names* and mount targets are read; the Docker API never returns secret data. Of a
service's environment only the `*_FILE` variables are kept: they name the secret files the images
read their passwords from, and every other variable could hold anything.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stackconfig.names import SECRETS_DIR, STACK_LABEL

if TYPE_CHECKING:
    from docker import DockerClient

# Task states after its container has run (or was refused); a task never leaves them.
ENDED = ("complete", "failed", "shutdown", "rejected")


@dataclass(frozen=True)
class NodeFacts:
    id: str
    hostname: str
    role: str = "worker"  # manager | worker
    availability: str = "active"  # active | pause | drain
    state: str = "ready"  # ready | down | unknown | disconnected
    labels: Mapping[str, str] = field(default_factory=lambda: {})
    engine_labels: Mapping[str, str] = field(default_factory=lambda: {})
    os: str = "linux"
    arch: str = "x86_64"

    @property
    def accepts_new_tasks(self) -> bool:
        """The scheduler may place a new task here: a paused or drained node takes none."""
        return self.state == "ready" and self.availability == "active"

    @property
    def keeps_tasks(self) -> bool:
        """Tasks placed here go on running: a paused node keeps its tasks, a drained one stops them."""
        return self.state == "ready" and self.availability != "drain"


@dataclass(frozen=True)
class TaskFacts:
    id: str
    node_id: str
    desired_state: str
    state: str
    error: str = ""
    message: str = ""
    timestamp: str = ""
    slot: int | None = None
    secret_names: tuple[str, ...] = ()
    # Container health where the container is on the node we are connected to; None elsewhere.
    container_health: str | None = None
    exit_code: int | None = None  # of the task's container, once it has exited


def secret_path(target: str) -> str:
    """A secret's File.Name as a path in the container: Docker mounts a relative one under SECRETS_DIR."""
    return posixpath.normpath(posixpath.join(SECRETS_DIR, target))


@dataclass(frozen=True)
class SecretRef:
    name: str
    target: str  # File.Name: absolute, or relative to SECRETS_DIR
    id: str = ""

    @property
    def path(self) -> str:
        """Where the secret's file is inside the container."""
        return secret_path(self.target)


@dataclass(frozen=True)
class PortFacts:
    target: int
    published: int | None
    protocol: str = "tcp"
    mode: str = "ingress"  # ingress | host


@dataclass(frozen=True)
class ServiceFacts:
    id: str
    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: {})
    mode: str = "replicated"  # replicated | global | other job modes
    replicas: int | None = 1
    constraints: tuple[str, ...] = ()
    has_healthcheck: bool = False
    endpoint_mode: str = "vip"
    ports: tuple[PortFacts, ...] = ()
    secrets: tuple[SecretRef, ...] = ()
    file_env: Mapping[str, str] = field(default_factory=lambda: {})  # the spec's *_FILE variables only
    tasks: tuple[TaskFacts, ...] = ()  # read only for the services asked for
    update_state: str | None = None
    update_message: str = ""

    @property
    def stack(self) -> str | None:
        """The stack whose service this is (its wordpress-swarm.stack label), if any."""
        return self.labels.get(STACK_LABEL)


@dataclass(frozen=True)
class SwarmFacts:
    docker_host: str
    swarm_state: str = "active"  # LocalNodeState: inactive, pending, active, error, locked
    is_manager: bool = True
    nodes: tuple[NodeFacts, ...] = ()
    services: tuple[ServiceFacts, ...] = ()
    secret_names: frozenset[str] = frozenset()

    def service(self, name: str) -> ServiceFacts | None:
        return next((s for s in self.services if s.name == name), None)

    def nodes_by_id(self) -> dict[str, NodeFacts]:
        return {node.id: node for node in self.nodes}


# --------------------------------------------------------------------------- from API objects


def _str_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}  # pyright: ignore[reportUnknownVariableType]


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []  # pyright: ignore[reportUnknownVariableType]


def node_facts(raw: Mapping[str, Any]) -> NodeFacts:
    spec, desc = _dict(raw.get("Spec")), _dict(raw.get("Description"))
    platform = _dict(desc.get("Platform"))
    return NodeFacts(
        id=str(raw.get("ID", "")),
        hostname=str(desc.get("Hostname", "")),
        role=str(spec.get("Role", "")),
        availability=str(spec.get("Availability", "")),
        state=str(_dict(raw.get("Status")).get("State", "")),
        labels=_str_map(spec.get("Labels")),
        engine_labels=_str_map(_dict(desc.get("Engine")).get("Labels")),
        os=str(platform.get("OS", "")),
        arch=str(platform.get("Architecture", "")),
    )


def task_facts(raw: Mapping[str, Any], container_health: str | None = None) -> TaskFacts:
    status = _dict(raw.get("Status"))
    exit_code = _dict(status.get("ContainerStatus")).get("ExitCode")
    container_spec = _dict(_dict(raw.get("Spec")).get("ContainerSpec"))
    slot = raw.get("Slot")
    return TaskFacts(
        id=str(raw.get("ID", "")),
        node_id=str(raw.get("NodeID", "")),
        desired_state=str(raw.get("DesiredState", "")),
        state=str(status.get("State", "")),
        error=str(status.get("Err", "")),
        message=str(status.get("Message", "")),
        timestamp=str(status.get("Timestamp", "")),
        slot=slot if isinstance(slot, int) else None,
        secret_names=tuple(str(_dict(s).get("SecretName", "")) for s in _list(container_spec.get("Secrets"))),
        container_health=container_health,
        # The API reports 0 for a container that is still running: only an ended task has one.
        exit_code=exit_code if isinstance(exit_code, int) and status.get("State") in ENDED else None,
    )


def _file_env(env: object) -> dict[str, str]:
    """The `NAME_FILE=path` entries of a container spec's Env; nothing else is kept."""
    pairs = (str(entry).partition("=") for entry in _list(env))
    return {name: value for name, found, value in pairs if found and name.endswith("_FILE")}


def service_facts(raw: Mapping[str, Any], tasks: Iterable[TaskFacts] = ()) -> ServiceFacts:
    spec = _dict(raw.get("Spec"))
    template = _dict(spec.get("TaskTemplate"))
    container = _dict(template.get("ContainerSpec"))
    mode_spec = _dict(spec.get("Mode"))
    mode = next(iter(mode_spec), "unknown")
    replicas = _dict(mode_spec.get("Replicated")).get("Replicas")
    health_test = _list(_dict(container.get("Healthcheck")).get("Test"))
    endpoint_spec = _dict(spec.get("EndpointSpec"))
    # What the swarm actually published (Endpoint); the spec's ports until it has.
    raw_ports = _list(_dict(raw.get("Endpoint")).get("Ports")) or _list(endpoint_spec.get("Ports"))
    update = _dict(raw.get("UpdateStatus"))
    return ServiceFacts(
        id=str(raw.get("ID", "")),
        name=str(spec.get("Name", "")),
        labels=_str_map(spec.get("Labels")),
        mode=mode.lower(),
        replicas=replicas if isinstance(replicas, int) else None,
        constraints=tuple(str(c) for c in _list(_dict(template.get("Placement")).get("Constraints"))),
        has_healthcheck=bool(health_test) and health_test[0] != "NONE",
        endpoint_mode=str(endpoint_spec.get("Mode") or "vip"),
        ports=tuple(
            PortFacts(
                target=int(_dict(p).get("TargetPort", 0)),
                published=_dict(p).get("PublishedPort"),
                protocol=str(_dict(p).get("Protocol", "tcp")),
                mode=str(_dict(p).get("PublishMode", "ingress")),
            )
            for p in raw_ports
        ),
        secrets=tuple(
            SecretRef(
                name=str(_dict(s).get("SecretName", "")),
                target=str(_dict(_dict(s).get("File")).get("Name", "")),
                id=str(_dict(s).get("SecretID", "")),
            )
            for s in _list(container.get("Secrets"))
        ),
        file_env=_file_env(container.get("Env")),
        tasks=tuple(tasks),
        update_state=str(update["State"]) if update.get("State") else None,
        update_message=str(update.get("Message", "")),
    )


def gather_facts(client: DockerClient, docker_host: str, *, detailed: Sequence[str] = ()) -> SwarmFacts:
    """What the manager behind `client` says: its nodes and every service's spec; for the services
    named in `detailed` also their tasks (with the health of the containers on this node) and the
    swarm's secret names. A worker or an engine outside a swarm answers with its state only."""
    from docker.errors import NotFound

    swarm = _dict(client.info().get("Swarm"))
    state = str(swarm.get("LocalNodeState") or "inactive")
    is_manager = bool(swarm.get("ControlAvailable"))
    if state != "active" or not is_manager:
        return SwarmFacts(docker_host=docker_host, swarm_state=state, is_manager=is_manager)
    local_node = str(swarm.get("NodeID", ""))

    def local_health(raw_task: Mapping[str, Any]) -> str | None:
        # Containers live on their node's engine: only this node's can be inspected from here.
        status = _dict(raw_task.get("Status"))
        container_id = _dict(status.get("ContainerStatus")).get("ContainerID")
        if status.get("State") != "running" or raw_task.get("NodeID") != local_node or not container_id:
            return None
        try:
            health = _dict(_dict(client.api.inspect_container(container_id).get("State")).get("Health"))
        except NotFound:
            return None
        return str(health["Status"]) if health.get("Status") else None

    services: list[ServiceFacts] = []
    for raw in client.api.services():
        tasks: list[TaskFacts] = []
        if _dict(raw.get("Spec")).get("Name") in detailed:
            raw_tasks: list[dict[str, Any]] = client.api.tasks(filters={"service": raw["ID"]})
            tasks = [task_facts(t, local_health(t)) for t in raw_tasks]
        services.append(service_facts(raw, tasks))
    secrets = frozenset(str(_dict(s.get("Spec")).get("Name", "")) for s in client.api.secrets()) if detailed else None
    return SwarmFacts(
        docker_host=docker_host,
        swarm_state=state,
        is_manager=True,
        nodes=tuple(node_facts(n) for n in client.api.nodes()),
        services=tuple(services),
        secret_names=secrets or frozenset(),
    )
