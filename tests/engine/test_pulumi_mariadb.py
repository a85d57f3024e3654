"""The program's MySQL with a real database server (the lab mysql image, MariaDB behind the
official image's variables) under the real Pulumi CLI.

From another task on the stack's private overlay, `root` can't log in (MYSQL_ROOT_HOST=localhost:
the image creates no root@'%'), and the WordPress user can. The client is a one-shot swarm service
on the overlay (it is not attachable, so no `docker run` container can join) that reads both
passwords from the stack's own secrets into option files: no password on a command line.
WordPress runs no task here (replicas 0).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from docker.types import RestartPolicy, SecretReference

from stackconfig.names import STACK_LABEL
from swarmlib import services

from . import harness
from .pulumi_cli import Project, Stack, disposable_stack
from .test_pulumi_real import stack_config

STACK = f"mdb{harness.SESSION_ID}"

# Each login through an option file built inside the task (printf is a bash builtin).
CLIENT_SCRIPT = r"""
login() {  # user password-file
  printf '[client]\nuser=%s\npassword="%s"\n' "$1" "$(< "$2")" > /tmp/login.cnf
  mariadb --defaults-extra-file=/tmp/login.cnf --protocol=tcp --host=mysql --connect-timeout=5 \
    -N -e 'SELECT CURRENT_USER()' 2>&1
  echo "exit=$?"
}
umask 077
for _ in $(seq 60); do mariadb-admin ping --protocol=tcp --host=mysql --silent 2>/dev/null && break; sleep 1; done
echo "== root"; login root /run/secrets/root
echo "== user"; login wordpress /run/secrets/user
"""


@pytest.fixture(scope="module")
def mariadb_stack(pulumi_project: Project, engine: docker.DockerClient) -> Iterator[Stack]:
    with disposable_stack(pulumi_project, STACK, engine) as stack:
        yield stack


def test_root_cannot_log_in_from_another_task_and_the_wordpress_user_can(
    engine: docker.DockerClient,
    pulumi_project: Project,
    mariadb_stack: Stack,
    lab_images: dict[str, str],
    engine_resources: harness.TestResources,
) -> None:
    config = stack_config(lab_images, harness.free_tcp_port(), str(engine.info()["Name"]), wordpress={"replicas": 0})
    config["envLabel"] = f"mdb-{harness.SESSION_ID}"
    stack = pulumi_project.stack(STACK, config)
    stack.up()

    outputs = stack.outputs()
    root_secret, user_secret, _init_file = outputs["mysqlSecrets"]
    resources = stack.export()["deployment"]["resources"]
    (network,) = [r["id"] for r in resources if r["urn"].endswith("::db-net")]
    client = engine.services.create(
        lab_images["mysql"],
        command=["bash", "-c", CLIENT_SCRIPT],
        name=engine_resources.name("db-client"),
        labels=engine_resources.labels,
        networks=[network],
        secrets=[
            SecretReference(engine.secrets.get(root_secret).id, root_secret, filename="root"),
            SecretReference(engine.secrets.get(user_secret).id, user_secret, filename="user"),
        ],
        restart_policy=RestartPolicy(condition="none"),
        constraints=[f"node.labels.env=={config['envLabel']}"],
    )

    def finished() -> str | None:
        tasks = client.tasks()
        if tasks and tasks[0]["Status"]["State"] in ("complete", "failed"):
            return b"".join(client.logs(stdout=True, stderr=True)).decode(errors="replace")
        return None

    log = harness.wait_for(finished, timeout=120, interval=1, what="the client task")
    root_part, _, user_part = log.partition("== user")
    assert "Access denied for user 'root'" in root_part or "is not allowed to connect" in root_part, log
    assert "exit=1" in root_part, log
    assert "wordpress@%" in user_part, log
    assert "exit=0" in user_part, log


def database_row(stack: Stack) -> dict[str, Any]:
    verified = stack.verify()
    rows = [r for r in json.loads(verified.stdout)["rows"] if r["check"] == "database"]
    assert len(rows) == 1, verified.stdout + verified.stderr
    return rows[0]


def scale(engine: docker.DockerClient, service: str, replicas: int) -> None:
    """Until that many containers of it run, whatever their health (a half-initialised MySQL
    never passes its check); for 0, until none is left even stopped (one holds the volume)."""
    services.scale(engine, service, replicas)
    label: dict[str, str | list[str] | bool] = {"label": f"com.docker.swarm.service.name={service}"}
    harness.wait_for(
        lambda: len(engine.containers.list(all=replicas == 0, filters=label)) == replicas,
        timeout=120,
        what=f"{service} at {replicas} container(s)",
    )


def test_a_half_initialised_data_directory_is_caught_and_the_documented_recovery_works(
    engine: docker.DockerClient, pulumi_project: Project, mariadb_stack: Stack, lab_images: dict[str, str]
) -> None:
    """A first start killed after the data directory was created but before the users were: the
    image never initialises it again. The verifier's database row says so while the task is in its
    start period (with no account matching 127.0.0.1 its health check fails too, so the task would
    restart for ever); docs/operations.md's recovery then brings a fresh, initialised server."""
    stack = mariadb_stack
    mysql = stack.outputs()["mysqlService"]
    volume = f"wordpress-swarm-{STACK}-mysql-data"
    scale(engine, mysql, 0)
    engine.volumes.get(volume).remove(force=True)
    engine.volumes.create(name=volume, driver="local", labels={STACK_LABEL: STACK})
    # What a killed first start leaves: the system tables, no root password, no user, no database.
    engine.containers.run(
        lab_images["mysql"],
        ["mariadb-install-db", "--user=mysql", "--datadir=/var/lib/mysql", "--skip-test-db"],
        entrypoint=[],
        volumes={volume: {"bind": "/var/lib/mysql", "mode": "rw"}},
        remove=True,
    )
    scale(engine, mysql, 1)
    row = harness.wait_for(
        lambda: (r := database_row(stack))["status"] != "SKIP" and r, timeout=60, interval=2, what="a database row"
    )
    assert row["status"] == "FAIL", row
    assert "the user can't log in" in row["detail"], row
    assert "docs/operations.md, 'A half-initialised database'" in row["detail"], row

    # The recovery, as docs/operations.md gives it: nothing was ever stored there.
    scale(engine, mysql, 0)
    engine.volumes.get(volume).remove()
    stack.pulumi("refresh", "--yes", "--skip-preview")
    stack.up()
    assert database_row(stack)["status"] == "PASS"
