"""The checks, judged on plain facts: per service a row saying it exists with its labels, then a row
for each registered check that applies to its role, then the HTTP row.

SERVICE_CHECKS is the registry, like the policy pack's: its order is the rows' order, and a check
runs for the roles it names (and "healthy" only where the service has a health check)."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from stackconfig.names import ENV_LABEL_KEY, ROLE_LABEL, STACK_LABEL
from stackconfig.outputs import BACKUP_ROLES, ROLES
from swarmlib.facts import PortFacts, ServiceFacts, SwarmFacts, TaskFacts
from swarmops.verify import Row, Verdict
from swarmops.verify.backups import check_backups
from swarmops.verify.database import check_database
from swarmops.verify.http_probe import HttpResult
from swarmops.verify.observed import Inside, Observed
from swarmops.verify.secret_files import check_secrets
from swarmops.verify.stack import Expected
from swarmops.verify.tasks import (
    constraint_matches,
    current_tasks,
    describe_task,
    eligible_nodes,
    last_failure,
    outcome,
    reason,
    running_tasks,
)

BACKUP_ROLE_SET = frozenset(BACKUP_ROLES)

# Judges one service of a role that exists; a missing service fails every row without a judge.
Judge = Callable[[str, ServiceFacts, Expected, Observed], Verdict]


def target(role: str, name: str) -> str:
    return f"{role} {name}"


def check_service(role: str, name: str, service: ServiceFacts | None, expected: Expected) -> Row:
    row_target = target(role, name)
    if service is None:
        return Row("service", row_target, "FAIL", "no such service on this swarm")
    problems: list[str] = []
    labelled_role = service.labels.get(ROLE_LABEL)
    if labelled_role != role:
        problems.append(f"label {ROLE_LABEL}={labelled_role!r}, expected {role!r}")
    labelled_stack = service.stack
    if expected.stack is not None and labelled_stack != expected.stack:
        problems.append(f"label {STACK_LABEL}={labelled_stack!r}, expected {expected.stack!r}")
    if problems:
        return Row("service", row_target, "FAIL", "; ".join(problems))
    return Row("service", row_target, "PASS", f"{service.mode}, labelled role={role} stack={labelled_stack}")


def check_converged(role: str, service: ServiceFacts, expected: Expected, observed: Observed) -> Verdict:
    """Running tasks = desired: replicas, or one per eligible node for a global service."""
    facts = observed.facts
    nodes = facts.nodes_by_id()
    running = running_tasks(service, nodes)
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
        return "FAIL", f"unsupported service mode {service.mode!r}"
    stuck = [t for t in current_tasks(service) if t.state != "running"]
    problems.extend(describe_task(t, nodes) for t in stuck[:3])
    if problems:
        # Why a replica is missing: a stopped container's task ends (failed, complete) and its
        # replacement, if the restart policy allows one, waits 'ready' for the restart delay.
        last = last_failure(service)
        if last is not None:
            problems.append(f"last task {last.state}: {outcome(last)}")
    if service.update_state in ("updating", "paused", "rollback_started", "rollback_paused"):
        problems.append(
            f"update {service.update_state}" + (f": {service.update_message}" if service.update_message else "")
        )
    if problems:
        return "FAIL", "; ".join(problems)
    note = f" (last update {service.update_state})" if service.update_state == "rollback_completed" else ""
    return "PASS", what + note


def check_healthy(role: str, service: ServiceFacts, expected: Expected, observed: Observed) -> Verdict:
    """Swarm reports a task with a health check as 'starting' until the check passes and fails it
    ("unhealthy container") when it fails, so a running task on any node is a healthy one. The
    containers on the node we talk to are also inspected, to catch one between those two events."""
    facts = observed.facts
    nodes = facts.nodes_by_id()
    running = running_tasks(service, nodes)
    waiting = [t for t in current_tasks(service) if t.state == "starting"]
    sick = [t for t in running if t.container_health not in (None, "healthy")]
    earlier = [t for t in service.tasks if t.desired_state not in ("running", "ready") and "unhealthy" in t.error]
    history = f"{len(earlier)} earlier task(s) failed their health check" if earlier else ""
    if service.mode == "replicated" and not service.replicas:
        return "PASS", "no tasks desired"
    problems = [f"waiting for its health check: {describe_task(t, nodes)}" for t in waiting[:3]]
    problems += [f"container {t.container_health}: {describe_task(t, nodes)}" for t in sick[:3]]
    if not running and not waiting:
        last = last_failure(service)
        problems.append("no task running" + (f"; last task {last.state}: {outcome(last)}" if last else ""))
    if problems:
        return "FAIL", "; ".join(problems + ([history] if history else []))
    detail = f"health check passed on {len(running)} running task(s)"
    return "PASS", detail + (f" ({history})" if history else "")


def check_logging_placement(role: str, service: ServiceFacts, expected: Expected, observed: Observed) -> Verdict:
    """Exactly one running task on each node labelled env=<envLabel> that keeps its tasks, none elsewhere."""
    facts = observed.facts
    label = expected.deployed.env_label
    nodes = facts.nodes_by_id()
    labelled = [n for n in facts.nodes if n.labels.get(ENV_LABEL_KEY, "").casefold() == label.casefold()]
    wanted = [n for n in labelled if n.keeps_tasks]
    skipped = [f"{n.hostname} ({n.state}, {n.availability})" for n in labelled if not n.keeps_tasks]
    per_node: dict[str, list[TaskFacts]] = {}
    for task in running_tasks(service, nodes):
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
        pending = [t for t in current_tasks(service) if t.node_id == node.id]
        if pending:
            problems.append(f"{node.hostname}: no running task ({pending[0].state}: {reason(pending[0])})")
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
        return "FAIL", "; ".join(problems) + note
    hosts = ", ".join(sorted(n.hostname for n in wanted))
    return "PASS", f"one task on each node labelled {ENV_LABEL_KEY}={label}: {hosts}{note}"


def _ports_text(ports: Iterable[PortFacts]) -> str:
    return ", ".join(f"{p.published}->{p.target}/{p.protocol} ({p.mode})" for p in ports)


def check_no_published_port(role: str, service: ServiceFacts, expected: Expected, observed: Observed) -> Verdict:
    if service.ports:
        return "FAIL", f"publishes {_ports_text(service.ports)}"
    return "PASS", f"nothing published (endpoint mode {service.endpoint_mode})"


def check_published_port(role: str, service: ServiceFacts, expected: Expected, observed: Observed) -> Verdict:
    """The URL's port is published, in the publish mode the stack chose."""
    url, publish_mode = expected.deployed.url, expected.deployed.publish_mode
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    matching = [p for p in service.ports if p.published == port]
    if not matching:
        shown = _ports_text(service.ports) or "nothing"
        return "FAIL", f"port {port} of {url} is not published (publishes {shown})"
    wrong_mode = [p for p in matching if p.mode != publish_mode]
    if wrong_mode:
        return "FAIL", f"{_ports_text(wrong_mode)}, expected {publish_mode} mode"
    return "PASS", _ports_text(matching)


@dataclass(frozen=True)
class ServiceCheck:
    description: str
    roles: frozenset[str]
    judge: Judge
    only_with_healthcheck: bool = False

    def applies(self, role: str, service: ServiceFacts | None) -> bool:
        # A missing service keeps its health row, failed: it can't say it has no health check.
        wanted = service is None or service.has_healthcheck or not self.only_with_healthcheck
        return role in self.roles and wanted


SERVICE_CHECKS: Final[dict[str, ServiceCheck]] = {
    "converged": ServiceCheck(
        "Running tasks = replicas, or one per eligible node for a global service; else why not.",
        frozenset(ROLES) | BACKUP_ROLE_SET,
        check_converged,
    ),
    "healthy": ServiceCheck(
        "Every task of a service with a health check has passed it.",
        frozenset(ROLES) | BACKUP_ROLE_SET,
        check_healthy,
        only_with_healthcheck=True,
    ),
    "placement": ServiceCheck(
        "The logging daemon runs exactly once on every ready node labelled env=<envLabel>, nowhere else.",
        frozenset({"logging"}),
        check_logging_placement,
    ),
    "ports": ServiceCheck("MySQL publishes no port.", frozenset({"mysql"}), check_no_published_port),
    "published": ServiceCheck(
        "WordPress publishes the URL's port in the stack's publish mode.",
        frozenset({"wordpress"}),
        check_published_port,
    ),
    "secrets": ServiceCheck(
        "The expected secrets are attached and mounted where the *_FILE variables say; WordPress's DB "
        "password is MySQL's user password.",
        frozenset({"mysql", "wordpress"}),
        check_secrets,
    ),
    "database": ServiceCheck(
        "MySQL knows its users: the application user logs in with its secret, root on the socket.",
        frozenset({"mysql"}),
        check_database,
    ),
}


def check_http(result: HttpResult) -> Row:
    tries = f"{result.attempts} attempt(s), {result.seconds:.1f}s"
    if result.status is not None and result.status < 500:
        return Row("http", result.url, "PASS", f"HTTP {result.status} ({tries})")
    last = f"HTTP {result.status}" if result.status is not None else (result.error or "no answer")
    return Row("http", result.url, "FAIL", f"{last} ({tries})")


def evaluate(
    expected: Expected,
    facts: SwarmFacts,
    http_result: HttpResult,
    inside: Inside | None = None,
    now: dt.datetime | None = None,
) -> list[Row]:
    """Rows in a stable order: per service exists / converged / healthy / role-specific, the backup
    jobs and the backups when the stack has them, then HTTP. A missing service still yields its
    rows, failed, so the table's shape never changes."""
    observed = Observed(facts, inside or Inside(), now or dt.datetime.now(dt.UTC))
    rows: list[Row] = []
    for role in ROLES:
        rows += _service_rows(role, expected.deployed.service(role), expected, observed)
    for role, name in zip(BACKUP_ROLES, expected.deployed.backup_services, strict=False):
        rows += _service_rows(role, name, expected, observed)
    if expected.deployed.backup_services:
        inside = observed.inside
        verdict = check_backups(inside.backups, inside.why_no_backups, observed.now)
        rows.append(Row("backups", target("backups", expected.deployed.backup_services[0]), *verdict))
    rows.append(check_http(http_result))
    return rows


def _service_rows(role: str, name: str, expected: Expected, observed: Observed) -> list[Row]:
    service = observed.facts.service(name)
    rows = [check_service(role, name, service, expected)]
    for check_name, check in SERVICE_CHECKS.items():
        if not check.applies(role, service):
            continue
        verdict: Verdict = (
            check.judge(role, service, expected, observed) if service is not None else ("FAIL", "service not found")
        )
        rows.append(Row(check_name, target(role, name), *verdict))
    return rows
