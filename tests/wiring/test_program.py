"""The real program on the real dev and prod stack files, under Pulumi's mock engine: the wiring.

What the stack files turn into, which resource reads which (secrets, network, volumes), who waits
for whom, parents, the provider and the outputs. The spec values each builder sets are owned by
tests/values/test_specs.py, what the real provider and engine do with them by tests/engine.
"""

from __future__ import annotations

import base64
import json
import re
from functools import cache
from typing import Any

import pulumi
import pytest

from components.mysql import MySqlWithSecrets, MySqlWithSecretsArgs, init_file_sql
from components.specs import Limits
from components.wordpress import WordPressSite, WordPressSiteArgs
from stackconfig.names import WORDPRESS_KEYS, wordpress_key_file
from stackconfig.settings import SettingsError, read_settings
from swarmlib.client import SSH_SAFETY_OPTIONS
from tests.support import (
    FAKE_PASSWORD,
    STACKS,
    Declared,
    Deployment,
    deploy,
    deploy_stack,
    run_main,
    stack_config,
    walk,
)

SERVICE = "docker:index/service:Service"
SECRET = "docker:index/secret:Secret"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
PASSWORD = "random:index/randomPassword:RandomPassword"
PROVIDER = "pulumi:providers:docker"
EXPECTED_LABEL = {"dev": "test", "prod": "prod"}


@cache
def deployed(stack: str) -> Deployment:
    return deploy_stack(stack)


def service(stack: str, role: str) -> Declared:
    return deployed(stack).one(SERVICE, {"logging": "logspout", "mysql": "mysql", "wordpress": "wordpress"}[role])


def container(resource: Declared) -> dict[str, Any]:
    return resource.inputs["taskSpec"]["containerSpec"]


@pytest.mark.parametrize("stack", STACKS)
def test_declares_exactly_the_expected_resources(stack: str) -> None:
    counts: dict[str, int] = {}
    for resource in deployed(stack).resources:
        counts[resource.type] = counts.get(resource.type, 0) + 1
    assert counts == {
        PROVIDER: 1,
        "wordpress-swarm:logging:LoggingDaemon": 1,
        "wordpress-swarm:mysql:MySqlWithSecrets": 1,
        "wordpress-swarm:wordpress:WordPressSite": 1,
        SERVICE: 3,
        # Two passwords, MySQL's start-up file, WordPress's keys and salts.
        SECRET: 3 + len(WORDPRESS_KEYS),
        PASSWORD: 2 + len(WORDPRESS_KEYS),
        NETWORK: 1,
        VOLUME: 2,
    } | (
        # Prod labels its nodes and takes backups: two jobs and their volume.
        {
            "pulumi-python:dynamic/wordpress-swarm:NodeEnvLabel": 1,
            "wordpress-swarm:backups:SiteBackups": 1,
            SERVICE: 5,
            VOLUME: 3,
        }
        if stack == "prod"
        else {}
    )


@pytest.mark.parametrize("stack", STACKS)
def test_every_service_is_constrained_to_the_stack_environment(stack: str) -> None:
    for role in ("logging", "mysql", "wordpress"):
        constraints = service(stack, role).inputs["taskSpec"]["placement"]["constraints"]
        assert constraints[0] == f"node.labels.env=={EXPECTED_LABEL[stack]}", role


def test_changing_the_label_in_the_stack_file_moves_every_service() -> None:
    moved = deploy(run_main, stack_config("dev") | {"envLabel": "blue"})
    for resource in moved.of_type(SERVICE):
        assert resource.inputs["taskSpec"]["placement"]["constraints"][0] == "node.labels.env==blue"


@pytest.mark.parametrize("stack", STACKS)
def test_secret_wiring_env_path_equals_mount_path_equals_intended_secret(stack: str) -> None:
    deployment = deployed(stack)
    secret_urn = {r.name: r for r in deployment.of_type(SECRET)}
    root, user = secret_urn["db-root-password"], secret_urn["db-user-password"]
    mysql, wordpress = container(service(stack, "mysql")), container(service(stack, "wordpress"))

    def mounted(spec: dict[str, Any]) -> dict[str, str]:
        return {s["fileName"]: s["secretId"] for s in spec["secrets"]}

    mysql_mounts, wordpress_mounts = mounted(mysql), mounted(wordpress)
    assert mysql_mounts[mysql["env"]["MYSQL_ROOT_PASSWORD_FILE"]] == "db-root-password-id"
    assert mysql_mounts[mysql["env"]["MYSQL_PASSWORD_FILE"]] == "db-user-password-id"
    # The server runs the init file it mounts, readable by the mysql user (uid 999) only.
    (init_file,) = [s for s in mysql["secrets"] if s["secretId"] == "db-init-file-id"]
    assert mysql["args"] == ["mysqld", f"--init-file={init_file['fileName']}"]
    assert (init_file["fileUid"], init_file["fileGid"], init_file["fileMode"]) == ("999", "999", 0o400)
    # WordPress reads the very secret MySQL created its user with.
    assert wordpress_mounts[wordpress["env"]["WORDPRESS_DB_PASSWORD_FILE"]] == "db-user-password-id"
    # Each key and salt from its own generated secret, read through its _FILE variable.
    for key in WORDPRESS_KEYS:
        assert wordpress_mounts[wordpress["env"][f"WORDPRESS_{key}_FILE"]] == f"site-{wordpress_key_file(key)}-id"
        assert f"WORDPRESS_{key}" not in wordpress["env"]
    assert {s["secretName"] for s in wordpress["secrets"]} == {"db-user-password-a1b2c3d"} | {
        f"site-{wordpress_key_file(key)}-a1b2c3d" for key in WORDPRESS_KEYS
    }
    assert root.urn in service(stack, "mysql").dependencies
    assert user.urn in service(stack, "wordpress").dependencies


@pytest.mark.parametrize("stack", STACKS)
def test_secrets_hold_standard_base64_of_the_generated_password_marked_secret(stack: str) -> None:
    for secret in deployed(stack).of_type(SECRET):
        # MySQL's init file sets the user's password to the generated one.
        content = init_file_sql("wordpress", FAKE_PASSWORD) if secret.name == "db-init-file" else FAKE_PASSWORD
        assert secret.inputs["data"] == base64.b64encode(content.encode()).decode()
        assert "data" in secret.secret_paths
        # No fixed name: create-before-replace can roll a new secret in beside the old.
        assert "name" not in secret.inputs


@pytest.mark.parametrize("stack", STACKS)
def test_no_plaintext_password_anywhere(stack: str) -> None:
    deployment = deployed(stack)
    for resource in deployment.resources:
        if resource.type == PASSWORD:
            continue
        for path, value in walk(resource.inputs):
            assert FAKE_PASSWORD not in str(value), f"{resource.name}.{path}"
    assert FAKE_PASSWORD not in json.dumps(deployment.outputs)
    assert '"data"' not in json.dumps(deployment.outputs)


@pytest.mark.parametrize("stack", STACKS)
def test_passwords_rotate_only_on_purpose(stack: str) -> None:
    # Every input of a RandomPassword forces a new password, which MySQL's data directory would
    # not know (or, for WordPress's keys, every session): only the generation keepers change them.
    for password in deployed(stack).of_type(PASSWORD):
        assert password.inputs == {
            "keepers": {"generation": "1"},
            "length": 64 if password.name.startswith("site-") else 32,
            "special": True,
            "overrideSpecial": "!#%*+-.:=?@^_~",
            "minLower": 2,
            "minUpper": 2,
            "minNumeric": 2,
        }


@pytest.mark.parametrize("stack", STACKS)
def test_network_is_shared_by_id_and_mysql_answers_to_its_alias(stack: str) -> None:
    mysql_net = service(stack, "mysql").inputs["taskSpec"]["networksAdvanceds"]
    wordpress_net = service(stack, "wordpress").inputs["taskSpec"]["networksAdvanceds"]
    assert mysql_net == [{"id": "db-net-id", "aliases": ["mysql"]}]
    assert wordpress_net == [{"id": "db-net-id"}]
    assert container(service(stack, "wordpress"))["env"]["WORDPRESS_DB_HOST"] == "mysql:3306"


@pytest.mark.parametrize(("stack", "port", "mode"), [("dev", 30080, "host"), ("prod", 30000, "ingress")])
def test_ports_only_wordpress_publishes(stack: str, port: int, mode: str) -> None:
    assert service(stack, "wordpress").inputs["endpointSpec"]["ports"] == [
        {"targetPort": 80, "publishedPort": port, "publishMode": mode, "protocol": "tcp"}
    ]
    assert service(stack, "mysql").inputs["endpointSpec"] == {"mode": "dnsrr"}
    assert "endpointSpec" not in service(stack, "logging").inputs


@pytest.mark.parametrize("stack", STACKS)
def test_volumes_hold_mysql_data_and_wordpress_content(stack: str) -> None:
    volumes = {v.name: v for v in deployed(stack).of_type(VOLUME)}
    data, content = f"wordpress-swarm-{stack}-mysql-data", f"wordpress-swarm-{stack}-wordpress-content"
    assert container(service(stack, "mysql"))["mounts"] == [
        {"type": "volume", "source": data, "target": "/var/lib/mysql"}
    ]
    assert container(service(stack, "wordpress"))["mounts"] == [
        {"type": "volume", "source": content, "target": "/var/www/html/wp-content"}
    ]
    # Fixed names: a replaced volume resource finds the same data instead of an empty volume.
    assert {name: (v.inputs["name"], v.inputs["driver"]) for name, v in volumes.items()} == {
        "db-data": (data, "local"),
        "site-content": (content, "local"),
    } | ({"backups-volume": (f"wordpress-swarm-{stack}-backups", "local")} if stack == "prod" else {})
    # Data outlives `pulumi destroy`.
    assert all(v.retain_on_delete for v in volumes.values())
    assert not any(r.retain_on_delete for r in deployed(stack).resources if r.type != VOLUME)


@pytest.mark.parametrize("stack", STACKS)
def test_wordpress_deploys_in_parallel_with_mysql(stack: str) -> None:
    deployment = deployed(stack)
    mysql, wordpress = service(stack, "mysql"), service(stack, "wordpress")
    waits_for = deployment.transitive_dependencies(wordpress)
    assert mysql.urn not in waits_for
    mysql_component = deployment.one("wordpress-swarm:mysql:MySqlWithSecrets")
    # Depending on the component would mean waiting for all its children, MySQL included.
    assert mysql_component.urn not in waits_for
    # Only what WordPress really reads: its volume, the network, the password, its keys and what makes them.
    assert {deployment.by_urn(urn).name for urn in waits_for} == {
        "site-content",
        "db-net",
        "db-user-password",
        *(f"site-{wordpress_key_file(key)}" for key in WORDPRESS_KEYS),
    }
    assert {deployment.by_urn(urn).type for urn in waits_for} == {VOLUME, NETWORK, SECRET, PASSWORD}


@pytest.mark.parametrize("stack", STACKS)
def test_components_parent_their_children_and_use_the_explicit_provider(stack: str) -> None:
    deployment = deployed(stack)
    provider = deployment.one(PROVIDER)
    components = {r.urn: r for r in deployment.resources if r.type.startswith("wordpress-swarm:")}
    assert {r.type for r in components.values()} == {
        "wordpress-swarm:logging:LoggingDaemon",
        "wordpress-swarm:mysql:MySqlWithSecrets",
        "wordpress-swarm:wordpress:WordPressSite",
    } | ({"wordpress-swarm:backups:SiteBackups"} if stack == "prod" else set())
    for resource in deployment.resources:
        if resource.type.startswith("docker:"):
            assert resource.parent in components, resource.name
            assert resource.provider.startswith(provider.urn + "::"), resource.name
        if resource.type == PASSWORD:
            owner = "wordpress" if resource.name.startswith("site-") else "mysql"
            assert (
                components[resource.parent].type
                == {
                    "mysql": "wordpress-swarm:mysql:MySqlWithSecrets",
                    "wordpress": "wordpress-swarm:wordpress:WordPressSite",
                }[owner]
            )


@pytest.mark.parametrize("stack", STACKS)
def test_provider_points_at_the_stack_docker_host(stack: str) -> None:
    provider = deployed(stack).one(PROVIDER)
    assert (
        provider.inputs["host"] == {"dev": "unix:///var/run/docker.sock", "prod": "ssh://deploy@swarm-manager"}[stack]
    )


def test_the_providers_own_ssh_gets_the_options_that_stop_it_hanging() -> None:
    # It adds only -T and a connect timeout itself; BatchMode and ServerAlive must be passed in.
    # Provider inputs reach the engine JSON-encoded.
    assert json.loads(deployed("prod").one(PROVIDER).inputs["sshOpts"]) == list(SSH_SAFETY_OPTIONS)
    operator = ["-o", "StrictHostKeyChecking=yes"]
    with_options = deploy(run_main, stack_config("prod") | {"dockerSshOpts": operator}, "prod")
    assert json.loads(with_options.one(PROVIDER).inputs["sshOpts"]) == [*operator, *SSH_SAFETY_OPTIONS]
    assert "sshOpts" not in deployed("dev").one(PROVIDER).inputs  # a local socket: no ssh


@pytest.mark.parametrize("stack", STACKS)
def test_stack_outputs(stack: str) -> None:
    outputs = deployed(stack).outputs
    assert outputs == {
        "envLabel": EXPECTED_LABEL[stack],
        "url": {"dev": "http://localhost:30080/", "prod": "http://swarm-manager:30000/"}[stack],
        "publishMode": {"dev": "host", "prod": "ingress"}[stack],
        "wordpressService": "site-wordpress-a1b2c3d",
        "mysqlService": "db-mysql-a1b2c3d",
        "loggingService": "logging-logspout-a1b2c3d",
        "mysqlSecrets": ["db-root-password-a1b2c3d", "db-user-password-a1b2c3d", "db-init-file-a1b2c3d"],
        "wordpressSecrets": [
            "db-user-password-a1b2c3d",
            *(f"site-{wordpress_key_file(key)}-a1b2c3d" for key in WORDPRESS_KEYS),
        ],
        "backupServices": {
            "dev": [],
            "prod": ["backups-database-a1b2c3d", "backups-content-a1b2c3d"],
        }[stack],
    }
    assert deployed(stack).secret_outputs == set()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("envLabel", "", "wordpress-swarm:envLabel"),
        ("wordpress", {"replicas": -1}, "wordpress-swarm:wordpress.replicas"),
        ("wordpress", {"port": 70000}, "wordpress-swarm:wordpress.port"),
        ("mysql", {"image": "mysql"}, "wordpress-swarm:mysql.image"),
        ("logging", {"colour": "red"}, "wordpress-swarm:logging.colour"),
    ],
)
def test_bad_config_fails_before_any_resource_is_declared(key: str, value: Any, message: str) -> None:
    attempted = Deployment()
    with pytest.raises(SettingsError, match=message):
        deploy(run_main, stack_config("dev") | {key: value}, into=attempted)
    assert attempted.resources == []


def test_bad_json_in_a_structured_key_is_named() -> None:
    pulumi.runtime.set_all_config({"wordpress-swarm:envLabel": "test", "wordpress-swarm:wordpress": "{not json"})
    with pytest.raises(SettingsError, match=re.escape("wordpress-swarm:wordpress: got '{not json'")):
        read_settings(pulumi.Config("wordpress-swarm"))


def test_settings_come_from_the_projects_namespace() -> None:
    # Keys are read from the project's namespace and errors name it as the stack files spell it.
    pulumi.runtime.set_all_config({"renamed:envLabel": ""})
    with pytest.raises(SettingsError, match=re.escape("renamed:envLabel: got ''")):
        read_settings(pulumi.Config("renamed"))


@pytest.mark.parametrize("stack", STACKS)
def test_every_component_registers_the_outputs_it_exposes(stack: str) -> None:
    deployment = deployed(stack)
    registered = {
        r.type.rpartition(":")[2]: deployment.registered_outputs[r.urn]
        for r in deployment.resources
        if r.type.startswith("wordpress-swarm:")
    }
    assert registered["LoggingDaemon"] == {"service_name": "logging-logspout-a1b2c3d"}
    assert registered["MySqlWithSecrets"] == {
        "host": "mysql",
        "port": 3306,
        "database": "wordpress",
        "user": "wordpress",
        "network_id": "db-net-id",
        "password_secret_id": "db-user-password-id",
        "password_secret_name": "db-user-password-a1b2c3d",
        "service_name": "db-mysql-a1b2c3d",
        "secret_names": ["db-root-password-a1b2c3d", "db-user-password-a1b2c3d", "db-init-file-a1b2c3d"],
    }
    assert registered["WordPressSite"] == {
        "url": deployment.outputs["url"],
        "service_name": "site-wordpress-a1b2c3d",
        "secret_names": deployment.outputs["wordpressSecrets"],
        "content_volume_name": f"wordpress-swarm-{stack}-wordpress-content",
    }
    if stack == "prod":
        assert registered["SiteBackups"] == {
            "service_names": deployment.outputs["backupServices"],
            "volume_name": "wordpress-swarm-prod-backups",
        }


def test_the_components_take_plain_values_from_any_program() -> None:
    # No stack settings, no preflight: another program composes them from values and Inputs.
    def program() -> None:
        mysql = MySqlWithSecrets(
            "shop-db",
            MySqlWithSecretsArgs(
                image="mysql:8.4.3",
                placement_constraints=["node.role==worker"],
                database="shop",
                user="shop",
                data_node=None,
                root_password_generation=1,
                user_password_generation=1,
                encrypt_network=False,
                limits=Limits(0.5, 512),
            ),
        )
        WordPressSite(
            "shop",
            WordPressSiteArgs(
                image=pulumi.Output.from_input("wordpress:6.6.2-php8.2-apache"),
                placement_constraints=["node.role==worker"],
                database=mysql.connection,
                replicas=2,
                port=8080,
                publish_mode="ingress",
                public_host="shop.example.com",
                node=None,
                keys_generation=1,
                limits=Limits(1, 256),
            ),
        )

    deployment = deploy(program, {}, swarm=None)
    wordpress = deployment.one(SERVICE, "shop-wordpress")
    assert container(wordpress)["env"]["WORDPRESS_DB_NAME"] == "shop"
    assert wordpress.inputs["taskSpec"]["placement"]["constraints"] == ["node.role==worker"]
    assert deployment.one(NETWORK).inputs.get("options") is None


def test_prods_backups_read_mysqls_secret_and_network_and_wordpresss_content_on_its_node() -> None:
    deployment = deployed("prod")
    database, content = deployment.one(SERVICE, "backups-database"), deployment.one(SERVICE, "backups-content")
    mysql, wordpress = service("prod", "mysql"), service("prod", "wordpress")
    # The database part logs in as the application user with the very secret MySQL created it with.
    (secret,) = container(database)["secrets"]
    assert secret["secretId"] == "db-user-password-id"
    assert container(database)["env"]["DB_PASSWORD_FILE"] == secret["fileName"]
    assert database.inputs["taskSpec"]["networksAdvanceds"] == [{"id": "db-net-id"}]
    assert mysql.inputs["taskSpec"]["networksAdvanceds"][0]["id"] == "db-net-id"
    # The content part reads WordPress's own volume, read-only; both parts write one backups volume.
    (site_content,) = container(wordpress)["mounts"]
    assert {"type": "volume", "source": site_content["source"], "target": "/wp-content", "readOnly": True} in (
        container(content)["mounts"]
    )
    backups = {"type": "volume", "source": "wordpress-swarm-prod-backups", "target": "/backups"}
    assert backups in container(database)["mounts"]
    assert backups in container(content)["mounts"]
    assert "secrets" not in container(content)
    # On the node that holds wp-content, which WordPress is pinned to.
    for job in (database, content, wordpress):
        assert "node.hostname==swarm-web-1" in job.inputs["taskSpec"]["placement"]["constraints"], job.name
    assert container(database)["image"] == container(mysql)["image"]
    assert container(content)["image"] == container(wordpress)["image"]
