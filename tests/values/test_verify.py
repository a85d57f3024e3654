"""swarmops.verify without an engine: evaluation of plain facts, output, exit codes, arguments."""

from __future__ import annotations

import io
import json
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from stackconfig.names import ROLE_LABEL, STACK_LABEL
from stackconfig.outputs import ROLES, DeployedStack, OutputsError
from swarmlib.facts import (
    NodeFacts,
    PortFacts,
    SecretRef,
    ServiceFacts,
    SwarmFacts,
    TaskFacts,
    node_facts,
    service_facts,
    task_facts,
)
from swarmops.verify import EXIT_ERROR, Row, Status, VerifyError, cli, database
from swarmops.verify.checks import check_http, evaluate
from swarmops.verify.http_probe import HttpResult, probe_http
from swarmops.verify.observed import DatabaseLogins, Inside
from swarmops.verify.render import exit_code, render_json, render_table
from swarmops.verify.stack import (
    Expected,
    read_outputs_file,
    read_stack_outputs,
    stack_docker_host,
    stack_ssh_opts,
)
from swarmops.verify.tasks import constraint_matches

OUTPUTS: dict[str, Any] = {
    "envLabel": "test",
    "url": "http://localhost:30080/",
    "publishMode": "host",
    "wordpressService": "site-wordpress-1",
    "mysqlService": "db-mysql-1",
    "loggingService": "logging-logspout-1",
    "mysqlSecrets": ["db-root-password-1", "db-user-password-1"],
    "wordpressSecrets": ["db-user-password-1"],
    "backupServices": [],
}
EXPECTED = Expected.parse(OUTPUTS, stack="dev")
HTTP_OK = HttpResult("http://localhost:30080/", 302, None, 1, 0.01)

N1 = NodeFacts(id="n1", hostname="node1", role="manager", availability="active", state="ready", labels={"env": "test"})
N2 = NodeFacts(id="n2", hostname="node2", role="worker", availability="active", state="ready", labels={"env": "test"})
N3 = NodeFacts(id="n3", hostname="node3", role="worker", availability="active", state="ready", labels={"env": "prod"})


def task(node: str, *, state: str = "running", desired: str = "running", slot: int | None = 1, **kw: Any) -> TaskFacts:
    return TaskFacts(id=f"t-{node}-{slot}-{state}", node_id=node, desired_state=desired, state=state, slot=slot, **kw)


def labels(role: str) -> dict[str, str]:
    return {ROLE_LABEL: role, STACK_LABEL: "dev"}


LOGGING = ServiceFacts(
    id="s-log",
    name="logging-logspout-1",
    labels=labels("logging"),
    mode="global",
    replicas=None,
    constraints=("node.labels.env==test",),
    has_healthcheck=True,
    tasks=(task("n1", slot=None), task("n2", slot=None)),
)
# As the product mounts them: the user-password secret is in both services, under different files.
ROOT_SECRET = SecretRef("db-root-password-1", "/run/secrets/mysql-root-password", id="sec-root")
MYSQL_USER_SECRET = SecretRef("db-user-password-1", "/run/secrets/mysql-user-password", id="sec-user")
WORDPRESS_USER_SECRET = SecretRef("db-user-password-1", "/run/secrets/wordpress-db-password", id="sec-user")
MYSQL_SECRETS = (ROOT_SECRET, MYSQL_USER_SECRET)
MYSQL_FILE_ENV = {
    "MYSQL_ROOT_PASSWORD_FILE": "/run/secrets/mysql-root-password",
    "MYSQL_PASSWORD_FILE": "/run/secrets/mysql-user-password",
}
WORDPRESS_FILE_ENV = {"WORDPRESS_DB_PASSWORD_FILE": "/run/secrets/wordpress-db-password"}
MYSQL = ServiceFacts(
    id="s-db",
    name="db-mysql-1",
    labels=labels("mysql"),
    mode="replicated",
    replicas=1,
    constraints=("node.labels.env==test",),
    has_healthcheck=True,
    endpoint_mode="dnsrr",
    secrets=MYSQL_SECRETS,
    file_env=MYSQL_FILE_ENV,
    tasks=(task("n1", secret_names=("db-root-password-1", "db-user-password-1"), container_health="healthy"),),
)
WORDPRESS = ServiceFacts(
    id="s-wp",
    name="site-wordpress-1",
    labels=labels("wordpress"),
    mode="replicated",
    replicas=1,
    constraints=("node.labels.env==test",),
    has_healthcheck=True,
    ports=(PortFacts(target=80, published=30080, protocol="tcp", mode="host"),),
    secrets=(WORDPRESS_USER_SECRET,),
    file_env=WORDPRESS_FILE_ENV,
    tasks=(task("n2", secret_names=("db-user-password-1",)),),
)
SECRET_NAMES = frozenset({"db-root-password-1", "db-user-password-1", "someone-elses"})


def facts(
    *,
    logging: ServiceFacts | None = LOGGING,
    mysql: ServiceFacts | None = MYSQL,
    wordpress: ServiceFacts | None = WORDPRESS,
    nodes: Sequence[NodeFacts] = (N1, N2, N3),
    secret_names: frozenset[str] = SECRET_NAMES,
) -> SwarmFacts:
    services = tuple(s for s in (logging, mysql, wordpress) if s is not None)
    return SwarmFacts(
        docker_host="unix:///var/run/docker.sock", nodes=tuple(nodes), services=services, secret_names=secret_names
    )


def expected_with(**outputs: Any) -> Expected:
    """EXPECTED with some outputs changed."""
    return Expected.parse({**OUTPUTS, **outputs}, stack="dev")


def rows_by_key(rows: Sequence[Row]) -> dict[tuple[str, str], Row]:
    return {(r.check, r.target.split()[0] if r.check != "http" else "http"): r for r in rows}


def failed(rows: Sequence[Row]) -> dict[tuple[str, str], str]:
    return {key: r.detail for key, r in rows_by_key(rows).items() if r.status == "FAIL"}


# --------------------------------------------------------------------------- outputs


def test_outputs_parse_into_the_expected_shape() -> None:
    deployed = DeployedStack.parse(OUTPUTS)
    assert (deployed.env_label, deployed.url, deployed.publish_mode) == ("test", "http://localhost:30080/", "host")
    assert {role: deployed.service(role) for role in ROLES} == {
        "logging": "logging-logspout-1",
        "mysql": "db-mysql-1",
        "wordpress": "site-wordpress-1",
    }
    assert {role: deployed.secrets(role) for role in ROLES} == {
        "logging": (),
        "mysql": ("db-root-password-1", "db-user-password-1"),
        "wordpress": ("db-user-password-1",),
    }
    assert Expected.parse(OUTPUTS, stack="dev") == Expected(deployed, stack="dev")
    assert EXPECTED.service_names == ("logging-logspout-1", "db-mysql-1", "site-wordpress-1")


def test_outputs_problems_are_reported_together() -> None:
    broken = {k: v for k, v in OUTPUTS.items() if k not in ("url", "mysqlService")}
    broken.update(envLabel="[secret]", wordpressSecrets="db-user", publishMode="")
    with pytest.raises(OutputsError) as info:
        DeployedStack.parse(broken)
    message = str(info.value)
    assert "missing output(s): url, mysqlService" in message
    assert "output envLabel is marked secret" in message
    assert "output wordpressSecrets must be a list of names" in message
    assert "output publishMode must be a non-empty string" in message


def test_outputs_url_must_be_http() -> None:
    with pytest.raises(OutputsError, match="http"):
        DeployedStack.parse({**OUTPUTS, "url": "localhost:30080"})
    # verify can't run on such outputs: exit 2, not a traceback.
    with pytest.raises(VerifyError, match="output url must be an http"):
        Expected.parse({**OUTPUTS, "url": "localhost:30080"})


def test_outputs_file_and_stdin(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_text(json.dumps(OUTPUTS))
    assert read_outputs_file(str(path)) == OUTPUTS
    assert read_outputs_file("-", io.StringIO(json.dumps(OUTPUTS))) == OUTPUTS
    with pytest.raises(VerifyError, match="cannot read outputs file"):
        read_outputs_file(str(tmp_path / "missing.json"))
    path.write_text("not json")
    with pytest.raises(VerifyError, match="is not JSON"):
        read_outputs_file(str(path))
    path.write_text("[1, 2]")
    with pytest.raises(VerifyError, match="must be a JSON object"):
        read_outputs_file(str(path))


def test_stack_outputs_come_from_the_pulumi_cli() -> None:
    calls: list[list[str]] = []

    def run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        calls.append(list(args))
        return subprocess.CompletedProcess(args, 0, json.dumps(OUTPUTS), "")

    assert read_stack_outputs("dev", run) == OUTPUTS
    # Never --show-secrets: the verifier only needs names.
    assert calls == [["pulumi", "stack", "output", "--json", "--stack", "dev"]]


def test_stack_outputs_cli_failures_are_explained() -> None:
    def failing(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 255, "", "error: no stack named 'nope' found\n")

    def missing(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError("pulumi")

    with pytest.raises(VerifyError, match=r"failed \(255\): error: no stack named 'nope' found$"):
        read_stack_outputs("nope", failing)
    with pytest.raises(VerifyError, match=r"pulumi CLI not found.*--outputs FILE"):
        read_stack_outputs("dev", missing)


# --------------------------------------------------------------------------- evaluation


LOGGED_IN = DatabaseLogins(node="node1", user_error=None, root_error=None)


def test_healthy_stack_passes_every_row_in_a_stable_order() -> None:
    rows = evaluate(EXPECTED, facts(), HTTP_OK, Inside(LOGGED_IN))
    assert [(r.check, r.target, r.status) for r in rows] == [
        ("service", "logging logging-logspout-1", "PASS"),
        ("converged", "logging logging-logspout-1", "PASS"),
        ("healthy", "logging logging-logspout-1", "PASS"),
        ("placement", "logging logging-logspout-1", "PASS"),
        ("service", "mysql db-mysql-1", "PASS"),
        ("converged", "mysql db-mysql-1", "PASS"),
        ("healthy", "mysql db-mysql-1", "PASS"),
        ("ports", "mysql db-mysql-1", "PASS"),
        ("secrets", "mysql db-mysql-1", "PASS"),
        ("database", "mysql db-mysql-1", "PASS"),
        ("service", "wordpress site-wordpress-1", "PASS"),
        ("converged", "wordpress site-wordpress-1", "PASS"),
        ("healthy", "wordpress site-wordpress-1", "PASS"),
        ("published", "wordpress site-wordpress-1", "PASS"),
        ("secrets", "wordpress site-wordpress-1", "PASS"),
        ("http", "http://localhost:30080/", "PASS"),
    ]
    by_key = rows_by_key(rows)
    assert by_key["converged", "logging"].detail == "2/2 eligible node(s) running a task"
    assert by_key["placement", "logging"].detail == "one task on each node labelled env=test: node1, node2"
    assert by_key["ports", "mysql"].detail == "nothing published (endpoint mode dnsrr)"
    assert by_key["secrets", "mysql"].detail == (
        "db-root-password-1 -> /run/secrets/mysql-root-password (MYSQL_ROOT_PASSWORD_FILE); "
        "db-user-password-1 -> /run/secrets/mysql-user-password (MYSQL_PASSWORD_FILE)"
    )
    assert by_key["secrets", "wordpress"].detail == (
        "db-user-password-1 -> /run/secrets/wordpress-db-password "
        "(WORDPRESS_DB_PASSWORD_FILE, same secret as mysql's MYSQL_PASSWORD_FILE)"
    )
    assert by_key["published", "wordpress"].detail == "30080->80/tcp (host)"
    assert by_key["http", "http"].detail == "HTTP 302 (1 attempt(s), 0.0s)"
    assert exit_code(rows) == 0


def test_missing_service_fails_all_its_rows_and_nothing_else() -> None:
    rows = evaluate(EXPECTED, facts(wordpress=None), HTTP_OK)
    assert failed(rows) == {
        ("service", "wordpress"): "no such service on this swarm",
        ("converged", "wordpress"): "service not found",
        ("healthy", "wordpress"): "service not found",
        ("published", "wordpress"): "service not found",
        ("secrets", "wordpress"): "service not found",
    }
    assert exit_code(rows) == 1
    # Without mysql, WordPress's password file can't be shown to be mysql's: that row fails too.
    rows = evaluate(EXPECTED, facts(mysql=None), HTTP_OK)
    assert failed(rows) == {
        ("service", "mysql"): "no such service on this swarm",
        ("converged", "mysql"): "service not found",
        ("healthy", "mysql"): "service not found",
        ("ports", "mysql"): "service not found",
        ("secrets", "mysql"): "service not found",
        ("database", "mysql"): "service not found",
        ("secrets", "wordpress"): "WORDPRESS_DB_PASSWORD_FILE: cannot compare with mysql's MYSQL_PASSWORD_FILE "
        "secret, the mysql service is missing",
    }


def test_service_labels_must_name_the_role_and_the_stack() -> None:
    wrong = replace(MYSQL, labels={ROLE_LABEL: "wordpress", STACK_LABEL: "prod"})
    rows = evaluate(EXPECTED, facts(mysql=wrong), HTTP_OK)
    assert failed(rows) == {
        ("service", "mysql"): "label wordpress-swarm.role='wordpress', expected 'mysql'; "
        "label wordpress-swarm.stack='prod', expected 'dev'"
    }
    # Outputs read from a file don't name the stack: only the role is checked then.
    rows = evaluate(
        replace(EXPECTED, stack=None),
        facts(mysql=replace(MYSQL, labels=labels("mysql") | {STACK_LABEL: "x"})),
        HTTP_OK,
    )
    assert failed(rows) == {}


def test_replicated_service_short_of_replicas_fails_converged_with_the_reason() -> None:
    pending = task("", state="pending", slot=2, error="no suitable node (host-mode port already in use on 1 node)")
    wordpress = replace(WORDPRESS, replicas=2, tasks=(*WORDPRESS.tasks, pending))
    rows = evaluate(EXPECTED, facts(wordpress=wordpress), HTTP_OK)
    assert failed(rows) == {
        ("converged", "wordpress"): "1/2 replicas running; slot 2 on no node yet: pending "
        "(no suitable node (host-mode port already in use on 1 node))"
    }


def test_exited_task_without_replacement_names_the_last_failure() -> None:
    gone = task(
        "n1", state="failed", desired="shutdown", error="task: non-zero exit (1)", timestamp="2026-01-01T00:00:02Z"
    )
    older = task("n1", state="failed", desired="shutdown", error="older", timestamp="2026-01-01T00:00:01Z")
    rows = evaluate(EXPECTED, facts(wordpress=replace(WORDPRESS, tasks=(older, gone))), HTTP_OK)
    assert failed(rows)["converged", "wordpress"] == "0/1 replicas running; last task failed: task: non-zero exit (1)"


@pytest.mark.parametrize(
    ("ended", "current", "detail"),
    [
        pytest.param(
            # `docker kill` of the task's container; the replacement waits out the restart delay.
            task("n2", state="failed", desired="shutdown", error="task: non-zero exit (137)", exit_code=137),
            (task("n2", state="ready", desired="ready", message="prepared"),),
            "0/1 replicas running; slot 1 on node2: ready (prepared); last task failed: task: non-zero exit (137)",
            id="killed-restart-pending",
        ),
        pytest.param(
            # The command exited 0 and the restart policy is 'none' (or 'on-failure'): no replacement.
            task("n2", state="complete", desired="shutdown", message="finished", exit_code=0),
            (),
            "0/1 replicas running; last task complete: exit code 0 (finished)",
            id="exited-no-restart",
        ),
        pytest.param(
            task("n2", state="rejected", desired="shutdown", error="invalid mount config"),
            (task("", state="pending", desired="running"),),
            "0/1 replicas running; slot 1 on no node yet: pending; last task rejected: invalid mount config",
            id="rejected-then-pending",
        ),
    ],
)
def test_stopped_task_fails_converged_with_its_state_and_exit(
    ended: TaskFacts, current: tuple[TaskFacts, ...], detail: str
) -> None:
    rows = evaluate(EXPECTED, facts(wordpress=replace(WORDPRESS, tasks=(ended, *current))), HTTP_OK)
    assert failed(rows)["converged", "wordpress"] == detail
    # Nothing runs: the health row fails alongside, with the same last task.
    assert set(failed(rows)) == {("converged", "wordpress"), ("healthy", "wordpress")}
    assert failed(rows)["healthy", "wordpress"] == "no task running; " + detail.rpartition("; ")[2]


def test_tasks_on_a_down_node_do_not_count_as_running() -> None:
    down = replace(N2, state="down")
    rows = evaluate(EXPECTED, facts(nodes=(N1, down, N3)), HTTP_OK)
    assert failed(rows)["converged", "wordpress"].startswith("0/1 replicas running")
    # The logging daemon only needs the ready labelled nodes; the down one is named, not counted.
    assert rows_by_key(rows)["placement", "logging"].detail == (
        "one task on each node labelled env=test: node1; not counted: node2 (down, active)"
    )


def test_update_in_progress_is_not_converged() -> None:
    paused = replace(MYSQL, update_state="paused", update_message="update paused due to failure")
    rows = evaluate(EXPECTED, facts(mysql=paused), HTTP_OK)
    assert failed(rows) == {("converged", "mysql"): "update paused: update paused due to failure"}


def test_global_service_desired_count_follows_its_constraints_and_node_availability() -> None:
    drained = replace(N2, availability="drain")
    logging = replace(LOGGING, tasks=(task("n1", slot=None),))
    rows = evaluate(EXPECTED, facts(logging=logging, nodes=(N1, drained, N3)), HTTP_OK)
    assert rows_by_key(rows)["converged", "logging"].detail == "1/1 eligible node(s) running a task"
    assert failed(rows) == {}


def test_task_waiting_for_its_health_check_fails_healthy() -> None:
    starting = task("n1", state="starting")
    earlier = task(
        "n1", state="failed", desired="shutdown", error="task: non-zero exit (137): dockerexec: unhealthy container"
    )
    rows = evaluate(EXPECTED, facts(mysql=replace(MYSQL, tasks=(earlier, starting))), HTTP_OK)
    assert failed(rows) == {
        ("converged", "mysql"): "0/1 replicas running; slot 1 on node1: starting; "
        "last task failed: task: non-zero exit (137): dockerexec: unhealthy container",
        ("healthy", "mysql"): "waiting for its health check: slot 1 on node1: starting; "
        "1 earlier task(s) failed their health check",
    }


def test_no_started_task_fails_healthy_with_the_last_failure() -> None:
    earlier = task(
        "n1", state="failed", desired="shutdown", error="task: non-zero exit (137): dockerexec: unhealthy container"
    )
    pending = task("", state="pending", slot=1)
    rows = evaluate(EXPECTED, facts(mysql=replace(MYSQL, tasks=(earlier, pending))), HTTP_OK)
    assert failed(rows)["healthy", "mysql"] == (
        "no task running; last task failed: task: non-zero exit (137): dockerexec: unhealthy container; "
        "1 earlier task(s) failed their health check"
    )


def test_local_container_reporting_unhealthy_fails_healthy() -> None:
    sick = replace(MYSQL.tasks[0], container_health="unhealthy")
    rows = evaluate(EXPECTED, facts(mysql=replace(MYSQL, tasks=(sick,))), HTTP_OK)
    assert failed(rows) == {("healthy", "mysql"): "container unhealthy: slot 1 on node1: running"}


def test_earlier_health_failures_are_noted_on_a_healthy_service() -> None:
    earlier = task("n1", state="failed", desired="shutdown", error="dockerexec: unhealthy container", slot=1)
    rows = evaluate(EXPECTED, facts(mysql=replace(MYSQL, tasks=(earlier, *MYSQL.tasks))), HTTP_OK)
    assert rows_by_key(rows)["healthy", "mysql"].detail == (
        "health check passed on 1 running task(s) (1 earlier task(s) failed their health check)"
    )
    assert failed(rows) == {}


def test_service_without_health_check_has_no_healthy_row_and_zero_replicas_pass() -> None:
    wordpress = replace(WORDPRESS, has_healthcheck=False)
    rows = evaluate(EXPECTED, facts(wordpress=wordpress), HTTP_OK)
    assert ("healthy", "wordpress") not in rows_by_key(rows)
    mysql = replace(MYSQL, replicas=0, tasks=())
    rows = evaluate(EXPECTED, facts(mysql=mysql), HTTP_OK)
    by_key = rows_by_key(rows)
    assert (by_key["converged", "mysql"].detail, by_key["healthy", "mysql"].detail) == (
        "0/0 replicas running",
        "no tasks desired",
    )


@pytest.mark.parametrize(
    ("logging", "nodes", "detail"),
    [
        pytest.param(
            replace(
                LOGGING,
                tasks=(task("n1", slot=None), task("n2", state="pending", slot=None, error="insufficient memory")),
            ),
            (N1, N2, N3),
            "node2: no running task (pending: insufficient memory)",
            id="pending-on-labelled-node",
        ),
        pytest.param(
            replace(
                LOGGING, constraints=("node.labels.env==test", "node.hostname!=node2"), tasks=(task("n1", slot=None),)
            ),
            (N1, N2, N3),
            "node2: no task, the service's constraint node.hostname!=node2 excludes it",
            id="constraint-excludes-labelled-node",
        ),
        pytest.param(
            replace(LOGGING, tasks=(*LOGGING.tasks, task("n3", slot=None))),
            (N1, N2, N3),
            "node3: 1 task(s) on a node not labelled env=test",
            id="task-on-unlabelled-node",
        ),
        pytest.param(
            replace(LOGGING, tasks=(*LOGGING.tasks, replace(task("n2", slot=None), id="second"))),
            (N1, N2, N3),
            "node2: 2 running tasks",
            id="two-tasks-on-one-node",
        ),
        pytest.param(LOGGING, (N3,), "no ready node is labelled env=test", id="no-labelled-node"),
        pytest.param(
            replace(LOGGING, mode="replicated", replicas=2),
            (N1, N2, N3),
            "mode is replicated, expected global",
            id="not-global",
        ),
    ],
)
def test_logging_placement_failures(logging: ServiceFacts, nodes: Sequence[NodeFacts], detail: str) -> None:
    rows = evaluate(EXPECTED, facts(logging=logging, nodes=nodes), HTTP_OK)
    assert rows_by_key(rows)["placement", "logging"] == Row("placement", "logging logging-logspout-1", "FAIL", detail)


def test_env_label_matches_case_insensitively_like_swarm_constraints() -> None:
    rows = evaluate(expected_with(envLabel="TEST"), facts(), HTTP_OK)
    assert failed(rows) == {}


@pytest.mark.parametrize(
    ("constraint", "matches"),
    [
        ("node.labels.env==test", True),
        ("node.labels.env == Test", True),
        ("node.labels.env!=test", False),
        ("node.labels.zone==a", False),  # a missing label is ""
        ("node.labels.zone!=a", True),
        ("node.hostname==NODE1", True),
        ("node.role==worker", False),
        ("node.id==n1", True),
        ("engine.labels.disk==ssd", False),
        ("node.ip==10.0.0.1", True),  # not in the facts: assumed met
    ],
)
def test_constraint_matching(constraint: str, matches: bool) -> None:
    assert constraint_matches(constraint, N1) is matches


def test_mysql_publishing_a_port_fails() -> None:
    mysql = replace(MYSQL, endpoint_mode="vip", ports=(PortFacts(3306, 3306, "tcp", "ingress"),))
    rows = evaluate(EXPECTED, facts(mysql=mysql), HTTP_OK)
    assert failed(rows) == {("ports", "mysql"): "publishes 3306->3306/tcp (ingress)"}


def test_wordpress_port_must_match_the_url_and_publish_mode() -> None:
    ingress = replace(WORDPRESS, ports=(PortFacts(80, 30080, "tcp", "ingress"),))
    assert failed(evaluate(EXPECTED, facts(wordpress=ingress), HTTP_OK)) == {
        ("published", "wordpress"): "30080->80/tcp (ingress), expected host mode"
    }
    elsewhere = replace(WORDPRESS, ports=(PortFacts(80, 30081, "tcp", "host"),))
    assert failed(evaluate(EXPECTED, facts(wordpress=elsewhere), HTTP_OK)) == {
        (
            "published",
            "wordpress",
        ): "port 30080 of http://localhost:30080/ is not published (publishes 30081->80/tcp (host))"
    }
    https = expected_with(url="https://example.test/")
    assert failed(evaluate(https, facts(), replace(HTTP_OK, url=https.deployed.url))) == {
        (
            "published",
            "wordpress",
        ): "port 443 of https://example.test/ is not published (publishes 30080->80/tcp (host))"
    }


def test_secret_problems_are_each_named() -> None:
    mysql = replace(
        MYSQL,
        secrets=(SecretRef("db-root-password-1", ""),),
        tasks=(task("n1", secret_names=("db-root-password-1",)),),
    )
    rows = evaluate(EXPECTED, facts(mysql=mysql), HTTP_OK)
    assert failed(rows) == {
        ("secrets", "mysql"): "db-root-password-1: attached without a target file; "
        "db-user-password-1: not attached to the service; "
        "MYSQL_PASSWORD_FILE=/run/secrets/mysql-user-password: no secret is mounted at that path (secret files: none); "
        "MYSQL_ROOT_PASSWORD_FILE=/run/secrets/mysql-root-password: no secret is mounted at that path "
        "(secret files: none)",
        ("secrets", "wordpress"): "WORDPRESS_DB_PASSWORD_FILE: cannot compare with mysql's MYSQL_PASSWORD_FILE "
        "secret, /run/secrets/mysql-user-password has no secret mounted",
    }
    # Attached in the spec but a running task predates it; and the secret object is gone.
    rows = evaluate(
        EXPECTED,
        facts(wordpress=replace(WORDPRESS, tasks=(task("n2"),)), secret_names=frozenset({"db-root-password-1"})),
        HTTP_OK,
    )
    assert failed(rows) == {
        ("secrets", "mysql"): "db-user-password-1: no such secret on the swarm",
        ("secrets", "wordpress"): "db-user-password-1: no such secret on the swarm; "
        "db-user-password-1: missing from 1 of 1 running task(s)",
    }


@pytest.mark.parametrize(
    ("mysql", "wordpress", "detail"),
    [
        pytest.param(
            # The image reads a file nothing is mounted at: it would start without its password.
            replace(MYSQL, file_env={**MYSQL_FILE_ENV, "MYSQL_ROOT_PASSWORD_FILE": "/run/secrets/mysql-root"}),
            WORDPRESS,
            {
                ("secrets", "mysql"): "MYSQL_ROOT_PASSWORD_FILE=/run/secrets/mysql-root: no secret is mounted at "
                "that path (secret files: /run/secrets/mysql-root-password, /run/secrets/mysql-user-password)"
            },
            id="mysql-path-mismatch",
        ),
        pytest.param(
            MYSQL,
            replace(WORDPRESS, secrets=(replace(WORDPRESS_USER_SECRET, target="/run/secrets/db-password"),)),
            {
                ("secrets", "wordpress"): "WORDPRESS_DB_PASSWORD_FILE=/run/secrets/wordpress-db-password: no secret "
                "is mounted at that path (secret files: /run/secrets/db-password)"
            },
            id="wordpress-path-mismatch",
        ),
        pytest.param(
            MYSQL,
            # Both secrets attached, as the outputs expect, but the password file is the root one.
            replace(
                WORDPRESS,
                secrets=(
                    replace(WORDPRESS_USER_SECRET, target="/run/secrets/user"),
                    replace(ROOT_SECRET, target="/run/secrets/wordpress-db-password"),
                ),
            ),
            {
                ("secrets", "wordpress"): "WORDPRESS_DB_PASSWORD_FILE=/run/secrets/wordpress-db-password is secret "
                "db-root-password-1, but mysql's MYSQL_PASSWORD_FILE=/run/secrets/mysql-user-password is secret "
                "db-user-password-1: WordPress would log in with another password"
            },
            id="different-secret",
        ),
        pytest.param(
            # Same name, another object (ids win when both are known).
            MYSQL,
            replace(WORDPRESS, secrets=(replace(WORDPRESS_USER_SECRET, id="sec-other"),)),
            {
                ("secrets", "wordpress"): "WORDPRESS_DB_PASSWORD_FILE=/run/secrets/wordpress-db-password is secret "
                "db-user-password-1, but mysql's MYSQL_PASSWORD_FILE=/run/secrets/mysql-user-password is secret "
                "db-user-password-1: WordPress would log in with another password"
            },
            id="different-secret-id",
        ),
        pytest.param(
            replace(MYSQL, file_env={"MYSQL_ROOT_PASSWORD_FILE": "/run/secrets/mysql-root-password"}),
            WORDPRESS,
            {
                ("secrets", "wordpress"): "WORDPRESS_DB_PASSWORD_FILE: cannot compare with mysql's "
                "MYSQL_PASSWORD_FILE secret, it is not set to a file under /run/secrets/"
            },
            id="mysql-password-file-unset",
        ),
        pytest.param(
            MYSQL,
            replace(WORDPRESS, file_env={}),
            {("secrets", "wordpress"): "WORDPRESS_DB_PASSWORD_FILE is not set"},
            id="wordpress-password-file-unset",
        ),
        pytest.param(
            MYSQL,
            replace(WORDPRESS, file_env={"WORDPRESS_DB_PASSWORD_FILE": "/etc/wordpress-db-password"}),
            {
                ("secrets", "wordpress"): "WORDPRESS_DB_PASSWORD_FILE=/etc/wordpress-db-password is not a file "
                "under /run/secrets/"
            },
            id="wordpress-password-file-outside-secrets",
        ),
        pytest.param(
            MYSQL,
            # A value that isn't a path might be a password set by mistake: never shown.
            replace(WORDPRESS, file_env={"WORDPRESS_DB_PASSWORD_FILE": "hunter2"}),
            {("secrets", "wordpress"): "WORDPRESS_DB_PASSWORD_FILE (not a path) is not a file under /run/secrets/"},
            id="wordpress-password-file-not-a-path",
        ),
    ],
)
def test_secret_files_must_be_mounted_where_the_env_says_and_share_the_password(
    mysql: ServiceFacts, wordpress: ServiceFacts, detail: dict[tuple[str, str], str]
) -> None:
    rows = evaluate(EXPECTED, facts(mysql=mysql, wordpress=wordpress), HTTP_OK)
    assert failed(rows) == detail


def test_secret_targets_are_normalised_and_other_file_variables_ignored() -> None:
    # A relative File.Name is mounted under /run/secrets; `.`/`//` in either spelling don't matter.
    mysql = replace(
        MYSQL,
        secrets=(
            replace(ROOT_SECRET, target="mysql-root-password"),
            replace(MYSQL_USER_SECRET, target="./mysql-user-password"),
        ),
        file_env={
            "MYSQL_ROOT_PASSWORD_FILE": "/run/secrets//mysql-root-password",
            "MYSQL_PASSWORD_FILE": "/run/secrets/./mysql-user-password",
            "TLS_CERT_FILE": "/etc/ssl/cert.pem",  # not a secret file: not checked
        },
    )
    wordpress = replace(WORDPRESS, secrets=(replace(WORDPRESS_USER_SECRET, id=""),))  # ids unknown: names compared
    rows = evaluate(EXPECTED, facts(mysql=mysql, wordpress=wordpress), HTTP_OK)
    assert failed(rows) == {}
    assert rows_by_key(rows)["secrets", "mysql"].detail == (
        "db-root-password-1 -> /run/secrets/mysql-root-password (MYSQL_ROOT_PASSWORD_FILE); "
        "db-user-password-1 -> /run/secrets/mysql-user-password (MYSQL_PASSWORD_FILE)"
    )


@pytest.mark.parametrize(
    ("result", "status", "detail"),
    [
        (HttpResult("http://x/", 404, None, 1, 0.2), "PASS", "HTTP 404 (1 attempt(s), 0.2s)"),
        (HttpResult("http://x/", 502, None, 5, 8.04), "FAIL", "HTTP 502 (5 attempt(s), 8.0s)"),
        (HttpResult("http://x/", None, "timed out", 3, 15.0), "FAIL", "timed out (3 attempt(s), 15.0s)"),
    ],
)
def test_http_row(result: HttpResult, status: Status, detail: str) -> None:
    assert check_http(result) == Row("http", "http://x/", status, detail)


# --------------------------------------------------------------------------- HTTP probe


class _Handler(BaseHTTPRequestHandler):
    statuses: ClassVar[list[int]] = []

    def do_GET(self) -> None:
        status = self.statuses.pop(0) if self.statuses else 200
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "http://unresolvable.invalid/wp-admin/install.php")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"statuses": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", handler
    server.shutdown()
    server.server_close()


def test_probe_does_not_follow_redirects(http_server: tuple[str, type[_Handler]]) -> None:
    url, handler = http_server
    handler.statuses = [302]
    result = probe_http(url, attempts=3, sleep=lambda _: None)
    assert (result.status, result.error, result.attempts) == (302, None, 1)


def test_probe_retries_server_errors_then_stops(http_server: tuple[str, type[_Handler]]) -> None:
    url, handler = http_server
    handler.statuses = [503, 500, 200]
    slept: list[float] = []
    assert probe_http(url, attempts=5, delay=1.5, sleep=slept.append).status == 200
    assert slept == [1.5, 1.5]
    handler.statuses = [503] * 3
    result = probe_http(url, attempts=3, delay=0, sleep=slept.append)
    assert (result.status, result.attempts) == (503, 3)


def test_probe_gives_up_after_bounded_attempts_on_a_closed_port() -> None:
    slept: list[float] = []
    # Port 9 (discard) on loopback: nothing listens there, so the connection is refused at once.
    result = probe_http("http://127.0.0.1:9/", attempts=3, delay=2, sleep=slept.append)
    assert (result.status, result.attempts, slept) == (None, 3, [2, 2])
    assert "refused" in (result.error or "").lower()


# --------------------------------------------------------------------------- output


def test_table_has_aligned_columns_and_a_summary() -> None:
    rows = [Row("service", "mysql db", "PASS", "ok"), Row("http", "http://localhost:30080/", "FAIL", "HTTP 502")]
    assert render_table(rows).splitlines() == [
        "CHECK    TARGET                   STATUS  DETAIL",
        "service  mysql db                 PASS    ok",
        "http     http://localhost:30080/  FAIL    HTTP 502",
        "1 of 2 checks FAILED",
    ]
    assert render_table(rows[:1]).splitlines()[-1] == "all 1 checks passed"


def test_json_output_lists_rows_and_overall_result() -> None:
    rows = [Row("service", "mysql db", "PASS", "ok")]
    assert json.loads(render_json(rows)) == {
        "ok": True,
        "rows": [{"check": "service", "target": "mysql db", "status": "PASS", "detail": "ok"}],
    }


# --------------------------------------------------------------------------- command line


def test_arguments() -> None:
    args = cli.parse_args(["--stack", "dev", "--docker-host", "ssh://deploy@m", "--json", "--http-attempts", "2"])
    assert (args.stack, args.outputs, args.docker_host, args.json, args.http_attempts) == (
        "dev",
        None,
        "ssh://deploy@m",
        True,
        2,
    )
    args = cli.parse_args(["--outputs", "-"])
    assert (args.outputs, args.json, args.http_timeout, args.http_attempts, args.http_delay) == (
        "-",
        False,
        5.0,
        5,
        2.0,
    )


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--stack", "dev", "--outputs", "x.json"],
        ["--outputs", "x", "--http-attempts", "0"],
        ["--outputs", "x", "--http-timeout", "-1"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.parse_args(argv)
    assert info.value.code == 2
    assert "usage: python -m swarmops.verify" in capsys.readouterr().err


class _FakeClient:
    def close(self) -> None:
        pass


@pytest.fixture
def fake_swarm(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replaces the Docker and HTTP I/O of main() with canned facts."""
    state: dict[str, Any] = {"facts": facts(), "http": HTTP_OK, "hosts": [], "ssh_opts": [], "detailed": []}

    def client(host: str | None, ssh_opts: Sequence[str] = (), **_kw: int) -> _FakeClient:
        state["hosts"].append(host)
        state["ssh_opts"].append(tuple(ssh_opts))
        return _FakeClient()

    def gather(_client: _FakeClient, _docker_host: str, *, detailed: Sequence[str] = ()) -> SwarmFacts:
        state["detailed"].append(tuple(detailed))
        return state["facts"]

    monkeypatch.setattr(cli, "reachable_client", client)
    monkeypatch.setattr(cli, "gather_facts", gather)
    monkeypatch.setattr(cli, "probe_http", lambda url, **_kw: replace(state["http"], url=url))
    monkeypatch.setattr(cli, "look_inside", lambda _client, _expected: Inside(LOGGED_IN))
    return state


def run_main(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, stdout=out, stderr=err, stdin=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def test_main_passes_with_exit_0(fake_swarm: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS))
    code, out, err = run_main(["--outputs", str(path), "--docker-host", "ssh://deploy@m"])
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "all 16 checks passed"
    assert fake_swarm["hosts"] == ["ssh://deploy@m"]
    # The tasks of exactly the stack's three services are read.
    assert fake_swarm["detailed"] == [("logging-logspout-1", "db-mysql-1", "site-wordpress-1")]


def test_main_fails_with_exit_1_and_json_from_stdin(fake_swarm: dict[str, Any]) -> None:
    fake_swarm["http"] = HttpResult("", None, "connection refused", 5, 8.0)
    code, out, _ = run_main(["--outputs", "-", "--json"], stdin=json.dumps(OUTPUTS))
    report = json.loads(out)
    assert (code, report["ok"]) == (1, False)
    assert [r["check"] for r in report["rows"] if r["status"] == "FAIL"] == ["http"]
    assert fake_swarm["hosts"] == [None]


def test_main_reads_the_stack_through_pulumi(fake_swarm: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    commands: list[list[str]] = []

    def run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        commands.append(list(args))
        if args[:4] == ["pulumi", "config", "get", "dockerHost"]:
            return subprocess.CompletedProcess(args, 0, "ssh://deploy@swarm-manager\n", "")
        if args[:4] == ["pulumi", "config", "get", "dockerSshOpts"]:
            return subprocess.CompletedProcess(args, 0, '["-o", "ProxyJump=bastion"]\n', "")
        return subprocess.CompletedProcess(args, 0, json.dumps(OUTPUTS), "")

    wrong_stack = replace(MYSQL, labels=labels("mysql") | {STACK_LABEL: "prod"})
    fake_swarm["facts"] = facts(mysql=wrong_stack)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["--stack", "dev", "--json"], stdout=out, stderr=err, run=run)
    rows = json.loads(out.getvalue())["rows"]
    # --stack also names the stack each service must be labelled with.
    assert (code, [r["detail"] for r in rows if r["status"] == "FAIL"]) == (
        1,
        ["label wordpress-swarm.stack='prod', expected 'dev'"],
    )
    # With neither --docker-host nor DOCKER_HOST, the stack's own dockerHost is checked.
    assert commands == [
        ["pulumi", "stack", "output", "--json", "--stack", "dev"],
        ["pulumi", "config", "get", "dockerHost", "--stack", "dev"],
        ["pulumi", "config", "get", "dockerSshOpts", "--stack", "dev"],
    ]
    assert fake_swarm["hosts"] == ["ssh://deploy@swarm-manager"]
    # ... through the stack's own ssh options, as the program's connections are.
    assert fake_swarm["ssh_opts"] == [("-o", "ProxyJump=bastion")]


def test_a_stack_with_malformed_ssh_options_cannot_be_verified() -> None:
    def run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 0, "-o ProxyJump=bastion\n", "")

    with pytest.raises(VerifyError, match="dockerSshOpts of stack prod is not a JSON list"):
        stack_ssh_opts("prod", run)
    assert stack_ssh_opts("prod", lambda a: subprocess.CompletedProcess(a, 1, "", "not set")) == ()


def test_docker_host_precedence_with_a_stack(fake_swarm: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    def run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        if args[:4] == ["pulumi", "config", "get", "dockerHost"]:
            return subprocess.CompletedProcess(args, 0, "ssh://deploy@from-config\n", "")
        if args[:3] == ["pulumi", "config", "get"]:
            return subprocess.CompletedProcess(args, 1, "", "not set")
        return subprocess.CompletedProcess(args, 0, json.dumps(OUTPUTS), "")

    def hosts_for(argv: list[str]) -> list[str | None]:
        fake_swarm["hosts"] = []
        cli.main(argv, stdout=io.StringIO(), stderr=io.StringIO(), run=run)
        return fake_swarm["hosts"]

    monkeypatch.setenv("DOCKER_HOST", "ssh://deploy@from-env")
    assert hosts_for(["--stack", "dev", "--docker-host", "ssh://deploy@flag"]) == ["ssh://deploy@flag"]
    assert hosts_for(["--stack", "dev"]) == [None]  # DOCKER_HOST is then used as is
    monkeypatch.delenv("DOCKER_HOST")
    assert hosts_for(["--stack", "dev"]) == ["ssh://deploy@from-config"]
    assert stack_docker_host("dev", lambda a: subprocess.CompletedProcess(a, 1, "", "no stack")) is None


def test_main_exits_2_when_it_cannot_verify(fake_swarm: dict[str, Any]) -> None:
    code, out, err = run_main(["--outputs", "-"], stdin="{}")
    assert (code, out) == (2, "")
    assert err.startswith("verify: stack outputs unusable: missing output(s): envLabel, url,")
    code, out, err = run_main(["--outputs", "-", "--json"], stdin="nope")
    assert code == 2
    assert json.loads(out)["ok"] is False
    assert "is not JSON" in json.loads(out)["error"]


def test_unreachable_docker_host_is_an_error_not_a_crash(tmp_path: Path) -> None:
    socket = f"unix://{tmp_path}/no-such.sock"
    code, out, err = run_main(["--outputs", "-", "--docker-host", socket], stdin=json.dumps(OUTPUTS))
    assert (code, out) == (EXIT_ERROR, "")
    assert err.startswith(f"verify: cannot reach the Docker host {socket}: ")


@pytest.mark.parametrize(("swarm_state", "is_manager"), [("inactive", False), ("active", False)])
def test_a_docker_host_that_is_no_swarm_manager_cannot_be_verified(
    fake_swarm: dict[str, Any], swarm_state: str, is_manager: bool
) -> None:
    fake_swarm["facts"] = SwarmFacts(docker_host="ssh://deploy@m", swarm_state=swarm_state, is_manager=is_manager)
    code, out, err = run_main(["--outputs", "-"], stdin=json.dumps(OUTPUTS))
    assert (code, out) == (EXIT_ERROR, "")
    assert err == "verify: the Docker host is not a swarm manager; point --docker-host at a manager\n"


# --------------------------------------------------------------------------- raw API -> facts (swarmlib.facts)


def test_facts_from_raw_api_objects() -> None:
    service = service_facts(
        {
            "ID": "s1",
            "Spec": {
                "Name": "db-mysql-1",
                "Labels": {ROLE_LABEL: "mysql"},
                "Mode": {"Replicated": {"Replicas": 1}},
                "TaskTemplate": {
                    "ContainerSpec": {
                        "Healthcheck": {"Test": ["CMD", "mysqladmin", "ping"]},
                        "Secrets": [{"SecretID": "x", "SecretName": "db-root", "File": {"Name": "/run/secrets/root"}}],
                        "Env": ["MYSQL_ROOT_PASSWORD_FILE=/run/secrets/root", "MYSQL_USER=wp", "ODD", "A_FILE=x=y"],
                    },
                    "Placement": {"Constraints": ["node.labels.env==test"]},
                },
                "EndpointSpec": {"Mode": "dnsrr"},
            },
            "Endpoint": {"Spec": {"Mode": "dnsrr"}},
            "UpdateStatus": {"State": "completed", "Message": "update completed"},
        },
        [],
    )
    assert service == ServiceFacts(
        id="s1",
        name="db-mysql-1",
        labels={ROLE_LABEL: "mysql"},
        mode="replicated",
        replicas=1,
        constraints=("node.labels.env==test",),
        has_healthcheck=True,
        endpoint_mode="dnsrr",
        secrets=(SecretRef("db-root", "/run/secrets/root", id="x"),),
        # Of the environment only the *_FILE variables are kept.
        file_env={"MYSQL_ROOT_PASSWORD_FILE": "/run/secrets/root", "A_FILE": "x=y"},
        update_state="completed",
        update_message="update completed",
    )
    published = service_facts(
        {
            "Spec": {"Mode": {"Global": {}}, "TaskTemplate": {"ContainerSpec": {"Healthcheck": {"Test": ["NONE"]}}}},
            "Endpoint": {
                "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 30080, "PublishMode": "host"}]
            },
        },
        [],
    )
    assert (published.mode, published.has_healthcheck, published.ports) == (
        "global",
        False,  # HEALTHCHECK NONE switches the image's check off
        (PortFacts(80, 30080, "tcp", "host"),),
    )
    node = node_facts(
        {
            "ID": "n1",
            "Spec": {"Role": "manager", "Availability": "active", "Labels": {"env": "test"}},
            "Description": {"Hostname": "vm", "Platform": {"OS": "linux", "Architecture": "x86_64"}, "Engine": {}},
            "Status": {"State": "ready"},
        }
    )
    assert node == NodeFacts("n1", "vm", "manager", "active", "ready", {"env": "test"}, {}, "linux", "x86_64")
    raw_task = {
        "ID": "t1",
        "NodeID": "n1",
        "Slot": 1,
        "DesiredState": "running",
        "Status": {"State": "starting", "Message": "starting", "Timestamp": "2026-01-01T00:00:00Z"},
        "Spec": {"ContainerSpec": {"Secrets": [{"SecretName": "db-root"}]}},
    }
    assert task_facts(raw_task) == TaskFacts(
        "t1", "n1", "running", "starting", "", "starting", "2026-01-01T00:00:00Z", 1, ("db-root",), None
    )
    # An exit code only once the container has ended: the API says 0 for a running one too.
    running = {**raw_task, "Status": {"State": "running", "ContainerStatus": {"ContainerID": "c1", "ExitCode": 0}}}
    assert task_facts(running).exit_code is None
    ended = {
        **raw_task,
        "DesiredState": "shutdown",
        "Status": {"State": "failed", "Err": "task: non-zero exit (137)", "ContainerStatus": {"ExitCode": 137}},
    }
    assert (task_facts(ended).state, task_facts(ended).exit_code) == ("failed", 137)


# --------------------------------------------------------------------------- the database's own logins


def test_a_database_that_lets_both_logins_in_passes() -> None:
    (row,) = [r for r in evaluate(EXPECTED, facts(), HTTP_OK, Inside(LOGGED_IN)) if r.check == "database"]
    assert (row.status, row.detail) == (
        "PASS",
        "the user logs in to its database and root on the socket (task on node1)",
    )


def test_a_half_initialised_database_fails_naming_the_recovery() -> None:
    half = DatabaseLogins(
        node="node1",
        user_error="ERROR 1045 (28000): Access denied for user 'wordpress'@'127.0.0.1' (using password: YES)",
        root_error="ERROR 1045 (28000): Access denied for user 'root'@'localhost' (using password: YES)",
    )
    rows = evaluate(EXPECTED, facts(), HTTP_OK, Inside(half))
    (row,) = [r for r in rows if r.check == "database"]
    assert row.status == "FAIL"
    assert "the user can't log in: ERROR 1045" in row.detail
    assert "root can't log in: ERROR 1045" in row.detail
    assert "initialised only part-way" in row.detail
    assert "docs/operations.md, 'A half-initialised database'" in row.detail
    assert exit_code(rows) == 1


def test_a_database_that_cant_be_entered_from_here_is_skipped_with_the_reason() -> None:
    why = "not tried: MySQL's task runs on swarm-db-1, not on the node verify talks to"
    rows = evaluate(EXPECTED, facts(), HTTP_OK, Inside(None, why))
    (row,) = [r for r in rows if r.check == "database"]
    assert (row.status, row.detail) == ("SKIP", why)
    assert exit_code(rows) == 0
    assert render_table(rows).splitlines()[-1] == f"all {len(rows) - 1} checks passed (1 not tried from here)"


@pytest.mark.parametrize(
    ("output", "user", "root"),
    [
        ("user: ok\nroot: ok\n", None, None),
        (
            "user: ERROR 1049 (42000): Unknown database 'wordpress'\nroot: ok\n",
            "ERROR 1049 (42000): Unknown database 'wordpress'",
            None,
        ),
        (
            "bash: mysql: command not found\n",
            "no user login result: bash: mysql: command not found",
            "no root login result: bash: mysql: command not found",
        ),
    ],
)
def test_the_login_scripts_answers_are_read_per_account(output: str, user: str | None, root: str | None) -> None:
    assert (database._error(output, "user"), database._error(output, "root")) == (user, root)  # pyright: ignore[reportPrivateUsage]


def test_the_login_script_puts_no_password_on_a_command_line() -> None:
    # The passwords are read from the secret files into option files on pipes (printf is a builtin).
    assert "--password" not in database.LOGIN_SCRIPT
    assert "-p" not in database.LOGIN_SCRIPT.split()
    assert '"$(cat "$file")"' in database.LOGIN_SCRIPT
    assert "--defaults-extra-file=<(printf" in database.LOGIN_SCRIPT
