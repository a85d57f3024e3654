"""Post-deploy verification: does the live swarm match what the stack's outputs say was deployed?

    python -m swarmops.verify --stack dev               # expected shape from `pulumi stack output`
    python -m swarmops.verify --outputs outputs.json    # ... or from a saved copy ('-' = stdin)
    python -m swarmops.verify --stack prod --docker-host ssh://deploy@swarm-manager --json

One row per check; exit 0 when every row passes, 1 when any fails, 2 when verification could not
run at all (unreadable outputs, no Docker manager). Three layers, so the judgement is testable
without an engine: `gather_facts` / `probe_http` talk to Docker and HTTP and return plain
dataclasses, `evaluate` turns those into rows, `render_table` / `render_json` print them.

Only secret *names* and mount targets are read; the Docker API never returns secret data. Of a
service's environment only the `*_FILE` variables are kept: they name the secret files the images
read their passwords from, and every other variable could hold anything.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import posixpath
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TextIO

from components.names import ENV_LABEL_KEY, ROLE_LABEL, SECRETS_DIR, STACK_LABEL
from swarmops.docker_host import within

ROLES = ("logging", "mysql", "wordpress")
#: WordPress logs in with the password MySQL created its user with: one secret behind both files.
MYSQL_PASSWORD_VAR = "MYSQL_PASSWORD_FILE"
WORDPRESS_PASSWORD_VAR = "WORDPRESS_DB_PASSWORD_FILE"
OUTPUT_SERVICE_KEYS = {"logging": "loggingService", "mysql": "mysqlService", "wordpress": "wordpressService"}
REQUIRED_OUTPUTS = ("envLabel", "url", "publishMode", *OUTPUT_SERVICE_KEYS.values(), "mysqlSecrets", "wordpressSecrets")

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2

Status = Literal["PASS", "FAIL"]

# Task states after its container has run (or was refused); a task never leaves them.
_ENDED = ("complete", "failed", "shutdown", "rejected")


class VerifyError(Exception):
    """Verification could not run (bad input, no engine); exit code 2."""


# --------------------------------------------------------------------------- expected shape


@dataclass(frozen=True)
class Expected:
    """The stack's shape as its outputs describe it."""

    env_label: str
    url: str
    publish_mode: str
    services: Mapping[str, str]  # role -> service name
    secrets: Mapping[str, tuple[str, ...]]  # role -> secret names attached to it
    stack: str | None = None  # known with --stack; checked against the services' stack label


def parse_outputs(outputs: Mapping[str, Any], stack: str | None = None) -> Expected:
    """Validates `pulumi stack output --json`; every problem in one message."""
    problems: list[str] = []
    missing = [key for key in REQUIRED_OUTPUTS if key not in outputs]
    if missing:
        problems.append(f"missing output(s): {', '.join(missing)}")
    for key in REQUIRED_OUTPUTS:
        value = outputs.get(key)
        # The CLI prints secret outputs as "[secret]" unless --show-secrets, which we never ask for.
        if value == "[secret]":
            problems.append(f"output {key} is marked secret; it must be a plain value to be verified")
        elif key in outputs and key.endswith("Secrets"):
            if not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):
                problems.append(f"output {key} must be a list of secret names, got {type(value).__name__}")
        elif key in outputs and not (isinstance(value, str) and value):
            problems.append(f"output {key} must be a non-empty string, got {value!r}")
    if not problems and urllib.parse.urlsplit(str(outputs["url"])).scheme not in ("http", "https"):
        problems.append(f"output url must be an http(s) URL, got {outputs['url']!r}")
    if problems:
        raise VerifyError("stack outputs unusable: " + "; ".join(problems))
    return Expected(
        env_label=str(outputs["envLabel"]),
        url=str(outputs["url"]),
        publish_mode=str(outputs["publishMode"]),
        services={role: str(outputs[key]) for role, key in OUTPUT_SERVICE_KEYS.items()},
        secrets={
            "mysql": tuple(str(s) for s in outputs["mysqlSecrets"]),
            "wordpress": tuple(str(s) for s in outputs["wordpressSecrets"]),
        },
        stack=stack,
    )


def read_outputs_file(path: str, stdin: TextIO | None = None) -> dict[str, Any]:
    try:
        if path == "-":
            text = (stdin or sys.stdin).read()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
    except OSError as exc:
        raise VerifyError(f"cannot read outputs file {path}: {exc.strerror or exc}") from exc
    return _outputs_json(text, f"outputs file {path}")


Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run_command(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, check=False)


def read_stack_outputs(stack: str, run: Runner = _run_command) -> dict[str, Any]:
    """`pulumi stack output --json --stack NAME`: what an operator can run where they deploy from."""
    command = ["pulumi", "stack", "output", "--json", "--stack", stack]
    try:
        proc = run(command)
    except FileNotFoundError as exc:
        raise VerifyError("pulumi CLI not found on PATH; use --outputs FILE with a saved copy of the outputs") from exc
    except subprocess.TimeoutExpired as exc:
        raise VerifyError(f"{' '.join(command)} timed out") from exc
    if proc.returncode != 0:
        raise VerifyError(
            f"{' '.join(command)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return _outputs_json(proc.stdout, f"outputs of stack {stack}")


def _stack_setting(stack: str, key: str, run: Runner) -> str | None:
    """`pulumi config get KEY --stack STACK`; None when the CLI can't say (or the key is unset)."""
    try:
        proc = run(["pulumi", "config", "get", key, "--stack", stack])
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    value = proc.stdout.strip()
    return value if proc.returncode == 0 and value else None


def stack_docker_host(stack: str, run: Runner = _run_command) -> str | None:
    """The stack's own `dockerHost`, so `--stack prod` checks prod's swarm rather than whatever
    engine this machine talks to; None when the CLI can't say."""
    return _stack_setting(stack, "dockerHost", run)


def stack_ssh_opts(stack: str, run: Runner = _run_command) -> tuple[str, ...]:
    """The stack's own `dockerSshOpts` (a JSON list), for its ssh:// host; () when unset."""
    raw = _stack_setting(stack, "dockerSshOpts", run)
    if raw is None:
        return ()
    try:
        value: object = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise VerifyError(f"dockerSshOpts of stack {stack} is not a JSON list: {exc}") from exc
    if not isinstance(value, list) or not all(isinstance(option, str) for option in value):  # pyright: ignore[reportUnknownVariableType]
        raise VerifyError(f"dockerSshOpts of stack {stack} must be a list of strings, got {raw}")
    return tuple(value)  # pyright: ignore[reportUnknownArgumentType]


def _outputs_json(text: str, what: str) -> dict[str, Any]:
    try:
        data: object = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VerifyError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise VerifyError(f"{what} must be a JSON object of stack outputs")
    return {str(k): v for k, v in data.items()}


# --------------------------------------------------------------------------- facts (plain data)


@dataclass(frozen=True)
class NodeFacts:
    id: str
    hostname: str
    role: str  # manager | worker
    availability: str  # active | pause | drain
    state: str  # ready | down | unknown | disconnected
    labels: Mapping[str, str] = field(default_factory=lambda: {})
    engine_labels: Mapping[str, str] = field(default_factory=lambda: {})
    os: str = "linux"
    arch: str = "x86_64"


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
    protocol: str
    mode: str  # ingress | host


@dataclass(frozen=True)
class ServiceFacts:
    id: str
    name: str
    labels: Mapping[str, str]
    mode: str  # replicated | global | other job modes
    replicas: int | None
    constraints: tuple[str, ...] = ()
    has_healthcheck: bool = False
    endpoint_mode: str = "vip"
    ports: tuple[PortFacts, ...] = ()
    secrets: tuple[SecretRef, ...] = ()
    file_env: Mapping[str, str] = field(default_factory=lambda: {})  # the spec's *_FILE variables only
    tasks: tuple[TaskFacts, ...] = ()
    update_state: str | None = None
    update_message: str = ""


@dataclass(frozen=True)
class SwarmFacts:
    nodes: tuple[NodeFacts, ...]
    services: Mapping[str, ServiceFacts | None]  # by the name asked for; None = not found
    secret_names: frozenset[str]


@dataclass(frozen=True)
class HttpResult:
    url: str
    status: int | None  # last HTTP status seen
    error: str | None  # last connection error
    attempts: int
    seconds: float


@dataclass(frozen=True)
class Row:
    check: str
    target: str
    status: Status
    detail: str


# --------------------------------------------------------------------------- gathering (Docker I/O)


def docker_client(host: str | None, ssh_opts: Sequence[str] = (), timeout: int = 30) -> Any:
    """A DockerClient for `host`, DOCKER_HOST, or the local socket; ssh:// through the ssh binary,
    so the operator's ssh config, agent and known_hosts apply, with the stack's `dockerSshOpts`
    and the options that stop ssh hanging (swarmops.docker_host, as the program's connections)."""
    from swarmops.docker_host import docker_client as connect

    where = host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = connect(where, ssh_opts, timeout=timeout)
        within(timeout, client.ping, f"the Docker host {where}")
    except Exception as exc:  # docker raises DockerException, requests and OS errors alike
        # docker 7.1 imports paramiko for any ssh:// host, even when it shells out to ssh.
        hint = "; pip install paramiko" if "paramiko" in str(exc) else ""
        raise VerifyError(f"cannot reach Docker at {where}: {exc}{hint}") from exc
    return client


def _str_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


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


def secret_path(target: str) -> str:
    """A secret's File.Name as a path in the container: Docker mounts a relative one under SECRETS_DIR."""
    return posixpath.normpath(posixpath.join(SECRETS_DIR, target))


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
        exit_code=exit_code if isinstance(exit_code, int) and status.get("State") in _ENDED else None,
    )


def _file_env(env: object) -> dict[str, str]:
    """The `NAME_FILE=path` entries of a container spec's Env; nothing else is kept."""
    pairs = (str(entry).partition("=") for entry in _list(env))
    return {name: value for name, found, value in pairs if found and name.endswith("_FILE")}


def service_facts(raw: Mapping[str, Any], tasks: Iterable[TaskFacts]) -> ServiceFacts:
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


def gather_facts(client: Any, expected: Expected) -> SwarmFacts:
    """Everything `evaluate` needs, read from a swarm manager through the docker SDK."""
    import docker.errors

    info = _dict(client.info())
    swarm = _dict(info.get("Swarm"))
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        raise VerifyError("the Docker host is not a swarm manager; point --docker-host at a manager")
    local_node = str(swarm.get("NodeID", ""))

    def local_health(raw_task: Mapping[str, Any]) -> str | None:
        # Containers live on their node's engine: only this node's can be inspected from here.
        container_id = _dict(_dict(raw_task.get("Status")).get("ContainerStatus")).get("ContainerID")
        if raw_task.get("NodeID") != local_node or not container_id:
            return None
        try:
            state = _dict(client.api.inspect_container(container_id).get("State"))
        except docker.errors.NotFound:
            return None
        health = _dict(state.get("Health"))
        return str(health["Status"]) if health.get("Status") else None

    services: dict[str, ServiceFacts | None] = {}
    for name in expected.services.values():
        try:
            raw: dict[str, Any] = client.api.inspect_service(name)
        except docker.errors.NotFound:
            raw = {}
        # The API also resolves an ID prefix: only the service of exactly this name counts.
        if _dict(raw.get("Spec")).get("Name") != name:
            services[name] = None
            continue
        raw_tasks: list[dict[str, Any]] = client.api.tasks(filters={"service": raw["ID"]})
        tasks = [
            task_facts(t, local_health(t) if _dict(t.get("Status")).get("State") == "running" else None)
            for t in raw_tasks
        ]
        services[name] = service_facts(raw, tasks)
    return SwarmFacts(
        nodes=tuple(node_facts(n) for n in client.api.nodes()),
        services=services,
        secret_names=frozenset(str(_dict(s.get("Spec")).get("Name", "")) for s in client.api.secrets()),
    )


def probe_http(
    url: str,
    *,
    timeout: float = 5.0,
    attempts: int = 5,
    delay: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> HttpResult:
    """GETs `url` until it answers with a status below 500, at most `attempts` times.

    Redirects are not followed: WordPress redirects to its configured site URL, which need not
    resolve from here, and a redirect already proves the site answers."""
    parts = urllib.parse.urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    tried = 0
    for tried in range(1, attempts + 1):
        connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = connection_type(parts.hostname or "localhost", parts.port, timeout=timeout)
        try:
            connection.request("GET", path, headers={"User-Agent": "wordpress-swarm-verify"})
            status, error = connection.getresponse().status, None
        except (OSError, http.client.HTTPException) as exc:
            status, error = None, str(exc) or type(exc).__name__
        finally:
            connection.close()
        if status is not None and status < 500:
            break
        if tried < attempts:
            sleep(delay)
    return HttpResult(url=url, status=status, error=error, attempts=tried, seconds=time.monotonic() - started)


# --------------------------------------------------------------------------- evaluation (pure)

_NODE_LABEL = "node.labels."
_ENGINE_LABEL = "engine.labels."


def constraint_matches(constraint: str, node: NodeFacts) -> bool:
    """Swarm placement semantics: `key==value` / `key!=value`, values compared case-insensitively,
    a missing label is the empty string. Keys we can't evaluate from node facts count as met."""
    for operator in ("==", "!="):
        key, found, value = constraint.partition(operator)
        if found:
            break
    else:
        return True
    key, value = key.strip(), value.strip()
    if key.startswith(_NODE_LABEL):
        actual: str | None = node.labels.get(key[len(_NODE_LABEL) :], "")
    elif key.startswith(_ENGINE_LABEL):
        actual = node.engine_labels.get(key[len(_ENGINE_LABEL) :], "")
    else:
        actual = {
            "node.id": node.id,
            "node.hostname": node.hostname,
            "node.role": node.role,
            "node.platform.os": node.os,
            "node.platform.arch": node.arch,
        }.get(key)
    if actual is None:
        return True
    equal = actual.casefold() == value.casefold()
    return equal if operator == "==" else not equal


def schedulable(node: NodeFacts) -> bool:
    # A drained node runs nothing; a paused one keeps its tasks.
    return node.state == "ready" and node.availability != "drain"


def eligible_nodes(service: ServiceFacts, nodes: Iterable[NodeFacts]) -> list[NodeFacts]:
    return [n for n in nodes if schedulable(n) and all(constraint_matches(c, n) for c in service.constraints)]


def _current(service: ServiceFacts) -> list[TaskFacts]:
    """Tasks the orchestrator wants running (history has desired state shutdown)."""
    return [t for t in service.tasks if t.desired_state in ("running", "ready")]


def _running(service: ServiceFacts, nodes: Mapping[str, NodeFacts]) -> list[TaskFacts]:
    # A down node's tasks still say "running" until the swarm reschedules them: don't count them.
    return [
        t
        for t in _current(service)
        if t.state == "running" and t.node_id in nodes and nodes[t.node_id].state == "ready"
    ]


def _reason(task: TaskFacts) -> str:
    return task.error or task.message or task.state


def _outcome(task: TaskFacts) -> str:
    """Why an ended task ended, with its container's exit code unless the error already says it
    ("task: non-zero exit (137)")."""
    reason = _reason(task)
    if task.exit_code is None or f"exit ({task.exit_code})" in reason:
        return reason
    code = f"exit code {task.exit_code}"
    return code if reason == task.state else f"{code} ({reason})"


def _describe_task(task: TaskFacts, nodes: Mapping[str, NodeFacts]) -> str:
    where = nodes[task.node_id].hostname if task.node_id in nodes else "no node yet"
    slot = f"slot {task.slot} " if task.slot is not None else ""
    reason = _reason(task)
    return f"{slot}on {where}: {task.state}" + (f" ({reason})" if reason != task.state else "")


def _last_failure(service: ServiceFacts) -> TaskFacts | None:
    failed = [t for t in service.tasks if t.desired_state not in ("running", "ready") and t.state in _ENDED]
    failed = [t for t in failed if t.error or t.state != "shutdown"]
    return max(failed, key=lambda t: t.timestamp) if failed else None


def _target(role: str, name: str) -> str:
    return f"{role} {name}"


def check_service(role: str, name: str, service: ServiceFacts | None, expected: Expected) -> Row:
    target = _target(role, name)
    if service is None:
        return Row("service", target, "FAIL", "no such service on this swarm")
    problems: list[str] = []
    labelled_role = service.labels.get(ROLE_LABEL)
    if labelled_role != role:
        problems.append(f"label {ROLE_LABEL}={labelled_role!r}, expected {role!r}")
    labelled_stack = service.labels.get(STACK_LABEL)
    if expected.stack is not None and labelled_stack != expected.stack:
        problems.append(f"label {STACK_LABEL}={labelled_stack!r}, expected {expected.stack!r}")
    if problems:
        return Row("service", target, "FAIL", "; ".join(problems))
    return Row("service", target, "PASS", f"{service.mode}, labelled role={role} stack={labelled_stack}")


def check_converged(role: str, service: ServiceFacts, facts: SwarmFacts) -> Row:
    """Running tasks = desired: replicas, or one per eligible node for a global service."""
    target = _target(role, service.name)
    nodes = {n.id: n for n in facts.nodes}
    running = _running(service, nodes)
    problems: list[str] = []
    if service.mode == "replicated":
        desired = service.replicas or 0
        what = f"{len(running)}/{desired} replicas running"
        if len(running) != desired:
            problems.append(what)
    elif service.mode == "global":
        eligible = eligible_nodes(service, facts.nodes)
        desired = len(eligible)
        eligible_ids = {n.id for n in eligible}
        on_eligible = [t for t in running if t.node_id in eligible_ids]
        what = f"{len(on_eligible)}/{desired} eligible node(s) running a task"
        covered = {t.node_id for t in on_eligible}
        if len(on_eligible) != desired or covered != eligible_ids:
            problems.append(what)
    else:
        return Row("converged", target, "FAIL", f"unsupported service mode {service.mode!r}")
    stuck = [t for t in _current(service) if t.state != "running"]
    problems.extend(_describe_task(t, nodes) for t in stuck[:3])
    if problems:
        # Why a replica is missing: a stopped container's task ends (failed, complete) and its
        # replacement, if the restart policy allows one, waits 'ready' for the restart delay.
        last = _last_failure(service)
        if last is not None:
            problems.append(f"last task {last.state}: {_outcome(last)}")
    if service.update_state in ("updating", "paused", "rollback_started", "rollback_paused"):
        problems.append(
            f"update {service.update_state}" + (f": {service.update_message}" if service.update_message else "")
        )
    if problems:
        return Row("converged", target, "FAIL", "; ".join(problems))
    note = f" (last update {service.update_state})" if service.update_state == "rollback_completed" else ""
    return Row("converged", target, "PASS", what + note)


def check_healthy(role: str, service: ServiceFacts, facts: SwarmFacts) -> Row:
    """Swarm reports a task with a health check as 'starting' until the check passes and fails it
    ("unhealthy container") when it fails, so a running task on any node is a healthy one. The
    containers on the node we talk to are also inspected, to catch one between those two events."""
    target = _target(role, service.name)
    nodes = {n.id: n for n in facts.nodes}
    running = _running(service, nodes)
    waiting = [t for t in _current(service) if t.state == "starting"]
    sick = [t for t in running if t.container_health not in (None, "healthy")]
    earlier = [t for t in service.tasks if t.desired_state not in ("running", "ready") and "unhealthy" in t.error]
    history = f"{len(earlier)} earlier task(s) failed their health check" if earlier else ""
    if service.mode == "replicated" and not service.replicas:
        return Row("healthy", target, "PASS", "no tasks desired")
    problems = [f"waiting for its health check: {_describe_task(t, nodes)}" for t in waiting[:3]]
    problems += [f"container {t.container_health}: {_describe_task(t, nodes)}" for t in sick[:3]]
    if not running and not waiting:
        last = _last_failure(service)
        problems.append("no task running" + (f"; last task {last.state}: {_outcome(last)}" if last else ""))
    if problems:
        return Row("healthy", target, "FAIL", "; ".join(problems + ([history] if history else [])))
    detail = f"health check passed on {len(running)} running task(s)"
    return Row("healthy", target, "PASS", detail + (f" ({history})" if history else ""))


def check_logging_placement(service: ServiceFacts, expected: Expected, facts: SwarmFacts) -> Row:
    """Exactly one running task on each schedulable node labelled env=<envLabel>, none elsewhere."""
    target = _target("logging", service.name)
    label = expected.env_label
    nodes = {n.id: n for n in facts.nodes}
    labelled = [n for n in facts.nodes if n.labels.get(ENV_LABEL_KEY, "").casefold() == label.casefold()]
    wanted = [n for n in labelled if schedulable(n)]
    skipped = [f"{n.hostname} ({n.state}, {n.availability})" for n in labelled if not schedulable(n)]
    running = _running(service, nodes)
    per_node: dict[str, list[TaskFacts]] = {}
    for task in running:
        per_node.setdefault(task.node_id, []).append(task)
    problems: list[str] = []
    if service.mode != "global":
        problems.append(f"mode is {service.mode}, expected global")
    if not wanted:
        problems.append(f"no ready node is labelled {ENV_LABEL_KEY}={label}")
    for node in wanted:
        count = len(per_node.get(node.id, []))
        if count == 1:
            continue
        if count > 1:
            problems.append(f"{node.hostname}: {count} running tasks")
            continue
        pending = [t for t in _current(service) if t.node_id == node.id]
        if pending:
            problems.append(f"{node.hostname}: no running task ({pending[0].state}: {_reason(pending[0])})")
        elif excluded := [c for c in service.constraints if not constraint_matches(c, node)]:
            problems.append(f"{node.hostname}: no task, the service's constraint {', '.join(excluded)} excludes it")
        else:
            problems.append(f"{node.hostname}: no task")
    wanted_ids = {n.id for n in wanted}
    for node_id, tasks in per_node.items():
        if node_id not in wanted_ids:
            problems.append(
                f"{nodes[node_id].hostname}: {len(tasks)} task(s) on a node not labelled {ENV_LABEL_KEY}={label}"
            )
    note = f"; not counted: {', '.join(skipped)}" if skipped else ""
    if problems:
        return Row("placement", target, "FAIL", "; ".join(problems) + note)
    hosts = ", ".join(sorted(n.hostname for n in wanted))
    return Row("placement", target, "PASS", f"one task on each node labelled {ENV_LABEL_KEY}={label}: {hosts}{note}")


def _ports_text(ports: Iterable[PortFacts]) -> str:
    return ", ".join(f"{p.published}->{p.target}/{p.protocol} ({p.mode})" for p in ports)


def check_no_published_port(role: str, service: ServiceFacts) -> Row:
    target = _target(role, service.name)
    if service.ports:
        return Row("ports", target, "FAIL", f"publishes {_ports_text(service.ports)}")
    return Row("ports", target, "PASS", f"nothing published (endpoint mode {service.endpoint_mode})")


def check_published_port(role: str, service: ServiceFacts, expected: Expected) -> Row:
    """The URL's port is published, in the publish mode the stack chose."""
    target = _target(role, service.name)
    parts = urllib.parse.urlsplit(expected.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    matching = [p for p in service.ports if p.published == port]
    if not matching:
        shown = _ports_text(service.ports) or "nothing"
        return Row("published", target, "FAIL", f"port {port} of {expected.url} is not published (publishes {shown})")
    wrong_mode = [p for p in matching if p.mode != expected.publish_mode]
    if wrong_mode:
        return Row("published", target, "FAIL", f"{_ports_text(wrong_mode)}, expected {expected.publish_mode} mode")
    return Row("published", target, "PASS", _ports_text(matching))


def _secret_files(service: ServiceFacts) -> dict[str, str]:
    """The spec's `*_FILE` variables that point into SECRETS_DIR: variable -> normalised path."""
    files: dict[str, str] = {}
    for variable, value in sorted(service.file_env.items()):
        path = posixpath.normpath(value) if value.startswith("/") else ""
        if path.startswith(SECRETS_DIR + "/"):
            files[variable] = path
    return files


def _mounted_at(service: ServiceFacts, path: str) -> SecretRef | None:
    return next((ref for ref in service.secrets if ref.target and ref.path == path), None)


def _same_secret(a: SecretRef, b: SecretRef) -> bool:
    return a.id == b.id if a.id and b.id else a.name == b.name


def _password_pair(wordpress: ServiceFacts, mysql: ServiceFacts | None) -> tuple[str | None, str]:
    """(problem, note) for the WordPress DB password file against MySQL's user password file."""
    wp_path = _secret_files(wordpress).get(WORDPRESS_PASSWORD_VAR)
    if wp_path is None:
        value = wordpress.file_env.get(WORDPRESS_PASSWORD_VAR)
        # Only a path is shown: a value that isn't one might be a password put there by mistake.
        if value is None:
            return f"{WORDPRESS_PASSWORD_VAR} is not set", ""
        shown = f"={value}" if value.startswith("/") else " (not a path)"
        return f"{WORDPRESS_PASSWORD_VAR}{shown} is not a file under {SECRETS_DIR}/", ""
    wp_ref = _mounted_at(wordpress, wp_path)
    if wp_ref is None:
        return None, ""  # reported as an unmounted file already
    theirs = f"mysql's {MYSQL_PASSWORD_VAR}"
    if mysql is None:
        return f"{WORDPRESS_PASSWORD_VAR}: cannot compare with {theirs} secret, the mysql service is missing", ""
    my_path = _secret_files(mysql).get(MYSQL_PASSWORD_VAR)
    my_ref = _mounted_at(mysql, my_path) if my_path else None
    if my_ref is None:
        why = f"{my_path} has no secret mounted" if my_path else f"it is not set to a file under {SECRETS_DIR}/"
        return f"{WORDPRESS_PASSWORD_VAR}: cannot compare with {theirs} secret, {why}", ""
    if not _same_secret(wp_ref, my_ref):
        return (
            f"{WORDPRESS_PASSWORD_VAR}={wp_path} is secret {wp_ref.name}, "
            f"but {theirs}={my_path} is secret {my_ref.name}: WordPress would log in with another password",
            "",
        )
    return None, f"same secret as {theirs}"


def check_secrets(
    role: str, service: ServiceFacts, names: Sequence[str], facts: SwarmFacts, mysql: ServiceFacts | None = None
) -> Row:
    """Each expected secret is referenced by the spec with a target file, exists, and is in the
    spec of every running task (a task from before an update would lack a new secret). Every
    `*_FILE` variable pointing into /run/secrets has a secret mounted at exactly that path, and
    WordPress's DB password file is the same secret as MySQL's user password file (`mysql`)."""
    target = _target(role, service.name)
    nodes = {n.id: n for n in facts.nodes}
    running = _running(service, nodes)
    refs = {ref.name: ref for ref in service.secrets}
    problems: list[str] = []
    for name in names:
        ref = refs.get(name)
        if ref is None:
            problems.append(f"{name}: not attached to the service")
            continue
        if not ref.target:
            problems.append(f"{name}: attached without a target file")
            continue
        if name not in facts.secret_names:
            problems.append(f"{name}: no such secret on the swarm")
        lacking = [t for t in running if name not in t.secret_names]
        if lacking:
            problems.append(f"{name}: missing from {len(lacking)} of {len(running)} running task(s)")
    readers: dict[str, list[str]] = {}  # secret file path -> variables reading it
    for variable, path in _secret_files(service).items():
        if _mounted_at(service, path) is None:
            mounted = ", ".join(sorted(ref.path for ref in service.secrets if ref.target)) or "none"
            problems.append(f"{variable}={path}: no secret is mounted at that path (secret files: {mounted})")
        readers.setdefault(path, []).append(variable)
    note = ""
    if role == "wordpress":
        problem, note = _password_pair(service, mysql)
        problems += [problem] if problem else []
    if problems:
        return Row("secrets", target, "FAIL", "; ".join(problems))
    mounted_text: list[str] = []
    for ref in service.secrets:
        extra = readers.get(ref.path, [])
        if note and WORDPRESS_PASSWORD_VAR in extra:
            extra = [*extra, note]
        where = ref.path if ref.target else "no file"
        mounted_text.append(f"{ref.name} -> {where}" + (f" ({', '.join(extra)})" if extra else ""))
    return Row("secrets", target, "PASS", "; ".join(mounted_text) if mounted_text else "no secrets expected")


def check_http(result: HttpResult) -> Row:
    tries = f"{result.attempts} attempt(s), {result.seconds:.1f}s"
    if result.status is not None and result.status < 500:
        return Row("http", result.url, "PASS", f"HTTP {result.status} ({tries})")
    last = f"HTTP {result.status}" if result.status is not None else (result.error or "no answer")
    return Row("http", result.url, "FAIL", f"{last} ({tries})")


def evaluate(expected: Expected, facts: SwarmFacts, http_result: HttpResult) -> list[Row]:
    """Rows in a stable order: per service exists / converged / healthy / role-specific, then HTTP.
    A missing service still yields its rows, failed, so the table's shape never changes."""
    rows: list[Row] = []
    for role in ROLES:
        name = expected.services[role]
        service = facts.services.get(name)
        rows.append(check_service(role, name, service, expected))
        checks: list[str] = ["converged"]
        if service is None or service.has_healthcheck:
            checks.append("healthy")
        checks += {"logging": ["placement"], "mysql": ["ports", "secrets"], "wordpress": ["published", "secrets"]}[role]
        if service is None:
            rows += [Row(check, _target(role, name), "FAIL", "service not found") for check in checks]
            continue
        for check in checks:
            if check == "converged":
                rows.append(check_converged(role, service, facts))
            elif check == "healthy":
                rows.append(check_healthy(role, service, facts))
            elif check == "placement":
                rows.append(check_logging_placement(service, expected, facts))
            elif check == "ports":
                rows.append(check_no_published_port(role, service))
            elif check == "published":
                rows.append(check_published_port(role, service, expected))
            else:
                mysql = facts.services.get(expected.services["mysql"])
                rows.append(check_secrets(role, service, expected.secrets.get(role, ()), facts, mysql))
    rows.append(check_http(http_result))
    return rows


def exit_code(rows: Iterable[Row]) -> int:
    return EXIT_FAILED if any(r.status != "PASS" for r in rows) else EXIT_OK


# --------------------------------------------------------------------------- output


def render_table(rows: Sequence[Row]) -> str:
    header = Row("CHECK", "TARGET", "PASS", "DETAIL")  # "PASS" only sizes the STATUS column
    widths = [max(len(getattr(r, f)) for r in [header, *rows]) for f in ("check", "target", "status")]
    widths[2] = max(widths[2], len("STATUS"))
    lines = [
        f"{r.check:<{widths[0]}}  {r.target:<{widths[1]}}  {s:<{widths[2]}}  {r.detail}"
        for r, s in [(header, "STATUS"), *((r, r.status) for r in rows)]
    ]
    failed = sum(r.status != "PASS" for r in rows)
    # Not "N passed, N failed": CI log readers take that line for a test runner's verdict.
    lines.append(f"{failed} of {len(rows)} checks FAILED" if failed else f"all {len(rows)} checks passed")
    return "\n".join(lines)


def render_json(rows: Sequence[Row]) -> str:
    return json.dumps({"ok": exit_code(rows) == EXIT_OK, "rows": [asdict(r) for r in rows]}, indent=2)


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m swarmops.verify",
        description="Check a deployed wordpress-swarm stack against the live swarm. "
        "Exit 0: all checks pass; 1: a check failed; 2: could not verify.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="read the expected shape with `pulumi stack output --json --stack STACK`")
    source.add_argument("--outputs", metavar="FILE", help="a JSON file of the stack outputs ('-' for stdin)")
    parser.add_argument(
        "--docker-host",
        help="Docker host of a swarm manager, e.g. ssh://deploy@swarm-manager "
        "(default: DOCKER_HOST, else with --stack the stack's dockerHost, else the local socket)",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument(
        "--http-timeout", type=_positive_float, default=5.0, help="seconds per HTTP attempt (default 5)"
    )
    parser.add_argument(
        "--http-attempts", type=_positive_int, default=5, help="HTTP attempts before failing (default 5)"
    )
    parser.add_argument("--http-delay", type=float, default=2.0, help="seconds between HTTP attempts (default 2)")
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="check again until every check passes or SECONDS have passed (default 0: once). `pulumi up` "
        "returns when the replicated services converged; a global service's tasks may still be starting",
    )
    return parser.parse_args(argv)


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
    run: Runner = _run_command,
) -> int:
    args = parse_args(argv)
    out, err = stdout or sys.stdout, stderr or sys.stderr
    deadline = time.monotonic() + args.wait
    try:
        if args.stack:
            expected = parse_outputs(read_stack_outputs(args.stack, run), stack=args.stack)
        else:
            expected = parse_outputs(read_outputs_file(args.outputs, stdin))
        host = args.docker_host
        if host is None and args.stack and not os.environ.get("DOCKER_HOST"):
            host = stack_docker_host(args.stack, run)
        ssh_opts = stack_ssh_opts(args.stack, run) if args.stack else ()
        while True:
            rows = _check_once(expected, host, ssh_opts, args)
            if exit_code(rows) == 0 or time.monotonic() >= deadline:
                break
            time.sleep(WAIT_INTERVAL)
    except VerifyError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc), "rows": []}, indent=2), file=out)
        print(f"verify: {exc}", file=err)
        return EXIT_ERROR
    print(render_json(rows) if args.json else render_table(rows), file=out)
    return exit_code(rows)


# Between two rounds of --wait: a starting task turns healthy at its next probe.
WAIT_INTERVAL = 2.0


def _check_once(expected: Expected, host: str | None, ssh_opts: Sequence[str], args: argparse.Namespace) -> list[Row]:
    client = docker_client(host, ssh_opts)
    try:
        facts = gather_facts(client, expected)
    except VerifyError:
        raise
    except Exception as exc:  # a lost connection or API error mid-way: nothing to judge
        raise VerifyError(f"reading the swarm failed: {exc}") from exc
    finally:
        client.close()
    result = probe_http(expected.url, timeout=args.http_timeout, attempts=args.http_attempts, delay=args.http_delay)
    return evaluate(expected, facts, result)


if __name__ == "__main__":
    sys.exit(main())
