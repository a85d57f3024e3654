"""Spec builders as plain function calls: what each service asks of the swarm."""

# The Args getters are typed Input[Optional[...]]; here they hold plain values the builders set.
# pyright: reportOptionalMemberAccess=false, reportOptionalSubscript=false, reportOptionalIterable=false
# pyright: reportGeneralTypeIssues=false, reportAttributeAccessIssue=false, reportOperatorIssue=false
# pyright: reportArgumentType=false, reportIndexIssue=false, reportCallIssue=false, reportReturnType=false

from __future__ import annotations

import base64
import dataclasses

import pulumi
import pulumi_docker as docker
import pytest

from components.logging_daemon import DOCKER_SOCKET, LoggingDaemonArgs, logging_service_args
from components.mysql import (
    DATA_DIR,
    MYSQL_ALIAS,
    DatabaseConnection,
    MySqlWithSecretsArgs,
    init_file_sql,
    mysql_constraints,
    mysql_network_args,
    mysql_service_args,
)
from components.specs import (
    MYSQL,
    PASSWORD_SPECIALS,
    ROOT,
    WWW_DATA,
    Limits,
    SecretMount,
    password_keepers,
    provider_duration,
    secret_data,
)
from components.wordpress import CONTENT_DIR, WordPressSiteArgs, site_url, update_order, wordpress_service_args
from stackconfig.names import ENCRYPTED_LABEL, WORDPRESS_KEYS, wordpress_key_file

ENV = ["node.labels.env==test"]
KEY_MOUNTS = {key: SecretMount(f"{key}-id", f"{key}-name", wordpress_key_file(key), WWW_DATA) for key in WORDPRESS_KEYS}
ROOT_MOUNT = SecretMount("root-id", "root-name", "mysql-root-password", ROOT)
USER_MOUNT = SecretMount("user-id", "user-name", "mysql-user-password", ROOT)
INIT_MOUNT = SecretMount("init-id", "init-name", "mysql-init.sql", MYSQL)

LOGGING = LoggingDaemonArgs(image="logspout:v3", placement_constraints=ENV, route=None, limits=Limits(0.1, 64))
MYSQL = MySqlWithSecretsArgs(
    image="mysql:8.4.3",
    placement_constraints=ENV,
    database="wordpress",
    user="wordpress",
    data_node=None,
    root_password_generation=1,
    user_password_generation=1,
    encrypt_network=True,
    limits=Limits(1, 1024),
)
CONNECTION = DatabaseConnection(
    host=MYSQL_ALIAS,
    port=3306,
    database="wordpress",
    user="wordpress",
    network_id="net-id",
    password_secret_id=USER_MOUNT.secret_id,
    password_secret_name=USER_MOUNT.secret_name,
)
WORDPRESS = WordPressSiteArgs(
    image="wordpress:6.6.2-php8.2-apache",
    placement_constraints=ENV,
    database=CONNECTION,
    replicas=1,
    port=30080,
    publish_mode="host",
    public_host="localhost",
    node=None,
    keys_generation=1,
    limits=Limits(1, 384),
)


def logging_spec(args: LoggingDaemonArgs = LOGGING) -> docker.ServiceArgs:
    return logging_service_args(args)


def mysql_spec(args: MySqlWithSecretsArgs = MYSQL) -> docker.ServiceArgs:
    return mysql_service_args(args, "net-id", "data-volume", ROOT_MOUNT, USER_MOUNT, INIT_MOUNT)


def wordpress_spec(args: WordPressSiteArgs = WORDPRESS) -> docker.ServiceArgs:
    return wordpress_service_args(args, "content-volume", keys=KEY_MOUNTS)


def container(spec: docker.ServiceArgs) -> docker.ServiceTaskSpecContainerSpecArgs:
    return spec.task_spec.container_spec


# --- LoggingDaemon -------------------------------------------------------------------------------


def test_logging_daemon_is_global_on_the_environment_only() -> None:
    spec = logging_spec()
    assert (spec.mode.global_, spec.mode.replicated) == (True, None)
    assert spec.task_spec.placement.constraints == ["node.labels.env==test"]
    # The provider refuses converge_config on a global service.
    assert spec.converge_config is None


def test_logging_daemon_reads_the_docker_socket_and_the_node_name_read_only() -> None:
    socket, hostname = container(logging_spec()).mounts
    assert (socket.type, socket.source, socket.target, socket.read_only) == ("bind", DOCKER_SOCKET, DOCKER_SOCKET, True)
    # logspout's syslog adapter names the host from /etc/host_hostname, else the container id.
    assert (hostname.type, hostname.source, hostname.target, hostname.read_only) == (
        "bind",
        "/etc/hostname",
        "/etc/host_hostname",
        True,
    )


def test_logging_daemon_api_listens_on_the_loopback_only() -> None:
    # Unauthenticated: /logs streams every container's logs, POST /routes adds a destination.
    assert container(logging_spec()).env == {"HTTP_BIND_ADDRESS": "127.0.0.1"}
    assert "127.0.0.1" in " ".join(container(logging_spec()).healthcheck.tests)


def test_logging_route_is_the_container_argument_when_configured() -> None:
    assert container(logging_spec()).args is None
    routed = dataclasses.replace(LOGGING, route="syslog+tls://logs.example.com:6514")
    assert container(logging_spec(routed)).args == ["syslog+tls://logs.example.com:6514"]


def test_logging_daemon_is_small_and_restarts() -> None:
    spec = logging_spec()
    limits = spec.task_spec.resources.limits
    assert (limits.nano_cpus, limits.memory_bytes) == (100_000_000, 64 * 1024 * 1024)
    assert spec.task_spec.restart_policy.condition == "any"
    health = container(spec).healthcheck
    assert health.tests == ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:80/health"]


# --- MySqlWithSecrets ----------------------------------------------------------------------------


def test_mysql_file_variables_point_at_the_mounted_secrets() -> None:
    spec = container(mysql_spec())
    env = spec.env
    mounts = {s.secret_id: s.file_name for s in spec.secrets}
    assert env == {
        "MYSQL_ROOT_PASSWORD_FILE": "/run/secrets/mysql-root-password",
        "MYSQL_PASSWORD_FILE": "/run/secrets/mysql-user-password",
        "MYSQL_USER": "wordpress",
        "MYSQL_DATABASE": "wordpress",
        "MYSQL_ROOT_HOST": "localhost",  # no root@'%'
    }
    assert mounts == {
        "root-id": env["MYSQL_ROOT_PASSWORD_FILE"],
        "user-id": env["MYSQL_PASSWORD_FILE"],
        "init-id": "/run/secrets/mysql-init.sql",
    }
    # The image's own command, running the init file at every start of the server.
    assert spec.args == ["mysqld", "--init-file=/run/secrets/mysql-init.sql"]


def test_the_init_file_sets_the_users_password_quoted_on_one_line() -> None:
    assert init_file_sql("wordpress", "a#b%c") == "ALTER USER IF EXISTS 'wordpress'@'%' IDENTIFIED BY 'a#b%c';\n"
    # Whatever a password holds stays inside its string literal.
    assert init_file_sql("wp", "it's\\") == "ALTER USER IF EXISTS 'wp'@'%' IDENTIFIED BY 'it''s\\\\';\n"


def test_secret_files_are_readable_by_the_one_user_that_reads_them() -> None:
    # MySQL's entrypoint reads its _FILE variables as root, before it re-executes itself as mysql;
    # WordPress reads its files as www-data (33 in the Debian images) on every request.
    root, user, init = container(mysql_spec()).secrets
    for secret in (root, user):
        assert (secret.file_uid, secret.file_gid, secret.file_mode) == ("0", "0", 0o400)
    # The init file is read by the server itself, running as mysql (999 in the official image).
    assert (init.file_uid, init.file_gid, init.file_mode) == ("999", "999", 0o400)
    for secret in container(wordpress_spec()).secrets:
        assert (secret.file_uid, secret.file_gid, secret.file_mode) == ("33", "33", 0o400)


def test_mysql_is_one_replica_on_the_private_network_under_its_alias_with_no_published_port() -> None:
    spec = mysql_spec()
    assert (spec.mode.replicated.replicas, spec.mode.global_) == (1, None)
    (network,) = spec.task_spec.networks_advanceds
    assert (network.id, network.aliases) == ("net-id", [MYSQL_ALIAS])
    assert (spec.endpoint_spec.mode, spec.endpoint_spec.ports) == ("dnsrr", None)


def test_mysql_data_lives_in_the_named_volume() -> None:
    (mount,) = container(mysql_spec()).mounts
    assert (mount.type, mount.source, mount.target, mount.read_only) == ("volume", "data-volume", DATA_DIR, None)


def test_mysql_stays_on_the_data_node_when_one_is_configured() -> None:
    assert mysql_constraints(MYSQL) == ["node.labels.env==test"]
    assert mysql_constraints(dataclasses.replace(MYSQL, data_node="swarm-db-1")) == [
        "node.labels.env==test",
        "node.hostname==swarm-db-1",
    ]


def test_mysql_health_check_probes_tcp_without_a_password() -> None:
    health = container(mysql_spec()).healthcheck
    assert health.tests[:3] == ["CMD", "mysqladmin", "ping"]
    # The init server listens on no TCP port, so this stays unhealthy until the real server runs.
    assert {"--protocol=tcp", "--host=127.0.0.1"} <= set(health.tests)
    assert not any("password" in part.lower() or part.startswith("-p") for part in health.tests)
    # Long enough for a first init of the data directory.
    assert (health.start_period, health.interval, health.retries) == ("3m", "10s", 6)


def test_mysql_updates_stop_first_and_up_waits_for_it() -> None:
    spec = mysql_spec()
    assert spec.update_config.order == "stop-first"
    assert (spec.converge_config.delay, spec.converge_config.timeout) == ("5s", "10m")


def test_mysql_network_is_an_encrypted_private_overlay() -> None:
    network = mysql_network_args(encrypted=True)
    assert (network.driver, network.attachable, network.options) == ("overlay", False, {"encrypted": "true"})
    assert mysql_network_args(encrypted=False).options is None


def test_the_encryption_choice_is_a_label_so_changing_it_still_replaces_the_network() -> None:
    def encrypted_label(encrypted: bool) -> list[str]:
        labels = mysql_network_args(encrypted).labels
        assert isinstance(labels, list)
        return [str(label.value) for label in labels if label.label == ENCRYPTED_LABEL]

    assert (encrypted_label(True), encrypted_label(False)) == (["true"], ["false"])


@pytest.mark.parametrize(
    ("seconds", "spelled"),
    [(0, "0s"), (10, "10s"), (60, "1m"), (90, "1m30s"), (3600, "1h"), (3630, "1h0m30s"), (3660, "1h1m")],
)
def test_durations_are_spelled_as_the_provider_reads_them_back(seconds: int, spelled: str) -> None:
    assert provider_duration(seconds) == spelled


def test_password_inputs_change_only_with_the_generation() -> None:
    assert password_keepers(1) == password_keepers(1) == {"generation": "1"}
    assert password_keepers(2) != password_keepers(1)


def test_password_alphabet_is_safe_in_files_shells_and_php() -> None:
    assert not set(PASSWORD_SPECIALS) & set("'\"\\$`/ ")


@pulumi.runtime.test
def test_secret_data_is_standard_base64_and_stays_secret() -> pulumi.Output[None]:
    # '?>~' encodes to '/' and '+' in the standard alphabet, '_' and '-' in the url-safe one;
    # the provider decodes with base64.StdEncoding.
    password = "p?>~>?>~x"
    assert base64.b64encode(password.encode()) != base64.urlsafe_b64encode(password.encode())
    data = secret_data(password)

    def check(values: list[object]) -> None:
        encoded, is_secret = values
        assert encoded == "cD8+fj4/Pn54"
        assert base64.b64decode(str(encoded), validate=True).decode() == password
        assert is_secret is True

    return pulumi.Output.all(data, pulumi.Output.from_input(data.is_secret())).apply(check)


# --- WordPressSite -------------------------------------------------------------------------------


def test_wordpress_is_wired_to_mysql_through_the_same_secret() -> None:
    spec = container(wordpress_spec())
    env = spec.env
    secret, *keys = spec.secrets
    assert env == {
        "WORDPRESS_DB_HOST": "mysql:3306",
        "WORDPRESS_DB_USER": "wordpress",
        "WORDPRESS_DB_NAME": "wordpress",
        "WORDPRESS_DB_PASSWORD_FILE": "/run/secrets/wordpress-db-password",
        # Core is upgraded by image tag: an update from the admin dies with the container.
        "WORDPRESS_CONFIG_EXTRA": "define('WP_AUTO_UPDATE_CORE', false);",
        # Keys and salts from secrets: stable across task replacements and shared by all replicas.
        **{f"WORDPRESS_{key}_FILE": f"/run/secrets/{wordpress_key_file(key)}" for key in WORDPRESS_KEYS},
    }
    assert (secret.secret_id, secret.file_name) == (USER_MOUNT.secret_id, env["WORDPRESS_DB_PASSWORD_FILE"])
    assert {(k.secret_id, k.file_name) for k in keys} == {
        (f"{key}-id", env[f"WORDPRESS_{key}_FILE"]) for key in WORDPRESS_KEYS
    }


def test_wordpress_joins_the_database_network_without_an_alias() -> None:
    (network,) = wordpress_spec().task_spec.networks_advanceds
    assert (network.id, network.aliases) == ("net-id", None)


INGRESS = dataclasses.replace(
    WORDPRESS, port=30000, publish_mode="ingress", public_host="swarm-manager", replicas=2, limits=Limits(1, 512)
)


@pytest.mark.parametrize(
    ("args", "url"), [(WORDPRESS, "http://localhost:30080/"), (INGRESS, "http://swarm-manager:30000/")]
)
def test_wordpress_publishes_the_configured_port(args: WordPressSiteArgs, url: str) -> None:
    (published,) = wordpress_spec(args).endpoint_spec.ports
    assert (published.target_port, published.published_port, published.publish_mode, published.protocol) == (
        80,
        args.port,
        args.publish_mode,
        "tcp",
    )
    assert site_url(args) == url


def test_wordpress_content_is_in_a_volume() -> None:
    (mount,) = container(wordpress_spec()).mounts
    assert (mount.type, mount.source, mount.target) == ("volume", "content-volume", CONTENT_DIR)


def test_wordpress_health_check_is_http_with_curl_and_outlasts_mysql_init() -> None:
    health = container(wordpress_spec()).healthcheck
    assert health.tests[:3] == ["CMD", "curl", "--fail"]
    assert health.tests[-1] == "http://127.0.0.1/"
    assert health.start_period == "4m"


def test_wordpress_rolls_back_a_failed_update_and_up_waits_for_healthy_tasks() -> None:
    spec = wordpress_spec(INGRESS)
    update = spec.update_config
    assert (update.order, update.failure_action, update.monitor) == ("start-first", "rollback", "30s")
    assert (spec.converge_config.delay, spec.converge_config.timeout) == ("5s", "10m")
    assert spec.mode.replicated.replicas == 2


def test_host_mode_updates_stop_first_because_the_old_task_holds_the_port() -> None:
    assert update_order(WORDPRESS) == "stop-first"
    assert update_order(INGRESS) == "start-first"
    assert wordpress_spec(WORDPRESS).update_config.order == "stop-first"


@pytest.mark.parametrize("build", [logging_spec, mysql_spec, wordpress_spec])
def test_every_service_has_exactly_one_mode_and_the_env_constraint(build: object) -> None:
    spec: docker.ServiceArgs = build()
    assert (spec.mode.global_ is True) != (spec.mode.replicated is not None)
    assert spec.task_spec.placement.constraints[0] == "node.labels.env==test"
    assert container(spec).healthcheck is not None
    assert spec.task_spec.resources.limits.memory_bytes


def test_host_mode_runs_at_most_one_wordpress_task_per_node() -> None:
    # Two tasks on one node would both bind the host port; the second could never start.
    assert wordpress_spec(WORDPRESS).task_spec.placement.max_replicas == 1
    assert wordpress_spec(INGRESS).task_spec.placement.max_replicas is None
