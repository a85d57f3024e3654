"""The program's MySQL with a real database server (MariaDB, tests/engine/mariadb_image.py, which
honours the official image's variables) under the real Pulumi CLI.

From another task on the stack's private overlay, `root` can't log in (MYSQL_ROOT_HOST=localhost:
the image creates no root@'%'), and the WordPress user can. The client is a one-shot swarm service
on the overlay (it is not attachable, so no `docker run` container can join) that reads both
passwords from the stack's own secrets into option files: no password on a command line.
WordPress runs no task here (replicas 0): its stand-in speaks only to the MySQL stand-in.
"""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
from docker.types import RestartPolicy, SecretReference

from . import harness
from .mariadb_image import MARIADB_TAG, ensure_mariadb_image
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
    try:
        ensure_mariadb_image(engine, MARIADB_TAG)
    except harness.HarnessError as exc:
        pytest.skip(f"cannot build the MariaDB test image: {exc}")
    with disposable_stack(pulumi_project, STACK, engine) as stack:
        yield stack


def test_root_cannot_log_in_from_another_task_and_the_wordpress_user_can(
    engine: docker.DockerClient,
    pulumi_project: Project,
    mariadb_stack: Stack,
    standin_images: dict[str, str],
    engine_resources: harness.TestResources,
) -> None:
    config = stack_config(
        standin_images,
        harness.free_tcp_port(),
        str(engine.info()["Name"]),
        mysql={"image": MARIADB_TAG, "memoryMb": 512},
        wordpress={"replicas": 0},
    )
    config["envLabel"] = f"mdb-{harness.SESSION_ID}"
    stack = pulumi_project.stack(STACK, config)
    stack.up()

    outputs = stack.outputs()
    root_secret, user_secret = outputs["mysqlSecrets"]
    resources = stack.export()["deployment"]["resources"]
    (network,) = [r["id"] for r in resources if r["urn"].endswith("::db-net")]
    client = engine.services.create(
        MARIADB_TAG,
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
