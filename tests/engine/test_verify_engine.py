"""`python -m swarmops.verify` against real swarms, on a busybox stand-in shaped like the product.

The stand-in has the product's three services and labels: a global 'logging' constrained to
node.labels.env==<label>, a replicated 'mysql' with a health check, two secrets mounted at the
product's /run/secrets/... paths named by its *_FILE variables and no published port (dnsrr), and
a replicated 'wordpress' (busybox httpd) with the same user-password secret under its own file
name, named by WORDPRESS_DB_PASSWORD_FILE, and a published port. WordPress publishes in host mode:
the ingress routing mesh needs IPVS, which this machine's kernel lacks, so an ingress port would
never answer here.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container
from docker.types import EndpointSpec, Healthcheck, RestartPolicy, SecretReference, ServiceMode

from stackconfig.names import (
    MYSQL_ROOT_PASSWORD_FILE,
    MYSQL_USER_PASSWORD_FILE,
    ROLE_LABEL,
    SECRETS_DIR,
    STACK_LABEL,
    WORDPRESS_DB_PASSWORD_FILE,
)
from swarmlib import services
from swarmops.verify import cli
from swarmops.verify.checks import evaluate
from swarmops.verify.http_probe import HttpResult
from swarmops.verify.stack import Expected

from . import harness, netns, swarm_tasks

SECOND = 1_000_000_000  # docker API durations are nanoseconds
STACK = "verify-standin"
COMMON: dict[str, Any] = {"init": True, "stop_grace_period": 1 * SECOND}  # init forwards SIGTERM: fast stops
# Passes once the secret is mounted, so a healthy mysql also proves the mount.
ROOT_PASSWORD_PATH = f"{SECRETS_DIR}/{MYSQL_ROOT_PASSWORD_FILE}"
MYSQL_HEALTHY = Healthcheck(
    test=["CMD", "test", "-s", ROOT_PASSWORD_PATH], interval=1 * SECOND, timeout=2 * SECOND, retries=2
)
MYSQL_UNHEALTHY = Healthcheck(test=["CMD", "false"], interval=1 * SECOND, timeout=2 * SECOND, retries=1)
FAST_HTTP = ["--http-attempts", "3", "--http-delay", "0.5", "--http-timeout", "2"]


@dataclass(frozen=True)
class StandIn:
    outputs: dict[str, Any]
    logging: str
    mysql: str
    wordpress: str


def deploy_standin(
    client: docker.DockerClient,
    image: str,
    res: harness.TestResources,
    env_label: str,
    *,
    url_host: str = "127.0.0.1",
    mysql_health: Healthcheck = MYSQL_HEALTHY,
    logging_constraints: Sequence[str] = (),
    wordpress_constraints: Sequence[str] = (),
    host_network: bool = False,
    mysql_command: Sequence[str] = ("sleep", "3600"),
    mysql_restart: RestartPolicy | None = None,
    wordpress_restart: RestartPolicy | None = None,
) -> StandIn:
    placement = f"node.labels.env=={env_label}"
    port = harness.free_tcp_port()

    # Task containers are not given the case labels: the harness's cleanup force-removes labelled
    # containers and fails (409 "removal already in progress") on those swarm is already removing.
    def labels(role: str) -> dict[str, str]:
        return {**res.labels, ROLE_LABEL: role, STACK_LABEL: STACK}

    root = client.secrets.create(name=res.name("db-root"), data=b"not-a-real-password-1", labels=res.labels)
    user = client.secrets.create(name=res.name("db-user"), data=b"not-a-real-password-2", labels=res.labels)

    def mount(secret: Any, file: str, *, relative: bool = False) -> SecretReference:
        # The product names absolute paths; Docker also takes a name relative to /run/secrets.
        filename = file if relative else f"{SECRETS_DIR}/{file}"
        return SecretReference(str(secret.id), str(secret.name), filename=filename, mode=0o444)

    logging = client.services.create(
        image,
        ["sleep", "3600"],
        name=res.name("logging"),
        labels=labels("logging"),
        mode=ServiceMode("global"),
        constraints=[placement, *logging_constraints],
        **COMMON,
    )
    mysql = client.services.create(
        image,
        list(mysql_command),
        name=res.name("mysql"),
        labels=labels("mysql"),
        mode=ServiceMode("replicated", replicas=1),
        constraints=[placement],
        endpoint_spec=EndpointSpec(mode="dnsrr"),
        healthcheck=mysql_health,
        # The root one relative: the health check proves where Docker mounts it, the verifier
        # must find it at the same path.
        secrets=[mount(root, MYSQL_ROOT_PASSWORD_FILE, relative=True), mount(user, MYSQL_USER_PASSWORD_FILE)],
        env=[
            f"MYSQL_ROOT_PASSWORD_FILE={SECRETS_DIR}/{MYSQL_ROOT_PASSWORD_FILE}",
            f"MYSQL_PASSWORD_FILE={SECRETS_DIR}/{MYSQL_USER_PASSWORD_FILE}",
            "MYSQL_USER=wordpress",
        ],
        restart_policy=mysql_restart,
        **COMMON,
    )
    # The netns nodes' dockerd runs with --bridge none, so a host-mode port is never mapped there:
    # on the node's host network, httpd listens on the published port number itself.
    target = port if host_network else 8080
    # The SDK's type stubs say str; the API wants integer ports.
    published: Any = {port: (target, "tcp", "host")}
    wordpress = client.services.create(
        image,
        ["httpd", "-f", "-p", str(target), "-h", "/www"],
        name=res.name("wordpress"),
        labels=labels("wordpress"),
        mode=ServiceMode("replicated", replicas=1),
        constraints=[placement, *wordpress_constraints],
        endpoint_spec=EndpointSpec(ports=published),
        networks=["host"] if host_network else None,
        secrets=[mount(user, WORDPRESS_DB_PASSWORD_FILE)],
        env=[f"WORDPRESS_DB_PASSWORD_FILE={SECRETS_DIR}/{WORDPRESS_DB_PASSWORD_FILE}", "WORDPRESS_DB_USER=wordpress"],
        restart_policy=wordpress_restart,
        **COMMON,
    )
    outputs = {
        "envLabel": env_label,
        "url": f"http://{url_host}:{port}/",
        "publishMode": "host",
        "loggingService": str(logging.name),
        "mysqlService": str(mysql.name),
        "wordpressService": str(wordpress.name),
        "mysqlSecrets": [str(root.name), str(user.name)],
        "wordpressSecrets": [str(user.name)],
        "backupServices": [],
    }
    return StandIn(outputs, str(logging.name), str(mysql.name), str(wordpress.name))


def run_verify(outputs: Mapping[str, Any], tmp_path: Path, docker_host: str | None, *extra: str) -> tuple[int, str]:
    """The real command line, outputs from a file as an operator would save them."""
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    out, err = io.StringIO(), io.StringIO()
    args = ["--outputs", str(path), *(["--docker-host", docker_host] if docker_host else []), *extra]
    code = cli.main(args, stdout=out, stderr=err)
    assert not err.getvalue(), err.getvalue()
    return code, out.getvalue()


Rows = dict[tuple[str, str], dict[str, str]]


def rows_of(text: str) -> Rows:
    """JSON rows keyed by (check, role or 'http')."""
    rows: list[dict[str, str]] = json.loads(text)["rows"]
    return {(r["check"], r["target"].split()[0] if r["check"] != "http" else "http"): r for r in rows}


def failing(rows: Mapping[tuple[str, str], Mapping[str, str]]) -> set[tuple[str, str]]:
    return {key for key, row in rows.items() if row["status"] not in ("PASS", "SKIP")}


@pytest.fixture(autouse=True)
def no_logins_into_standins(monkeypatch: pytest.MonkeyPatch) -> None:
    # The stand-in "MySQL" here is busybox: the database row (real logins, owned by
    # test_pulumi_mariadb.py on the lab MariaDB) is told it can't be tried, and says SKIP.
    monkeypatch.setattr(cli, "try_logins", lambda _client, _service: (None, "busybox stand-in, not a MySQL"))


EXPECTED_ROWS = {
    ("service", "logging"),
    ("converged", "logging"),
    ("placement", "logging"),
    ("service", "mysql"),
    ("converged", "mysql"),
    ("healthy", "mysql"),
    ("ports", "mysql"),
    ("secrets", "mysql"),
    ("database", "mysql"),
    ("service", "wordpress"),
    ("converged", "wordpress"),
    ("published", "wordpress"),
    ("secrets", "wordpress"),
    ("http", "http"),
}


def verify_json(
    outputs: Mapping[str, Any], tmp_path: Path, docker_host: str | None, http: Sequence[str] = FAST_HTTP
) -> tuple[int, Rows, str]:
    """run_verify with --json: (exit code, rows_of the output, the output)."""
    code, text = run_verify(outputs, tmp_path, docker_host, "--json", *http)
    return code, rows_of(text), text


def wait_for_detail(
    client: docker.DockerClient, standin: StandIn, check: str, role: str, *fragments: str, what: str
) -> None:
    """Polls the gathered facts (no HTTP) until the row (check, role) names every fragment."""
    expected = Expected.parse(standin.outputs)
    no_http = HttpResult(standin.outputs["url"], 200, None, 1, 0.0)

    def probe() -> bool:
        rows = evaluate(expected, cli.read_facts(client, harness.DOCKER_SOCKET, expected), no_http)
        detail = next(r for r in rows if r.check == check and r.target.startswith(f"{role} ")).detail
        return all(fragment in detail for fragment in fragments)

    harness.wait_for(probe, timeout=60, interval=0.5, what=what)


# --------------------------------------------------------------------------- single-node engine


@dataclass(frozen=True)
class LabelledEngine:
    """The machine's engine, its node labelled env=<env_value> for one test."""

    client: docker.DockerClient
    image: str
    res: harness.TestResources
    env_value: str
    tmp_path: Path

    def deploy(self, *, wait_mysql: bool = True, **kwargs: Any) -> StandIn:
        """deploy_standin with its logging and wordpress tasks running, and mysql's too if wait_mysql."""
        standin = deploy_standin(self.client, self.image, self.res, self.env_value, **kwargs)
        swarm_tasks.wait_running(self.client, standin.logging, 1)
        swarm_tasks.wait_running(self.client, standin.wordpress, 1)
        if wait_mysql:
            swarm_tasks.wait_running(self.client, standin.mysql, 1)
        return standin

    def verify_json(self, standin: StandIn, http: Sequence[str] = FAST_HTTP) -> tuple[int, Rows, str]:
        return verify_json(standin.outputs, self.tmp_path, None, http)


@pytest.fixture
def single(
    engine: docker.DockerClient, busybox_image: str, engine_resources: harness.TestResources, tmp_path: Path
) -> Iterator[LabelledEngine]:
    with swarm_tasks.local_node_labelled(engine, f"verify-{engine_resources.case_id}") as value:
        yield LabelledEngine(engine, busybox_image, engine_resources, value, tmp_path)


def test_healthy_standin_passes_every_check(engine: docker.DockerClient, single: LabelledEngine) -> None:
    standin = single.deploy()

    code, rows, text = single.verify_json(standin)
    assert set(rows) == EXPECTED_ROWS
    assert (code, failing(rows)) == (0, set()), text
    assert rows[("healthy", "mysql")]["detail"].startswith("health check passed on 1 running task")
    # Each *_FILE variable has its secret at exactly that path; WordPress's is MySQL's user password.
    root, user = standin.outputs["mysqlSecrets"]
    assert rows[("secrets", "mysql")]["detail"] == (
        f"{root} -> /run/secrets/mysql-root-password (MYSQL_ROOT_PASSWORD_FILE); "
        f"{user} -> /run/secrets/mysql-user-password (MYSQL_PASSWORD_FILE)"
    )
    assert rows[("secrets", "wordpress")]["detail"] == (
        f"{user} -> /run/secrets/wordpress-db-password "
        "(WORDPRESS_DB_PASSWORD_FILE, same secret as mysql's MYSQL_PASSWORD_FILE)"
    )
    assert rows[("placement", "logging")]["detail"].endswith(engine.info()["Name"])
    # No secret value reaches the output, only names and mount targets.
    assert "not-a-real-password" not in text

    code, table = run_verify(standin.outputs, single.tmp_path, None, *FAST_HTTP)
    assert code == 0
    assert table.splitlines()[0].split() == ["CHECK", "TARGET", "STATUS", "DETAIL"]
    # The database row says SKIP (no_logins_into_standins) and is counted apart.
    assert table.splitlines()[-1] == f"all {len(EXPECTED_ROWS) - 1} checks passed (1 not tried from here)"


def test_task_that_cannot_run_fails_converged(engine: docker.DockerClient, single: LabelledEngine) -> None:
    standin = single.deploy()
    # A second host-mode task can't bind the same port on this single node: it stays pending.
    services.scale(engine, standin.wordpress, 2)
    wait_for_detail(engine, standin, "converged", "wordpress", "pending", what="a pending second wordpress task")

    code, rows, text = single.verify_json(standin)
    assert (code, failing(rows)) == (1, {("converged", "wordpress")}), text
    detail = rows[("converged", "wordpress")]["detail"]
    assert detail.startswith("1/2 replicas running; slot 2 on no node yet: pending"), detail


def task_container(client: docker.DockerClient, service: str) -> Container:
    """The container of the service's one running task (on this node)."""
    (task,) = swarm_tasks.wait_running(client, service, 1)
    return client.containers.get(swarm_tasks.task_container_id(task))


def test_killed_task_fails_converged_with_its_exit_code(engine: docker.DockerClient, single: LabelledEngine) -> None:
    # Restarts after a long delay: the replacement task waits 'ready' while the verifier looks.
    standin = single.deploy(wordpress_restart=RestartPolicy(condition="any", delay=600 * SECOND))
    task_container(engine, standin.wordpress).kill()  # `docker kill`: SIGKILL, exit 137
    wait_for_detail(
        engine,
        standin,
        "converged",
        "wordpress",
        "non-zero exit (137)",
        ": ready",
        what="the killed wordpress task failed and its replacement waiting",
    )

    code, rows, text = single.verify_json(standin)
    # Nothing answers on the URL without the container, so http fails with it.
    assert (code, failing(rows)) == (1, {("converged", "wordpress"), ("http", "http")}), text
    assert rows[("converged", "wordpress")]["detail"] == (
        f"0/1 replicas running; slot 1 on {engine.info()['Name']}: ready (prepared); "
        "last task failed: task: non-zero exit (137)"
    )


def test_stopped_task_without_restart_fails_converged_and_healthy(
    engine: docker.DockerClient, single: LabelledEngine
) -> None:
    # Exits 0 on SIGTERM (init passes `docker stop`'s signal on), and is never restarted.
    standin = single.deploy(
        mysql_command=["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
        mysql_restart=RestartPolicy(condition="none"),
    )
    task_container(engine, standin.mysql).stop(timeout=5)  # `docker stop`
    wait_for_detail(engine, standin, "converged", "mysql", "last task complete", what="the stopped mysql task complete")

    code, rows, text = single.verify_json(standin)
    assert (code, failing(rows)) == (1, {("converged", "mysql"), ("healthy", "mysql")}), text
    assert rows[("converged", "mysql")]["detail"] == "0/1 replicas running; last task complete: exit code 0 (finished)"
    assert rows[("healthy", "mysql")]["detail"] == "no task running; last task complete: exit code 0 (finished)"
    # Secrets are judged on the spec, so they still pass with no task running.
    assert rows[("secrets", "mysql")]["status"] == "PASS"


def test_failing_health_check_fails_healthy(engine: docker.DockerClient, single: LabelledEngine) -> None:
    standin = single.deploy(mysql_health=MYSQL_UNHEALTHY, wait_mysql=False)
    # Swarm keeps the task 'starting' until its check passes and fails it as an "unhealthy
    # container" when it fails; wait for one such failure so the row can say so.
    wait_for_detail(
        engine, standin, "healthy", "mysql", "failed their health check", what="a mysql task failed by its health check"
    )

    code, rows, text = single.verify_json(standin)
    assert code == 1
    # The mysql replica isn't running either, so converged fails with it; nothing else does.
    assert failing(rows) == {("healthy", "mysql"), ("converged", "mysql")}, text
    assert "failed their health check" in rows[("healthy", "mysql")]["detail"]


def test_missing_service_fails_its_rows_and_unreachable_url_fails_http(
    engine: docker.DockerClient, single: LabelledEngine
) -> None:
    standin = single.deploy()
    engine.services.get(standin.wordpress).remove()
    harness.wait_for(
        lambda: not engine.containers.list(filters={"label": f"com.docker.swarm.service.name={standin.wordpress}"}),
        timeout=30,
        what="the wordpress container gone",
    )

    code, rows, text = single.verify_json(standin, ["--http-attempts", "2", "--http-delay", "0.2"])
    assert code == 1
    # Its rows keep their place (with 'healthy': a missing service can't say it has no check).
    wordpress_rows = {key for key in EXPECTED_ROWS if key[1] == "wordpress"} | {("healthy", "wordpress")}
    assert failing(rows) == wordpress_rows | {("http", "http")}, text
    assert rows[("service", "wordpress")]["detail"] == "no such service on this swarm"
    assert "(2 attempt(s)" in rows[("http", "http")]["detail"]


# --------------------------------------------------------------------------- 3-node netns swarm


def test_logging_missing_from_a_labelled_node_fails_placement(
    netns_swarm: netns.NetnsSwarm, netns_resources: harness.TestResources, tmp_path: Path
) -> None:
    client, res = netns_swarm.client, netns_resources
    n1, n2, n3 = netns_swarm.nodes
    label = f"verify-{res.case_id}"
    with swarm_tasks.env_label_on(client, [n1.node_id, n2.node_id], label):
        standin = deploy_standin(
            client,
            netns_swarm.image_tag,
            res,
            label,
            url_host=n1.ip,
            # Harmless while node 3 is unlabelled; keeps logging off it once it is labelled.
            logging_constraints=[f"node.hostname!={n3.hostname}"],
            wordpress_constraints=[f"node.hostname=={n1.hostname}"],
            host_network=True,
        )
        swarm_tasks.wait_running(client, standin.logging, 2, timeout=90)
        swarm_tasks.wait_running(client, standin.mysql, 1, timeout=90)
        swarm_tasks.wait_running(client, standin.wordpress, 1, timeout=90)

        # Across nodes: one logging task on each labelled node, none on node 3.
        code, rows, text = verify_json(standin.outputs, tmp_path, n1.base_url)
        assert (code, failing(rows)) == (0, set()), text
        assert rows[("placement", "logging")]["detail"].endswith(f"{n1.hostname}, {n2.hostname}")

        with swarm_tasks.env_label_on(client, [n3.node_id], label):
            code, rows, text = verify_json(standin.outputs, tmp_path, n1.base_url)
        # Converged judges against the service's own constraints (2/2): only placement sees the gap.
        assert (code, failing(rows)) == (1, {("placement", "logging")}), text
        assert rows[("placement", "logging")]["detail"] == (
            f"{n3.hostname}: no task, the service's constraint node.hostname!={n3.hostname} excludes it"
        )
        assert rows[("converged", "logging")]["detail"] == "2/2 eligible node(s) running a task"
