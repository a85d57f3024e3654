# pyright: strict
"""Each provider rule rejects a bad value; realistic inputs pass untouched."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any, cast

import pulumi
import pulumi_docker as docker
import pytest

from tests.provider_rules import (
    NETWORK,
    PROVIDER,
    SECRET,
    SERVICE,
    VOLUME,
    go_parse_duration,
    provider_violations,
)

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}


def wordpress_service() -> dict[str, Any]:
    """Service inputs as Mocks.new_resource sees them (numbers arrive as floats)."""
    return {
        "name": "wordpress",
        "labels": [{"label": "app", "value": "wordpress"}],
        "taskSpec": {
            "containerSpec": {
                "image": "wordpress:6.5-apache",
                "env": {"WORDPRESS_DB_HOST": "mysql", "WORDPRESS_DB_PASSWORD_FILE": "/run/secrets/db_password"},
                "healthcheck": {
                    "tests": ["CMD-SHELL", "curl -fsS http://localhost/ || exit 1"],
                    "interval": "10s",
                    "timeout": "5s",
                    "startPeriod": "1m30s",
                    "retries": 3.0,
                },
                "mounts": [{"target": "/var/www/html", "source": "wp-data", "type": "volume"}],
                "secrets": [
                    {"secretId": "sec_id", "secretName": "db_password", "fileName": "/run/secrets/db_password"}
                ],
                "stopGracePeriod": "30s",
            },
            "networksAdvanceds": [{"id": "net_id", "aliases": ["wordpress"]}],
            "restartPolicy": {"condition": "on-failure", "delay": "5s", "maxAttempts": 3.0, "window": "2m"},
            "placement": {"constraints": ["node.role==worker"], "maxReplicas": 1.0},
            "logDriver": {"name": "json-file", "options": {"max-size": "10m"}},
        },
        "mode": {"replicated": {"replicas": 2.0}},
        "updateConfig": {
            "parallelism": 1.0,
            "delay": "10s",
            "failureAction": "rollback",
            "monitor": "30s",
            "maxFailureRatio": "0.1",
            "order": "start-first",
        },
        "rollbackConfig": {"parallelism": 1.0, "failureAction": "pause", "order": "stop-first", "monitor": "5s"},
        "endpointSpec": {
            "mode": "vip",
            "ports": [{"targetPort": 80.0, "publishedPort": 8080.0, "protocol": "tcp", "publishMode": "ingress"}],
        },
        "convergeConfig": {"delay": "7s", "timeout": "3m"},
    }


def logspout_service() -> dict[str, Any]:
    return {
        "name": "logspout",
        "taskSpec": {
            "containerSpec": {
                "image": "gliderlabs/logspout:v3.2.14",
                "mounts": [
                    {
                        "target": "/var/run/docker.sock",
                        "source": "/var/run/docker.sock",
                        "type": "bind",
                        "readOnly": True,
                    }
                ],
            },
        },
        "mode": {"global": True},
        "endpointSpec": {"mode": "dnsrr"},
    }


GOOD_SECRET: dict[str, Any] = {"name": "db_password", "data": {**SECRET_SIG, "value": "czNjcjN0Kz8/"}}
GOOD_NETWORK: dict[str, Any] = {
    "name": "backend",
    "driver": "overlay",
    "attachable": True,
    "options": {"encrypted": "true"},
    "labels": [{"label": "tier", "value": "backend"}],
}
GOOD_VOLUME: dict[str, Any] = {"name": "wp-data", "driver": "local", "labels": [{"label": "app", "value": "wp"}]}
GOOD_PROVIDER: dict[str, Any] = {"host": "ssh://deploy@swarm-1:22", "sshOpts": json.dumps(["-o", "BatchMode=yes"])}


@pytest.mark.parametrize(
    ("token", "inputs"),
    [
        (SERVICE, wordpress_service()),
        (SERVICE, logspout_service()),
        (SECRET, GOOD_SECRET),
        (NETWORK, GOOD_NETWORK),
        (VOLUME, GOOD_VOLUME),
        (PROVIDER, GOOD_PROVIDER),
        (PROVIDER, {}),
        ("docker:index/unmodelled:Thing", {"anything": "goes"}),
    ],
)
def test_realistic_inputs_pass(token: str, inputs: dict[str, Any]) -> None:
    assert provider_violations(token, inputs) == []


Edit = Callable[[dict[str, Any]], None]
_DROP = object()


def _step(node: Any, token: str) -> Any:
    name, _, index = token.partition("[")
    node = node[name]
    return node[int(index.rstrip("]"))] if index else node


def put(path: str, value: object) -> Edit:
    """An edit setting (or, with _DROP, removing) the property at a dotted path like 'a.b[0].c'."""

    def edit(inputs: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node: Any = inputs
        for token in parents:
            node = _step(node, token)
        if value is _DROP:
            del node[leaf]
        else:
            node[leaf] = value

    return edit


def drop(path: str) -> Edit:
    return put(path, _DROP)


def _service_with(edit: Edit, *, include_daemon: bool = True) -> list[str]:
    inputs = wordpress_service()
    edit(inputs)
    return provider_violations(SERVICE, inputs, include_daemon=include_daemon)


def _cs(inputs: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = inputs["taskSpec"]["containerSpec"]
    return spec


CS = "taskSpec.containerSpec"


# ----------------------------------------------------------------- Go durations


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("0", 0),
        ("0s", 0),
        ("-0", 0),
        ("500ms", 500_000_000),
        ("1h30m", 5_400_000_000_000),
        ("1.5s", 1_500_000_000),
        (".5s", 500_000_000),
        ("1us", 1_000),
        ("1\u00b5s", 1_000),
        ("2m3s4ms", 123_004_000_000),
        ("+5s", 5_000_000_000),
        ("-5s", -5_000_000_000),
    ],
)
def test_go_parse_duration_accepts(text: str, nanos: int) -> None:
    assert go_parse_duration(text) == nanos


@pytest.mark.parametrize("text", ["10", "1 m", "", "s", ".s", "1d", "1.2.3s", "5S", "9999999999h", " 5s"])
def test_go_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="time: "):
        go_parse_duration(text)


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (f"{CS}.healthcheck.interval", "10"),
        (f"{CS}.healthcheck.timeout", "1 m"),
        (f"{CS}.healthcheck.startPeriod", "30"),
        (f"{CS}.stopGracePeriod", "30 s"),
        ("taskSpec.restartPolicy.delay", "5sec"),
        ("taskSpec.restartPolicy.window", "2"),
        ("updateConfig.delay", "1d"),
        ("updateConfig.monitor", ""),
        ("rollbackConfig.delay", "10"),
        ("rollbackConfig.monitor", "5"),
        ("convergeConfig.delay", "7"),
        ("convergeConfig.timeout", "3 m"),
    ],
)
def test_duration_fields_reject_non_go_durations(path: str, bad: str) -> None:
    assert _service_with(put(path, bad)) == [f"{path}: {bad!r} is not a Go duration (e.g. '10s', '1m30s', '500ms')"]


def test_duration_must_not_be_negative() -> None:
    problems = _service_with(put(f"{CS}.healthcheck.interval", "-5s"))
    assert problems == [f"{CS}.healthcheck.interval: '-5s' duration must not be negative"]


def test_zero_durations_are_fine() -> None:
    assert _service_with(put("updateConfig.delay", "0s")) == []
    assert _service_with(put("updateConfig.monitor", "0")) == []


# ----------------------------------------------------------------- enumerations


@pytest.mark.parametrize(
    ("path", "bad", "pattern"),
    [
        (f"{CS}.mounts[0].type", "npipe", "^(bind|volume|tmpfs)$"),
        (f"{CS}.isolation", "none", "^(default|process|hyperv)$"),
        ("taskSpec.restartPolicy.condition", "always", "^(none|on-failure|any)$"),
        ("taskSpec.runtime", "docker", "^(container|plugin)$"),
        ("updateConfig.failureAction", "abort", "^(pause|continue|rollback)$"),
        ("updateConfig.order", "start_first", "^(stop-first|start-first)$"),
        ("rollbackConfig.failureAction", "rollback", "(pause|continue)"),
        ("rollbackConfig.order", "first", "(stop-first|start-first)"),
        ("endpointSpec.mode", "VIP", "^(vip|dnsrr)$"),
        ("endpointSpec.ports[0].protocol", "http", "^(tcp|udp|sctp)$"),
        ("endpointSpec.ports[0].publishMode", "x", "^(host|ingress)$"),
    ],
)
def test_enumerations_reject_unknown_values(path: str, bad: str, pattern: str) -> None:
    assert _service_with(put(path, bad), include_daemon=False) == [
        f"{path}: {bad!r} doesn't match the pattern {pattern!r}"
    ]


def test_bind_propagation_enumeration() -> None:
    inputs = logspout_service()
    _cs(inputs)["mounts"][0]["bindOptions"] = {"propagation": "private-ish"}
    assert provider_violations(SERVICE, inputs) == [
        f"{CS}.mounts[0].bindOptions.propagation: 'private-ish' doesn't match the pattern "
        "'^(private|rprivate|shared|rshared|slave|rslave)$'"
    ]


def test_rollback_patterns_are_unanchored_like_the_provider() -> None:
    # resource_docker_service.go uses "(pause|continue)" without ^...$ for rollback_config.
    assert _service_with(put("rollbackConfig.failureAction", "pause-now")) == []


# ----------------------------------------------------------------- integers and ratios


@pytest.mark.parametrize(
    "path",
    [
        f"{CS}.healthcheck.retries",
        f"{CS}.secrets[0].fileMode",
        "taskSpec.restartPolicy.maxAttempts",
        "taskSpec.placement.maxReplicas",
        "taskSpec.forceUpdate",
        "mode.replicated.replicas",
        "updateConfig.parallelism",
        "rollbackConfig.parallelism",
    ],
)
def test_integers_must_be_non_negative(path: str) -> None:
    assert _service_with(put(path, -1.0)) == [f"{path}: -1 must be >= 0"]


def test_config_file_mode_must_be_non_negative() -> None:
    edit = put(f"{CS}.configs", [{"configId": "c", "fileName": "/c", "fileMode": -292.0}])
    assert _service_with(edit) == [f"{CS}.configs[0].fileMode: -292 must be >= 0"]


def test_integers_must_be_integral() -> None:
    assert _service_with(put("mode.replicated.replicas", 1.5)) == ["mode.replicated.replicas: 1.5 is not an integer"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1.5", "'1.5' has to be between 0.0 and 1.0"),
        ("-0.1", "'-0.1' has to be between 0.0 and 1.0"),
        ("ten percent", "'ten percent' is not a float"),
        ("10%", "'10%' is not a float"),
        (0.1, "0.1 is not a string (the provider takes a string such as '0.1')"),
    ],
)
def test_max_failure_ratio_is_a_string_float_between_0_and_1(value: object, message: str) -> None:
    assert _service_with(put("updateConfig.maxFailureRatio", value)) == [f"updateConfig.maxFailureRatio: {message}"]


def test_ratio_edges_pass() -> None:
    assert _service_with(put("rollbackConfig.maxFailureRatio", "1")) == []
    assert _service_with(put("rollbackConfig.maxFailureRatio", "0.0")) == []


# ----------------------------------------------------------------- required and conflicts


@pytest.mark.parametrize(
    "path",
    [
        f"{CS}.image",
        f"{CS}.mounts[0].type",
        f"{CS}.mounts[0].target",
        f"{CS}.secrets[0].fileName",
        f"{CS}.secrets[0].secretId",
        f"{CS}.healthcheck.tests",
        "taskSpec.logDriver.name",
        "endpointSpec.ports[0].targetPort",
        "labels[0].value",
        "taskSpec",
    ],
)
def test_required_fields(path: str) -> None:
    assert f"{path}: required field is missing" in _service_with(drop(path))


def test_global_conflicts_with_replicated_even_when_false() -> None:
    problems = _service_with(put("mode.global", False))
    assert "mode.replicated: conflicts with mode.global" in problems
    assert "mode.global: conflicts with mode.replicated" in problems


def test_global_mode_conflicts_with_converge_config() -> None:
    inputs = logspout_service()
    inputs["convergeConfig"] = {"delay": "7s", "timeout": "3m"}
    assert provider_violations(SERVICE, inputs) == [
        "mode.global: conflicts with convergeConfig",
        "convergeConfig: conflicts with mode.global",
    ]


def test_networks_advanced_needs_exactly_one_of_id_and_name() -> None:
    both = _service_with(put("taskSpec.networksAdvanceds[0].name", "backend"))
    assert both == ["taskSpec.networksAdvanceds[0]: 'id' conflicts with 'name' (set only 'id')"]
    neither = _service_with(drop("taskSpec.networksAdvanceds[0].id"))
    assert neither == ["taskSpec.networksAdvanceds[0]: one of 'id' or 'name' is required"]


def test_unknown_values_are_skipped() -> None:
    inputs = wordpress_service()
    for edit in (
        put(f"{CS}.healthcheck.interval", UNKNOWN),
        put("taskSpec.networksAdvanceds[0].id", UNKNOWN),
        put("endpointSpec", UNKNOWN),
    ):
        edit(inputs)
    assert provider_violations(SERVICE, inputs) == []


# ----------------------------------------------------------------- daemon-side rules


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (put("name", "wp_db"), "name: [daemon] 'wp_db' is not a DNS label of <= 63 chars"),
        (
            put("endpointSpec.mode", "dnsrr"),
            "endpointSpec.ports[0]: [daemon] port published with ingress mode can't be used with dnsrr mode",
        ),
        (
            put(f"{CS}.healthcheck.tests", ["curl", "-f", "x"]),
            f"{CS}.healthcheck.tests: [daemon] first element must be NONE, CMD or CMD-SHELL, got 'curl'",
        ),
        (put(f"{CS}.healthcheck.tests", ["CMD"]), f"{CS}.healthcheck.tests: [daemon] CMD needs a command after it"),
        (
            put(f"{CS}.healthcheck.interval", "500us"),
            f"{CS}.healthcheck.interval: [daemon] '500us' is below the 1ms minimum",
        ),
        (
            put(f"{CS}.mounts[0].target", "var/www"),
            f"{CS}.mounts[0].target: [daemon] 'var/www' must be an absolute container path",
        ),
        (
            put(f"{CS}.mounts[0].bindOptions", {"propagation": "rprivate"}),
            f"{CS}.mounts[0].bindOptions: [daemon] not allowed for mount type 'volume'",
        ),
        (
            put("endpointSpec.ports[0].publishedPort", 70000.0),
            "endpointSpec.ports[0].publishedPort: [daemon] port 70000 outside 0..65535",
        ),
    ],
)
def test_daemon_rules(edit: Edit, expected: str) -> None:
    assert _service_with(edit) == [expected]
    assert _service_with(edit, include_daemon=False) == []


def test_bind_mount_needs_absolute_source() -> None:
    inputs = logspout_service()
    _cs(inputs)["mounts"][0]["source"] = "docker.sock"
    assert provider_violations(SERVICE, inputs) == [
        f"{CS}.mounts[0].source: [daemon] a bind mount needs an absolute host path"
    ]


# ----------------------------------------------------------------- Secret / Network / Provider


@pytest.mark.parametrize(
    "data",
    [
        "czNjcjN0Kz8_",  # URL-safe alphabet: what the docstring promises, what Go StdEncoding refuses
        "czNjcjN0Kz8",  # missing padding
        "aGVsbG8",  # missing padding
        "hello world",
        "aGVsbG8=aGVsbG8=",  # data after padding
    ],
)
def test_secret_data_must_be_padded_standard_base64(data: str) -> None:
    problems = provider_violations(SECRET, {"name": "s", "data": {**SECRET_SIG, "value": data}})
    assert len(problems) == 1
    assert problems[0].startswith("data: is not base64 decodeable with Go base64.StdEncoding")
    assert data not in problems[0]  # the secret is not echoed


def test_secret_data_edge_cases_accepted_by_go() -> None:
    for data in ("", "aGVsbG8=", "aGVs\nbG8=", "+/+/"):
        assert provider_violations(SECRET, {"name": "s", "data": data}) == []


def test_secret_required_and_name_rules() -> None:
    assert provider_violations(SECRET, {"name": "s"}) == ["data: required field is missing"]
    assert provider_violations(SECRET, {"name": "db password", "data": "YQ=="}) == [
        "name: [daemon] 'db password' is not a valid secret name"
    ]


def test_network_encrypted_option_is_key_presence() -> None:
    problems = provider_violations(NETWORK, {**GOOD_NETWORK, "options": {"encrypted": "false"}})
    assert problems == ["options.encrypted: [daemon] the key's presence encrypts; 'false' does not disable it"]
    bridge = provider_violations(NETWORK, {**GOOD_NETWORK, "driver": "bridge"})
    assert bridge == ["options.encrypted: [daemon] encryption is only implemented by driver 'overlay'"]


def test_labels_need_label_and_value() -> None:
    assert provider_violations(VOLUME, {"labels": [{"label": "a"}]}) == ["labels[0].value: required field is missing"]
    assert provider_violations(NETWORK, {"labels": [{"value": "a"}]}) == ["labels[0].label: required field is missing"]


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"host": "swarm-1:2375"}, "is not a Docker host URL"),
        ({"host": "ssh://deploy@swarm-1/var/run"}, "extra path/query/fragment"),
        ({"host": "ssh://deploy:pw@swarm-1"}, "plain-text password is not supported"),
        ({"host": "ssh://"}, "no host specified"),
        ({"host": "tcp://swarm-1:2376", "sshOpts": json.dumps(["-i", "k"])}, "only used with an ssh:// host"),
        ({"host": "ssh://a@b", "sshOpts": json.dumps("-o BatchMode=yes")}, "is not a list of strings"),
    ],
)
def test_provider_config(inputs: dict[str, Any], expected: str) -> None:
    problems = provider_violations(PROVIDER, inputs)
    assert len(problems) == 1
    assert expected in problems[0]


# ----------------------------------------------------------------- real SDK shapes


def test_paths_match_what_the_sdk_sends_to_mocks() -> None:
    """Build resources with the real SDK under mocks and check the rules see them."""
    seen: dict[str, list[dict[str, Any]]] = {}

    class Recorder(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
            inputs = cast(dict[str, Any], args.inputs)  # pyright: ignore[reportUnknownMemberType]
            seen.setdefault(args.typ, []).append(copy.deepcopy(inputs))
            return f"{args.name}_id", dict(inputs)

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
            return {}, None

    pulumi.runtime.set_mocks(Recorder(), preview=False)

    secret = docker.Secret("db", name="db_password", data="czNjcjN0Kz8_")  # URL-safe: refused
    service = docker.Service(
        "wp",
        name="wordpress",
        task_spec=docker.ServiceTaskSpecArgs(
            container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                image="wordpress:6.5-apache",
                healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(tests=["CMD", "true"], interval="10"),
                secrets=[
                    docker.ServiceTaskSpecContainerSpecSecretArgs(
                        secret_id=secret.id, file_name="/run/secrets/db_password"
                    )
                ],
            ),
        ),
        mode=docker.ServiceModeArgs(global_=False, replicated=docker.ServiceModeReplicatedArgs(replicas=1)),
        endpoint_spec=docker.ServiceEndpointSpecArgs(
            ports=[docker.ServiceEndpointSpecPortArgs(target_port=80, publish_mode="ingres")]
        ),
    )

    def wait() -> pulumi.Output[list[Any]]:
        return pulumi.Output.all(secret.id, service.id)

    pulumi.runtime.test(wait)()  # pyright: ignore[reportUnknownMemberType]

    assert provider_violations(SECRET, seen[SECRET][0], include_daemon=False) == [
        "data: is not base64 decodeable with Go base64.StdEncoding "
        "(standard alphabet '+/', '=' padding required; URL-safe '-_' is rejected)"
    ]
    assert sorted(provider_violations(SERVICE, seen[SERVICE][0], include_daemon=False)) == sorted(
        [
            f"{CS}.healthcheck.interval: '10' is not a Go duration (e.g. '10s', '1m30s', '500ms')",
            "endpointSpec.ports[0].publishMode: 'ingres' doesn't match the pattern '^(host|ingress)$'",
            "mode.replicated: conflicts with mode.global",
            "mode.global: conflicts with mode.replicated",
        ]
    )
