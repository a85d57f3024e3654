"""The product's own service specs on real swarms: what `__main__.py` declares, created for real.

The program runs under the mock engine (tests.support.deploy) with a unique env label and a free
WordPress port; tests/engine/pulumi_to_engine.py turns its docker resources into Engine API objects
the way the docker provider does, and creates them. Only two things differ from the product:

* the image of each service: images can't be pulled here, so each role gets a busybox stand-in
  (tests/engine/standins, made with `docker import`) that keeps the product's health check commands working
  verbatim: `mysqladmin ping --protocol=tcp ...`, `curl --fail ... http://127.0.0.1/` and
  `wget -q -O /dev/null http://127.0.0.1:80/health`;
* the health checks' interval, shortened to 1 s for test time (logspout's 30 s interval alone
  would take half the budget); their commands, timeouts, retries and start periods are kept.

Single node (the machine's engine, node `vm` labelled with the stack's env label under the shared
lock in harness.py): the whole dev stack converges with every task healthy, WordPress
answers on its host-mode port through the alias `mysql` on the encrypted overlay (both tasks run on
this one node, so no IPsec is needed) with the password from the secret MySQL got too, and
`python -m swarmops.verify` passes on the stack's outputs. Three nodes (the netns swarm): the
logging daemon runs one task on each labelled node, none elsewhere, and follows a relabelling.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
import pytest

from components.mysql import MYSQL_ALIAS
from components.swarm import ROLE_LABEL
from swarmops import verify
from tests.support import FAKE_PASSWORD, Declared, Deployment, deploy, run_main, stack_config

from . import harness, standins
from .pulumi_to_engine import (
    NETWORK,
    SERVICE,
    EngineDeployer,
    Refs,
    ServiceAdjust,
    ServiceCreate,
    TranslationError,
    mock_identity,
    service_create,
)

ROOT = Path(__file__).resolve().parents[2]
SECOND = 1_000_000_000
#: Health-check interval in the created specs (see the module docstring): test time only.
TEST_HEALTH_INTERVAL = 1 * SECOND

# --------------------------------------------------------------------------- stand-in images
# The images come from tests/engine/standins (scripts as files, linted by shellcheck).


def with_standins(images: Mapping[str, str]) -> ServiceAdjust:
    """Swaps each service's image for its role's stand-in and shortens the health-check interval;
    everything else in the translated spec is the product's."""

    def adjust(resource: Declared, spec: ServiceCreate) -> ServiceCreate:
        role = spec.labels.get(ROLE_LABEL)
        if role is None or role not in images:
            raise TranslationError(f"{resource.name}: no stand-in image for role {role!r}")
        container: dict[str, Any] = {**spec.container_spec, "Image": images[role]}
        container["Healthcheck"] = {**container["Healthcheck"], "Interval": TEST_HEALTH_INTERVAL}
        return replace(spec, task_template={**spec.task_template, "ContainerSpec": container})

    return adjust


# --------------------------------------------------------------------------- helpers


def program_under_mocks(env_label: str, wordpress_port: int | None = None) -> Deployment:
    """The real __main__.py on the dev stack file, with another env label (and WordPress port)."""
    config: dict[str, Any] = {**stack_config("dev"), "envLabel": env_label}
    if wordpress_port is not None:
        config["wordpress"] = {**config["wordpress"], "port": wordpress_port}
    return deploy(run_main, config, "dev")


def http_get(url_host: str, port: int, path: str = "/") -> tuple[int, str]:
    connection = http.client.HTTPConnection(url_host, port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def wait_http_status(port: int, status: int, *, timeout: float, what: str) -> tuple[int, str]:
    """GET http://127.0.0.1:<port>/ until it answers `status`; returns (status, body)."""

    def probe() -> tuple[int, str] | None:
        answer = http_get("127.0.0.1", port)
        return answer if answer[0] == status else None

    return harness.wait_for(probe, timeout=timeout, interval=0.5, what=f"{what} on port {port}")


def task_container(client: docker.DockerClient, service: str) -> Any:
    tasks = harness.running_tasks(client, service)
    assert len(tasks) == 1, f"{service}: {len(tasks)} running tasks"
    return client.containers.get(harness.task_container_id(tasks[0]))


def container_env(container: Any) -> dict[str, str]:
    pairs = (entry.partition("=") for entry in container.attrs["Config"]["Env"])
    return {key: value for key, _, value in pairs}


def assert_stored_as_sent(sent: Mapping[str, Any], stored: Mapping[str, Any], where: str = "") -> None:
    """Everything sent is in the engine's stored spec, unchanged: nothing silently dropped."""
    for key, value in sent.items():
        path = f"{where}.{key}" if where else key
        if key not in stored and value in (0, "", False, [], {}):
            continue  # Go's `omitempty`: a zero value is stored, and shown, as absent
        assert key in stored, f"the engine dropped {path} (sent {value!r})"
        if isinstance(value, Mapping):
            assert isinstance(stored[key], Mapping), f"{path}: stored as {stored[key]!r}"
            assert_stored_as_sent(value, stored[key], path)  # pyright: ignore[reportUnknownArgumentType]
        else:
            assert stored[key] == value, f"{path}: sent {value!r}, stored {stored[key]!r}"


# --------------------------------------------------------------------------- without an engine


def test_translator_refuses_a_field_it_does_not_know() -> None:
    deployment = program_under_mocks("wpsw-translator")
    mysql = deployment.one(SERVICE, "db-mysql")
    container = mysql.inputs["taskSpec"]["containerSpec"]
    with_user = {**mysql.inputs, "taskSpec": {**mysql.inputs["taskSpec"], "containerSpec": {**container, "user": "x"}}}
    # Every reference resolves (to itself), so only the unknown field can fail.
    identities = [mock_identity(r) for r in deployment.resources if r.type.startswith("docker:index/")]
    refs = Refs({i: i for i, _ in identities}, {n: n for _, n in identities})
    assert service_create(mysql.inputs, "db-mysql-x", refs).container_spec["Image"] == container["image"]
    with pytest.raises(TranslationError, match=r"taskSpec\.containerSpec: no translation for user"):
        service_create(with_user, "db-mysql-x", refs)


# --------------------------------------------------------------------------- single node


@pytest.fixture(scope="module")
def standin_images(engine: docker.DockerClient) -> dict[str, str]:
    return standins.ensure_images(engine)


@pytest.fixture
def labelled_node(engine: docker.DockerClient, engine_resources: harness.TestResources) -> Iterator[str]:
    """A unique env label on node `vm`, under the lock the other tests that label it take."""
    with harness.local_node_labelled(engine, f"wpsw-{engine_resources.case_id}") as value:
        yield value


def test_dev_stack_converges_healthy_and_passes_verify(
    engine: docker.DockerClient,
    standin_images: dict[str, str],
    engine_resources: harness.TestResources,
    labelled_node: str,
    tmp_path: Path,
) -> None:
    port = harness.free_tcp_port()
    deployment = program_under_mocks(labelled_node, port)
    deployer = EngineDeployer(engine, engine_resources.case_id, engine_resources.labels)
    started = time.monotonic()
    created = deployer.deploy(deployment.resources, adjust=with_standins(standin_images))
    names = created.names
    mysql, wordpress, logging = names["db-mysql"], names["site-wordpress"], names["logging-logspout"]

    # The engine took every spec as sent (the translation of the product's inputs, stand-in images).
    for program_name, spec in created.specs.items():
        stored = engine.api.inspect_service(names[program_name])["Spec"]
        assert_stored_as_sent(
            {"TaskTemplate": spec.task_template, "Mode": spec.mode, "Labels": spec.labels}, stored, program_name
        )
        for key, sent in (
            ("UpdateConfig", spec.update_config),
            ("RollbackConfig", spec.rollback_config),
            ("EndpointSpec", spec.endpoint_spec),
        ):
            if sent:
                assert_stored_as_sent({key: sent}, stored, program_name)

    # Converged: with a health check, swarm calls a task running only once it is healthy.
    for service in (mysql, wordpress, logging):
        harness.wait_running(engine, service, 1, timeout=40)
    harness.TIMINGS["dev stack converged (single node)"] = time.monotonic() - started
    containers = {service: task_container(engine, service) for service in (mysql, wordpress, logging)}
    for service, container in containers.items():
        assert harness.container_health(engine, str(container.id)) == "healthy", service

    # The private network: an encrypted, non-attachable overlay.
    network = engine.api.inspect_network(created.ids["db-net"])
    assert (network["Driver"], network["Scope"], network["Attachable"]) == ("overlay", "swarm", False)
    assert network["Options"].get("encrypted") == "true", network["Options"]
    assert deployment.one(NETWORK, "db-net").inputs["options"] == {"encrypted": "true"}

    # WordPress on its host-mode port: 200 only after dialling `mysql` on the overlay and logging
    # in with the password from its secret, which matches MySQL's.
    status, body = wait_http_status(port, 200, timeout=10, what="HTTP 200 from WordPress")
    assert f"logged in to {MYSQL_ALIAS}:3306" in body, (status, body)

    # Secrets: mounted exactly at the paths the env names, root-owned 0444, data decoded exactly.
    for service, variables in (
        (mysql, ("MYSQL_ROOT_PASSWORD_FILE", "MYSQL_PASSWORD_FILE")),
        (wordpress, ("WORDPRESS_DB_PASSWORD_FILE",)),
    ):
        container = containers[service]
        env = container_env(container)
        spec_targets = {
            s["File"]["Name"]
            for s in engine.api.inspect_service(service)["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"]
        }
        assert spec_targets == {env[v] for v in variables}, (service, spec_targets, env)
        for variable in variables:
            code, text = harness.exec_output(container, ["stat", "-c", "%a %u %g", env[variable]])
            assert (code, text.strip()) == (0, "444 0 0"), (service, variable, text)
            code, text = harness.exec_output(container, ["cat", env[variable]])
            assert (code, text) == (0, FAKE_PASSWORD), (service, variable)

    # The data volumes created from the program's docker.Volume resources, mounted where it says.
    for service, volume, target in (
        (mysql, names["db-data"], "/var/lib/mysql"),
        (wordpress, names["site-content"], "/var/www/html/wp-content"),
    ):
        mounted = [(m["Type"], m.get("Name"), m["Destination"]) for m in containers[service].attrs["Mounts"]]
        assert ("volume", volume, target) in mounted, (service, mounted)

    # The logging daemon: the Docker socket bound read-only.
    mounts = containers[logging].attrs["Mounts"]
    assert [(m["Type"], m["Source"], m["Destination"], m["RW"]) for m in mounts] == [
        ("bind", "/var/run/docker.sock", "/var/run/docker.sock", False)
    ], mounts

    # MySQL publishes nothing: dnsrr, no endpoint ports, no container port bindings.
    mysql_service = engine.api.inspect_service(mysql)
    assert mysql_service["Spec"]["EndpointSpec"] == {"Mode": "dnsrr"}
    assert not mysql_service["Endpoint"].get("Ports"), mysql_service["Endpoint"]
    assert not containers[mysql].attrs["HostConfig"].get("PortBindings"), containers[mysql].attrs["HostConfig"]

    # The operator's check, on the stack's outputs with the real names.
    outputs = deployer.real_outputs(deployment.outputs)
    assert outputs["url"] == f"http://localhost:{port}/"
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps(outputs))
    command = [sys.executable, "-m", "swarmops.verify", "--outputs", str(outputs_file), "--json"]
    command += ["--http-attempts", "3", "--http-delay", "0.5", "--http-timeout", "3"]
    if os.environ.get("DOCKER_HOST"):
        command += ["--docker-host", os.environ["DOCKER_HOST"]]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == verify.EXIT_OK, proc.stdout + proc.stderr
    rows = json.loads(proc.stdout)["rows"]
    checked = {(row["check"], row["target"].split()[0] if row["check"] != "http" else "") for row in rows}
    # Every service has a health check in the product's specs, so each gets a 'healthy' row.
    assert checked == {
        *((check, role) for role in verify.ROLES for check in ("service", "converged", "healthy")),
        ("placement", "logging"),
        ("ports", "mysql"),
        ("secrets", "mysql"),
        ("published", "wordpress"),
        ("secrets", "wordpress"),
        ("http", ""),
    }, rows
    assert [row for row in rows if row["status"] != "PASS"] == [], rows

    # The 200 above depended on MySQL: without it, the page is WordPress's database error.
    harness.scale(engine, mysql, 0)
    status, body = wait_http_status(port, 500, timeout=20, what="HTTP 500 from WordPress once MySQL is gone")
    assert "Error establishing a database connection" in body, body


# --------------------------------------------------------------------------- three nodes


def running_per_node(client: docker.DockerClient, service: str) -> Counter[str]:
    return Counter(str(t["NodeID"]) for t in harness.running_tasks(client, service))


def test_logging_daemon_runs_once_on_each_labelled_node_and_follows_relabelling(
    netns_swarm: harness.NetnsSwarm, netns_resources: harness.TestResources
) -> None:
    client, res = netns_swarm.client, netns_resources
    n1, n2, n3 = netns_swarm.nodes
    label = f"wpsw-{res.case_id}"
    deployment = program_under_mocks(label)
    tag = standins.ensure_image(client, standins.standin("logging"))
    netns_swarm.distribute_image(tag)

    def settle(expected: set[str], gone: str, what: str) -> None:
        """Exactly one running task on each expected node, and no container left on `gone`."""
        service_id = created.ids["logging-logspout"]

        def placed() -> bool:
            on_gone = netns_swarm.node(gone).client.containers.list(filters=harness.service_filter(service_id))
            return running_per_node(client, service_id) == Counter(expected) and not on_gone

        harness.wait_for(placed, timeout=45, interval=0.5, what=what)

    try:
        for node in (n1, n2):
            harness.set_node_labels(client, node.node_id, {"env": label})
        deployer = EngineDeployer(client, res.case_id, res.labels)
        # The bind-mounted /var/run/docker.sock is the host engine's here (the netns nodes share the
        # host's filesystem): enough for the stand-in, which only checks that it exists.
        deployer.create(deployment.one(SERVICE, "logging-logspout"), with_standins({"logging": tag}))
        created = deployer.created
        settle({n1.node_id, n2.node_id}, n3.node_id, f"one logging task on each of {n1.hostname}, {n2.hostname}")

        harness.set_node_labels(client, n3.node_id, {"env": label})
        harness.set_node_labels(client, n1.node_id, {"env": None})
        settle({n2.node_id, n3.node_id}, n1.node_id, f"the logging task moved from {n1.hostname} to {n3.hostname}")
    finally:
        for node in netns_swarm.nodes:
            labels = client.nodes.get(node.node_id).attrs["Spec"].get("Labels") or {}
            if labels.get("env") == label:
                harness.set_node_labels(client, node.node_id, {"env": None})
