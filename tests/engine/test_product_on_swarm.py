"""The product's own service specs on real swarms: what `__main__.py` declares, created for real.

The program runs under the mock engine (tests.support.deploy) with a unique env label and a free
WordPress port; tests/engine/pulumi_to_engine.py turns its docker resources into Engine API objects
the way the docker provider does, and creates them. Only two things differ from the product:

* the image of each service: images can't be pulled here, so each role gets a busybox stand-in
  (built below with `docker import`) that keeps the product's health check commands working
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

import hashlib
import http.client
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import ImageNotFound

from components.mysql import MYSQL_ALIAS
from components.swarm import ROLE_LABEL
from swarmops import verify
from tests.support import FAKE_PASSWORD, Declared, Deployment, deploy, run_main, stack_config

from . import harness
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

# Sourced by every stand-in. The product's specs set no `init`, so PID 1 is the entrypoint shell:
# it runs its server in the background and exits on SIGTERM, as the real images' servers do.
LIB = r"""
cr=$(printf '\r')
log() { echo "[$STANDIN] $*" >&2; }
fail() { log "FATAL: $*"; exit 1; }
# A persistent TCP server on port $1: each connection runs $2 with stdin/stdout on the socket.
serve() {
    nc -ll -p "$1" -e "$2" &
    server=$!
    trap 'kill "$server" 2>/dev/null; exit 0' TERM INT
    wait "$server"
}
# HTTP for the handlers: read the request line and headers, answer once, close.
read_request() {
    IFS=' ' read -r method path proto || exit 0
    while IFS= read -r line; do [ -z "${line%"$cr"}" ] && break; done
}
respond() {
    printf 'HTTP/1.0 %s\r\nContent-Type: text/plain\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s\n' \
        "$1" "$((${#2} + 1))" "$2"
}
"""

MYSQL_ENTRYPOINT = r"""#!/bin/sh
# mysql stand-in: the image's _FILE password variables, a first start that initialises without
# any TCP listener (the real one runs a --skip-networking server), then a server on 3306.
STANDIN=mysql-standin
. /bin/standin-lib.sh
trap 'exit 0' TERM INT
for var in MYSQL_ROOT_PASSWORD_FILE MYSQL_PASSWORD_FILE; do
    eval "file=\${$var:-}"
    [ -n "$file" ] || fail "$var is not set"
    { [ -r "$file" ] && [ -s "$file" ]; } || fail "$var=$file is unreadable or empty"
done
[ -n "${MYSQL_USER:-}" ] && [ -n "${MYSQL_DATABASE:-}" ] || fail "MYSQL_USER and MYSQL_DATABASE must be set"
touch /var/lib/mysql/standin-data || fail "the data directory /var/lib/mysql is not writable"
log "initialising: no TCP listener for 3 s"
sleep 3 &
wait $!
log "ready for connections on port 3306"
serve 3306 /bin/standin-mysql-greeting
"""

# Each connection is greeted with a digest of the user password: a client that read the same
# secret can tell, as a real login would, without the password crossing the wire.
MYSQL_GREETING = r"""#!/bin/sh
printf 'standin-mysql %s\n' "$(sha256sum <"$MYSQL_PASSWORD_FILE" | cut -d' ' -f1)"
"""

MYSQLADMIN = r"""#!/bin/sh
# mysqladmin stand-in: `ping` over TCP with the options of the product's health check; exit 0 only
# when something accepts a TCP connection at --host:--port. Any other argument is refused (2).
command="" protocol="" host=localhost port=3306 silent=0
for arg in "$@"; do
    case "$arg" in
        ping) command=ping ;;
        --protocol=*) protocol=${arg#--protocol=} ;;
        --host=*) host=${arg#--host=} ;;
        --port=*) port=${arg#--port=} ;;
        --silent) silent=1 ;;
        *) echo "mysqladmin stand-in: unsupported argument $arg" >&2; exit 2 ;;
    esac
done
[ "$command" = ping ] || { echo "mysqladmin stand-in: only 'ping' is modelled" >&2; exit 2; }
# Without --protocol=tcp the real client would use the unix socket, which the stand-in lacks.
[ "$protocol" = tcp ] || { echo "mysqladmin stand-in: only --protocol=tcp is modelled" >&2; exit 2; }
if ! nc -w 2 "$host" "$port" -e true 2>/dev/null; then
    echo "mysqladmin: connect to server at '$host' failed" >&2
    exit 1
fi
[ "$silent" = 1 ] || echo "mysqld is alive"
"""

WORDPRESS_ENTRYPOINT = r"""#!/bin/sh
STANDIN=wordpress-standin
. /bin/standin-lib.sh
for var in WORDPRESS_DB_HOST WORDPRESS_DB_USER WORDPRESS_DB_NAME WORDPRESS_DB_PASSWORD_FILE; do
    eval "value=\${$var:-}"
    [ -n "$value" ] || fail "$var is not set"
done
touch /var/www/html/wp-content/standin-content || fail "wp-content is not writable"
log "serving HTTP on port 80"
serve 80 /bin/standin-wordpress-page
"""

# `/` is 200 only after a TCP connection to $WORDPRESS_DB_HOST (resolving its name) whose greeting
# matches the password read from WORDPRESS_DB_PASSWORD_FILE; 500 otherwise, as WordPress's
# "Error establishing a database connection".
WORDPRESS_PAGE = r"""#!/bin/sh
STANDIN=wordpress-standin
. /bin/standin-lib.sh
read_request
case "$path" in
    /) ;;
    *) respond "404 Not Found" "the stand-in has no page $path"; exit 0 ;;
esac
db_host=${WORDPRESS_DB_HOST%%:*}
db_port=${WORDPRESS_DB_HOST#*:}
[ "$db_port" != "$WORDPRESS_DB_HOST" ] || db_port=3306
password_file=${WORDPRESS_DB_PASSWORD_FILE:-}
if [ -z "$password_file" ] || [ ! -r "$password_file" ] || [ ! -s "$password_file" ]; then
    respond "500 Internal Server Error" "cannot read WORDPRESS_DB_PASSWORD_FILE=$password_file"
    exit 0
fi
if ! greeting=$(timeout 3 nc -w 2 "$db_host" "$db_port" </dev/null 2>&1); then
    respond "500 Internal Server Error" "Error establishing a database connection to $db_host:$db_port: $greeting"
    exit 0
fi
expected="standin-mysql $(sha256sum <"$password_file" | cut -d' ' -f1)"
if [ "$greeting" != "$expected" ]; then
    respond "500 Internal Server Error" "Error establishing a database connection: access denied for $WORDPRESS_DB_USER"
    exit 0
fi
respond "200 OK" "wordpress stand-in: logged in to $db_host:$db_port as $WORDPRESS_DB_USER with $password_file"
"""

CURL = r"""#!/bin/sh
# curl stand-in (busybox wget underneath): the options of the product's health check, with curl's
# exit codes: 22 for HTTP >= 400 under --fail, 6 unresolvable host, 7 no connection, 28 timeout.
# Redirects are not followed (the first status counts, as curl without -L). The body of an HTTP
# error is not passed on. Any other option is refused (2), so a new flag can't be ignored.
usage() { echo "curl stand-in: $*" >&2; exit 2; }
fail=0 silent=0 show_error=0 max_time="" output=- url=""
while [ $# -gt 0 ]; do
    case "$1" in
        -f|--fail) fail=1 ;;
        -s|--silent) silent=1 ;;
        -S|--show-error) show_error=1 ;;
        -m|--max-time) [ $# -ge 2 ] || usage "$1 needs a value"; max_time=$2; shift ;;
        -o|--output) [ $# -ge 2 ] || usage "$1 needs a value"; output=$2; shift ;;
        -*) usage "option $1 is not modelled" ;;
        *) [ -z "$url" ] || usage "one URL only"; url=$1 ;;
    esac
    shift
done
[ -n "$url" ] || usage "no URL"
case "$max_time" in *[!0-9]*) usage "--max-time: whole seconds only" ;; esac
error() { if [ "$silent" = 0 ] || [ "$show_error" = 1 ]; then echo "curl: $*" >&2; fi; }
headers=$(mktemp) body=$(mktemp)
trap 'rm -f "$headers" "$body"' EXIT
# busybox `wget -T` crashes: the time limit is timeout(1)'s.
if [ -n "$max_time" ]; then set -- timeout "$max_time"; else set --; fi
"$@" wget -S -q -O "$body" "$url" 2>"$headers"
rc=$?
if [ "$rc" = 143 ]; then error "(28) Operation timed out after $max_time seconds"; exit 28; fi
status=$(sed -n 's/^  HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$headers" | head -n 1)
if [ -z "$status" ]; then
    if grep -q 'bad address' "$headers"; then error "(6) Could not resolve host"; exit 6; fi
    error "(7) Failed to connect: $(cat "$headers")"
    exit 7
fi
if [ "$fail" = 1 ] && [ "$status" -ge 400 ]; then
    error "(22) The requested URL returned error: $status"
    exit 22
fi
if [ "$output" = - ]; then cat "$body"; else cat "$body" >"$output"; fi
"""

LOGSPOUT_ENTRYPOINT = r"""#!/bin/sh
# logspout stand-in: routes come as arguments (none in dev); /health on port 80.
STANDIN=logspout-standin
. /bin/standin-lib.sh
for route in "$@"; do
    case "$route" in
        *://*) log "route $route (not forwarded by the stand-in)" ;;
        *) fail "not a route URI: $route" ;;
    esac
done
log "serving /health on port 80"
serve 80 /bin/standin-logspout-health
"""

LOGSPOUT_HEALTH = r"""#!/bin/sh
STANDIN=logspout-standin
. /bin/standin-lib.sh
read_request
case "$path" in
    /health)
        if [ -S /var/run/docker.sock ]; then
            respond "200 OK" "Healthy!"
        else
            respond "500 Internal Server Error" "no Docker socket at /var/run/docker.sock"
        fi ;;
    *) respond "404 Not Found" "the stand-in has no page $path" ;;
esac
"""


@dataclass(frozen=True)
class StandIn:
    role: str  # the service's wordpress-swarm.role label
    entrypoint: str
    files: Mapping[str, str]  # executable scripts: path -> text

    @property
    def tag(self) -> str:
        """wpswarm-test/<role>-standin:1-<digest of the scripts>: a changed script is a new image."""
        digest = hashlib.sha256(json.dumps([self.entrypoint, sorted(self.files.items())]).encode()).hexdigest()
        return f"wpswarm-test/{self.role}-standin:1-{digest[:10]}"


def _standin(role: str, entrypoint: str, **scripts: str) -> StandIn:
    files = {"/bin/standin-lib.sh": LIB, **{f"/bin/{name.replace('_', '-')}": text for name, text in scripts.items()}}
    return StandIn(role, entrypoint, files)


STANDINS: dict[str, StandIn] = {
    "mysql": _standin(
        "mysql",
        "/bin/standin-entrypoint",
        standin_entrypoint=MYSQL_ENTRYPOINT,
        standin_mysql_greeting=MYSQL_GREETING,
        mysqladmin=MYSQLADMIN,
    ),
    "wordpress": _standin(
        "wordpress",
        "/bin/standin-entrypoint",
        standin_entrypoint=WORDPRESS_ENTRYPOINT,
        standin_wordpress_page=WORDPRESS_PAGE,
        curl=CURL,
    ),
    "logging": _standin(
        "logging",
        "/bin/standin-entrypoint",
        standin_entrypoint=LOGSPOUT_ENTRYPOINT,
        standin_logspout_health=LOGSPOUT_HEALTH,
    ),
}


def ensure_standin_image(client: docker.DockerClient, standin: StandIn) -> str:
    """The stand-in's image on `client`'s engine: busybox's root filesystem plus its scripts."""
    try:
        client.images.get(standin.tag)
        return standin.tag
    except ImageNotFound:
        pass
    started = time.monotonic()
    buffer = io.BytesIO(harness.busybox_rootfs_tar())
    with tarfile.open(fileobj=buffer, mode="a") as tar:
        for path, text in sorted(standin.files.items()):
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o755, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    repository, _, version = standin.tag.rpartition(":")
    client.api.import_image_from_data(
        buffer.getvalue(),
        repository=repository,
        tag=version,
        changes=[
            "ENV PATH=/bin:/usr/bin:/sbin:/usr/sbin",
            f'ENTRYPOINT ["{standin.entrypoint}"]',
            "WORKDIR /",
            f"LABEL wpswarm.test.image={standin.role}-standin",
        ],
    )
    harness.TIMINGS[f"{standin.role} stand-in image import"] = time.monotonic() - started
    return standin.tag


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
    return {role: ensure_standin_image(engine, standin) for role, standin in STANDINS.items()}


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
    tag = ensure_standin_image(client, STANDINS["logging"])
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
