"""How a service's tasks stand, as the checks read them: where the swarm may place a task, which
tasks count as running, and why one isn't (its state, error and exit code, in the rows' words)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from swarmlib.facts import ENDED, NodeFacts, ServiceFacts, TaskFacts

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


def eligible_nodes(service: ServiceFacts, nodes: Iterable[NodeFacts]) -> list[NodeFacts]:
    """The nodes a global service should run a task on."""
    return [n for n in nodes if n.keeps_tasks and all(constraint_matches(c, n) for c in service.constraints)]


def current_tasks(service: ServiceFacts) -> list[TaskFacts]:
    """Tasks the orchestrator wants running (history has desired state shutdown)."""
    return [t for t in service.tasks if t.desired_state in ("running", "ready")]


def running_tasks(service: ServiceFacts, nodes: Mapping[str, NodeFacts]) -> list[TaskFacts]:
    # A down node's tasks still say "running" until the swarm reschedules them: don't count them.
    return [
        t
        for t in current_tasks(service)
        if t.state == "running" and t.node_id in nodes and nodes[t.node_id].state == "ready"
    ]


def reason(task: TaskFacts) -> str:
    return task.error or task.message or task.state


def outcome(task: TaskFacts) -> str:
    """Why an ended task ended, with its container's exit code unless the error already says it
    ("task: non-zero exit (137)")."""
    why = reason(task)
    if task.exit_code is None or f"exit ({task.exit_code})" in why:
        return why
    code = f"exit code {task.exit_code}"
    return code if why == task.state else f"{code} ({why})"


def describe_task(task: TaskFacts, nodes: Mapping[str, NodeFacts]) -> str:
    where = nodes[task.node_id].hostname if task.node_id in nodes else "no node yet"
    slot = f"slot {task.slot} " if task.slot is not None else ""
    why = reason(task)
    return f"{slot}on {where}: {task.state}" + (f" ({why})" if why != task.state else "")


def last_failure(service: ServiceFacts) -> TaskFacts | None:
    """The latest task that ended on its own (a plain shutdown is the orchestrator replacing it)."""
    failed = [t for t in service.tasks if t.desired_state not in ("running", "ready") and t.state in ENDED]
    failed = [t for t in failed if t.error or t.state != "shutdown"]
    return max(failed, key=lambda t: t.timestamp) if failed else None
