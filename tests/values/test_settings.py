"""Stack settings: the real stack files parse to what they say; each bad value is named and refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stackconfig.settings import (
    KEYS,
    REQUIRED,
    SettingsError,
    default,
    host_of_docker_url,
    parse_settings,
)
from tests.support import settings_of, stack_config


def test_every_default_comes_from_the_keys_table() -> None:
    # Only envLabel is required: everything else parses from the table's defaults alone.
    minimal = parse_settings({"envLabel": "test"})
    assert [key.name for key in KEYS if key.default is REQUIRED] == ["envLabel"]
    assert minimal.docker_host == default("dockerHost")
    assert minimal.wordpress.image == default("wordpress.image")
    assert (minimal.mysql.cpus, minimal.mysql.memory_mb) == (default("mysql.cpus"), default("mysql.memoryMb"))
    assert minimal.logging.route is default("logging.route") is None
    assert minimal.node_labels.nodes == tuple(default("nodes.names"))


def test_dev_stack_targets_test_nodes_on_a_single_node_lab() -> None:
    dev = settings_of("dev")
    assert dev.env_label == "test"
    assert dev.placement_constraint == "node.labels.env==test"
    assert dev.docker_host == "unix:///var/run/docker.sock"
    assert (dev.wordpress.port, dev.wordpress.publish_mode, dev.wordpress.replicas) == (30080, "host", 1)
    assert dev.wordpress.public_host == "localhost"
    assert dev.mysql.data_node is None


def test_prod_stack_targets_prod_nodes_of_a_remote_swarm() -> None:
    prod = settings_of("prod")
    assert prod.placement_constraint == "node.labels.env==prod"
    assert prod.docker_host.startswith("ssh://")
    assert (prod.wordpress.port, prod.wordpress.publish_mode) == (30000, "ingress")
    assert prod.wordpress.public_host == host_of_docker_url(prod.docker_host) == "swarm-manager"
    assert prod.mysql.data_node == "swarm-db-1"
    assert prod.logging.route == "syslog+tls://logs.example.com:6514"


def test_dev_and_prod_never_share_a_published_port() -> None:
    # One swarm may carry both; an ingress port is cluster-wide.
    assert settings_of("dev").wordpress.port != settings_of("prod").wordpress.port


def test_images_default_to_pinned_tags() -> None:
    dev = settings_of("dev")
    assert dev.mysql.image == "mysql:8.4.3"
    assert dev.wordpress.image == "wordpress:6.6.2-php8.2-apache"
    assert dev.logging.image == "gliderlabs/logspout:v3.2.14"


def test_changing_the_label_alone_changes_the_constraint() -> None:
    config = stack_config("dev") | {"envLabel": "staging"}
    assert parse_settings(config).placement_constraint == "node.labels.env==staging"


def test_limits_are_read_in_their_units() -> None:
    config = stack_config("prod")
    prod = parse_settings(config)
    assert (prod.mysql.cpus, prod.mysql.memory_mb) == (2.0, 2048)


def _with(path: str, value: Any) -> dict[str, Any]:
    config = copy.deepcopy(stack_config("dev"))
    group, _, member = path.partition(".")
    if member:
        config.setdefault(group, {})[member] = value
    else:
        config[group] = value
    return config


BAD_VALUES: list[tuple[str, Any, str]] = [
    ("envLabel", "", "wordpress-swarm:envLabel: got ''"),
    ("envLabel", "te st", "wordpress-swarm:envLabel: got 'te st'"),
    ("envLabel", "prod==x", "allowed: 1-63 letters"),
    ("envLabel", "-test", "wordpress-swarm:envLabel"),
    ("wordpress.replicas", -1, "wordpress-swarm:wordpress.replicas: got -1; allowed: an integer from 0 to 100"),
    ("wordpress.replicas", "two", "wordpress-swarm:wordpress.replicas: got 'two'"),
    ("wordpress.replicas", "2", "wordpress-swarm:wordpress.replicas: got '2'"),
    ("wordpress.replicas", True, "wordpress-swarm:wordpress.replicas: got True"),
    ("wordpress.replicas", 1.5, "wordpress-swarm:wordpress.replicas: got 1.5"),
    ("wordpress.port", 0, "wordpress-swarm:wordpress.port: got 0; allowed: an integer from 1 to 65535"),
    ("wordpress.port", 65536, "wordpress-swarm:wordpress.port: got 65536"),
    ("wordpress.port", "http", "wordpress-swarm:wordpress.port: got 'http'"),
    (
        "wordpress.publishMode",
        "global",
        "wordpress-swarm:wordpress.publishMode: got 'global'; allowed: 'ingress' or 'host'",
    ),
    ("wordpress.image", "", "wordpress-swarm:wordpress.image: got ''; allowed: a non-empty image reference"),
    ("wordpress.image", "wordpress", "wordpress-swarm:wordpress.image: got 'wordpress'"),
    ("wordpress.image", "wordpress:latest", "wordpress-swarm:wordpress.image: got 'wordpress:latest'"),
    ("mysql.image", "mysql:", "wordpress-swarm:mysql.image"),
    ("logging.image", "Gliderlabs/Logspout:v3", "wordpress-swarm:logging.image"),
    ("wordpress.replcas", 2, "wordpress-swarm:wordpress.replcas: got 2; allowed: one of the keys image, replicas"),
    ("mysql.password", "x", "wordpress-swarm:mysql.password: got 'x'; allowed: one of the keys"),
    ("logging.routes", [], "wordpress-swarm:logging.routes"),
    ("wordpress", [1, 2], "wordpress-swarm:wordpress: got [1, 2]; allowed: an object with keys"),
    ("mysql", "mysql:8", "wordpress-swarm:mysql: got 'mysql:8'"),
    ("mysql.user", "word press", "wordpress-swarm:mysql.user: got 'word press'"),
    ("mysql.database", "x" * 33, "wordpress-swarm:mysql.database"),
    ("mysql.dataNode", "node 1", "wordpress-swarm:mysql.dataNode: got 'node 1'"),
    ("mysql.userPasswordGeneration", 0, "wordpress-swarm:mysql.userPasswordGeneration: got 0"),
    ("mysql.memoryMb", -5, "wordpress-swarm:mysql.memoryMb: got -5"),
    ("wordpress.cpus", 0, "wordpress-swarm:wordpress.cpus: got 0; allowed: a number greater than 0"),
    ("logging.cpus", "half", "wordpress-swarm:logging.cpus: got 'half'"),
    ("logging.route", "logs.example.com:514", "wordpress-swarm:logging.route: got 'logs.example.com:514'"),
    ("dockerHost", "manager:2375", "wordpress-swarm:dockerHost: got 'manager:2375'; allowed: a Docker host URL"),
    ("dockerSshOpts", "-o x", "wordpress-swarm:dockerSshOpts"),
    ("nodes.names", "node1", "wordpress-swarm:nodes.names: got 'node1'"),
    ("nodes.takeOver", "yes", "wordpress-swarm:nodes.takeOver: got 'yes'; allowed: true or false"),
    ("wordpress.keysGeneration", 0, "wordpress-swarm:wordpress.keysGeneration: got 0"),
    ("mysql.encryptNetwork", "false", "wordpress-swarm:mysql.encryptNetwork: got 'false'; allowed: true or false"),
    ("wordpress.publicHost", "http://x", "wordpress-swarm:wordpress.publicHost"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD_VALUES, ids=[f"{k}={v!r}" for k, v, _ in BAD_VALUES])
def test_bad_value_is_refused_naming_the_key_and_what_is_allowed(key: str, value: Any, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        parse_settings(_with(key, value))
    assert len(raised.value.problems) == 1, raised.value.problems
    assert message in raised.value.problems[0]
    assert "allowed:" in raised.value.problems[0]


def test_missing_label_is_refused() -> None:
    config = stack_config("dev")
    del config["envLabel"]
    with pytest.raises(SettingsError, match="wordpress-swarm:envLabel: got None"):
        parse_settings(config)


def test_every_problem_is_reported_at_once() -> None:
    config = _with("wordpress.port", 70000)
    config["wordpress"]["replicas"] = -2
    config["envLabel"] = ""
    with pytest.raises(SettingsError) as raised:
        parse_settings(config)
    assert [p.split(":")[1] for p in raised.value.problems] == ["envLabel", "wordpress.replicas", "wordpress.port"]


@pytest.mark.parametrize(
    "image",
    [
        "mysql:8.4.3",
        "registry.example.com:5000/team/mysql:8.4",
        "mysql@sha256:" + "a" * 64,
        "mysql:8.4@sha256:" + "b" * 64,
    ],
)
def test_pinned_image_references_are_accepted(image: str) -> None:
    assert parse_settings(_with("mysql.image", image)).mysql.image == image


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("unix:///var/run/docker.sock", "localhost"),
        ("ssh://deploy@manager.example.com", "manager.example.com"),
        ("ssh://manager:2222", "manager"),
        ("tcp://10.0.0.5:2376", "10.0.0.5"),
    ],
)
def test_public_host_follows_the_docker_host(url: str, host: str) -> None:
    assert host_of_docker_url(url) == host
