"""The CrossGuard pack in policy/: each policy on hand-built services, then the whole pack over what the
real program declares, as `pulumi up` (resolved inputs) and as `pulumi preview` (computed values unknown).

Resources reach the policies the way the policy server hands them over: ResourceValidationArgs and
PolicyResource objects whose props are wrapped in pulumi_policy's unknown-checking proxy.
"""

from __future__ import annotations

import copy
import runpy
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pulumi_docker as docker
import pulumi_policy
import pytest
import yaml
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

import components.logging_daemon
import components.mysql
import components.wordpress
from policy.wpswarm_policies import (
    HEALTHCHECK_EXEMPT_LABEL,
    MANDATORY,
    NETWORK,
    POLICIES,
    SECRET_NETWORKS_POLICY,
    SERVICE,
    UNKNOWN,
    parse_image,
    plain,
    secret_literal,
)
from tests.support import ROOT, STACKS, Declared, deploy_stack

POLICY_DIR = ROOT / "policy"
PACK_LEVEL = EnforcementLevel.MANDATORY  # what policy/__main__.py gives policies without their own


@dataclass(frozen=True)
class Violation:
    policy: str
    level: EnforcementLevel
    resource: str
    message: str


def _opts(parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=pulumi_policy.PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=parent,
    )


def _level(policy: Policy) -> EnforcementLevel:
    return policy.enforcement_level or PACK_LEVEL


def _collector(policy: Policy, found: list[Violation], default_resource: str) -> Callable[[str, str | None], None]:
    def report(message: str, urn: str | None = None) -> None:
        found.append(Violation(policy.name, _level(policy), (urn or default_resource).split("::")[-1], message))

    return report


def run_pack(
    resources: Sequence[Declared], props: Callable[[Declared], dict[str, Any]] | None = None
) -> list[Violation]:
    """Every policy of the pack over `resources`: resource policies one resource at a time (Analyze),
    stack policies once over all of them (AnalyzeStack)."""
    props_of = props or (lambda r: r.inputs)
    found: list[Violation] = []
    stack = _policy_resources(resources, props_of)
    for policy in POLICIES:
        if isinstance(policy, ResourceValidationPolicy):
            for resource in resources:
                args = ResourceValidationArgs(
                    resource.type,
                    unknown_checking_proxy(props_of(resource)),
                    resource.urn,
                    resource.name,
                    _opts(resource.parent or None),
                    None,
                )
                policy.validate(args, _collector(policy, found, resource.urn))
        elif isinstance(policy, StackValidationPolicy):
            policy.validate(StackValidationArgs(stack), _collector(policy, found, ""))
    return found


def _policy_resources(
    resources: Sequence[Declared], props_of: Callable[[Declared], dict[str, Any]]
) -> list[PolicyResource]:
    """What AnalyzeStack builds: parent and dependencies linked to the other resources' objects."""
    built = {
        r.urn: PolicyResource(
            r.type, unknown_checking_proxy(props_of(r)), r.urn, r.name, _opts(r.parent or None), None, None, [], {}
        )
        for r in resources
    }
    for r in resources:
        built[r.urn].parent = built.get(r.parent)
        built[r.urn].dependencies = [built[d] for d in r.dependencies if d in built]
    return list(built.values())


def mandatory(found: Sequence[Violation]) -> set[tuple[str, str]]:
    return {(v.policy, v.resource) for v in found if v.level == EnforcementLevel.MANDATORY}


def advisory(found: Sequence[Violation]) -> set[tuple[str, str]]:
    return {(v.policy, v.resource) for v in found if v.level == EnforcementLevel.ADVISORY}


# --- Hand-built services ---------------------------------------------------------------------------

STACK_URN = "urn:pulumi:dev::wordpress-swarm::"


def declared(type_: str, name: str, inputs: dict[str, Any], dependencies: Sequence[str] = ()) -> Declared:
    return Declared(
        type=type_,
        name=name,
        urn=f"{STACK_URN}{type_}::{name}",
        inputs=inputs,
        secret_paths=set(),
        parent="",
        dependencies=list(dependencies),
        provider="",
        custom=True,
    )


def good_service(role: str = "wordpress", image: str = "wordpress:6.6.2-php8.2-apache") -> dict[str, Any]:
    """A service as the engine receives it that every policy accepts."""
    return {
        "labels": [
            {"label": "wordpress-swarm.role", "value": role},
            {"label": "wordpress-swarm.stack", "value": "dev"},
        ],
        "mode": {"replicated": {"replicas": 2.0}},
        "taskSpec": {
            "containerSpec": {
                "image": image,
                "env": {"WORDPRESS_DB_PASSWORD_FILE": "/run/secrets/db", "WORDPRESS_DB_HOST": "mysql:3306"},
                "args": ["--verbose"],
                "healthcheck": {"tests": ["CMD", "curl", "-f", "http://127.0.0.1/"], "interval": "15s"},
                "mounts": [{"type": "volume", "source": "content", "target": "/var/www/html"}],
            },
            "placement": {"constraints": ["node.labels.env==test"]},
            "resources": {"limits": {"memoryBytes": 536870912.0, "nanoCpus": 1e9}},
            "restartPolicy": {"condition": "any", "delay": "5s"},
        },
        "endpointSpec": {"ports": [{"targetPort": 80.0, "publishedPort": 30080.0}]},
        "updateConfig": {"failureAction": "rollback", "parallelism": 1.0},
    }


def good_logger() -> dict[str, Any]:
    props = good_service("logging", "gliderlabs/logspout:v3.2.14")
    props["mode"] = {"global": True}
    del props["endpointSpec"], props["updateConfig"]
    props["taskSpec"]["containerSpec"]["mounts"] = [
        {"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock", "readOnly": True}
    ]
    return props


def good_database(role: str = "mysql", image: str = "mysql:8.4.3") -> dict[str, Any]:
    props = good_service(role, image)
    props["endpointSpec"] = {"mode": "dnsrr"}
    props["updateConfig"] = {"failureAction": "pause"}
    return props


def violations_of(props: dict[str, Any], type_: str = SERVICE) -> set[str]:
    return {v.policy for v in run_pack([declared(type_, "svc", props)])}


def with_change(props: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    changed = copy.deepcopy(props)
    change(changed)
    return changed


def container(props: dict[str, Any]) -> dict[str, Any]:
    return props["taskSpec"]["containerSpec"]


@pytest.mark.parametrize("props", [good_service(), good_logger(), good_database()], ids=["web", "logger", "db"])
def test_a_well_built_service_passes_every_policy(props: dict[str, Any]) -> None:
    assert violations_of(props) == set()


def test_policies_only_look_at_services() -> None:
    # A secret's data or a network's options are not a service environment.
    assert violations_of({"data": "cGFzc3dvcmQ=", "labels": []}, "docker:index/secret:Secret") == set()


BAD_CASES: dict[str, tuple[Callable[[], dict[str, Any]], Callable[[dict[str, Any]], object], str]] = {
    "password in env": (
        good_service,
        lambda p: container(p)["env"].update(WORDPRESS_DB_PASSWORD="hunter2"),
        "service-env-no-secrets",
    ),
    "token in env": (good_service, lambda p: container(p)["env"].update(GITHUB_TOKEN="x"), "service-env-no-secrets"),
    "secret in env": (
        good_service,
        lambda p: container(p)["env"].update(WORDPRESS_AUTH_SECRET="x"),
        "service-env-no-secrets",
    ),
    "lower-case password in env": (
        good_service,
        lambda p: container(p)["env"].update(db_password="x"),
        "service-env-no-secrets",
    ),
    "--password= in args": (
        good_service,
        lambda p: container(p).update(args=["--db-password=hunter2"]),
        "service-no-secret-literals",
    ),
    "--token <value> in commands": (
        good_service,
        lambda p: container(p).update(commands=["app", "--token", "s3cr3t"]),
        "service-no-secret-literals",
    ),
    "mysql -p<password> in health check": (
        good_database,
        lambda p: container(p)["healthcheck"].update(tests=["CMD-SHELL", "mysqladmin ping -uroot -phunter2"]),
        "service-no-secret-literals",
    ),
    "credentials in a URL arg": (
        good_logger,
        lambda p: container(p).update(args=["syslog+tls://user:hunter2@logs.example.com:6514"]),
        "service-no-secret-literals",
    ),
    "private key in env value": (
        good_service,
        lambda p: container(p)["env"].update(TLS_KEY_PEM="-----BEGIN RSA PRIVATE KEY-----\nMIIE"),
        "service-no-secret-literals",
    ),
    "no placement": (good_service, lambda p: p["taskSpec"].pop("placement"), "service-placement-env"),
    "placement by hostname only": (
        good_service,
        lambda p: p["taskSpec"]["placement"].update(constraints=["node.hostname==a"]),
        "service-placement-env",
    ),
    "env constraint with no value": (
        good_service,
        lambda p: p["taskSpec"]["placement"].update(constraints=["node.labels.env=="]),
        "service-placement-env",
    ),
    "no health check": (good_service, lambda p: container(p).pop("healthcheck"), "service-health-check"),
    "health check NONE": (
        good_service,
        lambda p: container(p).update(healthcheck={"tests": ["NONE"]}),
        "service-health-check",
    ),
    "exemption label on a non-logging service": (
        good_service,
        lambda p: p["labels"].append({"label": HEALTHCHECK_EXEMPT_LABEL, "value": "because"}),
        "service-health-check",
    ),
    "logger without health check or exemption": (
        good_logger,
        lambda p: container(p).pop("healthcheck"),
        "service-health-check",
    ),
    "logger exempted without a reason": (
        good_logger,
        lambda p: (
            container(p).pop("healthcheck"),
            p["labels"].append({"label": HEALTHCHECK_EXEMPT_LABEL, "value": " "}),
        ),
        "service-health-check",
    ),
    ":latest": (good_service, lambda p: container(p).update(image="wordpress:latest"), "service-image-pinned"),
    "no tag": (good_service, lambda p: container(p).update(image="wordpress"), "service-image-pinned"),
    "registry port, no tag": (
        good_service,
        lambda p: container(p).update(image="registry.local:5000/team/wordpress"),
        "service-image-pinned",
    ),
    "database publishes its port": (
        good_database,
        lambda p: p.update(endpointSpec={"ports": [{"targetPort": 3306.0, "publishedPort": 3306.0}]}),
        "database-no-published-ports",
    ),
    "database by role label, odd image": (
        lambda: good_database("database", "example/custom-db:1"),
        lambda p: p.update(endpointSpec={"ports": [{"targetPort": 5000.0, "publishedPort": 5000.0}]}),
        "database-no-published-ports",
    ),
    "database by image, no role label, target port only": (
        lambda: good_database("cache", "docker.io/library/postgres:16"),
        lambda p: p.update(endpointSpec={"ports": [{"targetPort": 5432.0}]}),
        "database-no-published-ports",
    ),
    "socket into a non-logging service": (
        good_service,
        lambda p: container(p)["mounts"].append(
            {"type": "bind", "source": "/var/run/docker.sock", "target": "/s", "readOnly": True}
        ),
        "docker-socket-logging-only",
    ),
    "/var/run into a non-logging service": (
        good_service,
        lambda p: container(p)["mounts"].append(
            {"type": "bind", "source": "/var/run/", "target": "/h", "readOnly": True}
        ),
        "docker-socket-logging-only",
    ),
    "socket writable in the logger": (
        good_logger,
        lambda p: container(p)["mounts"][0].pop("readOnly"),
        "docker-socket-logging-only",
    ),
    "no memory limit": (good_service, lambda p: p["taskSpec"].pop("resources"), "service-memory-limit"),
    "cpu limit only": (
        good_service,
        lambda p: p["taskSpec"].update(resources={"limits": {"nanoCpus": 1e9}}),
        "service-memory-limit",
    ),
    "no restart policy": (good_service, lambda p: p["taskSpec"].pop("restartPolicy"), "service-restart-policy"),
    "restart condition none": (
        good_service,
        lambda p: p["taskSpec"]["restartPolicy"].update(condition="none"),
        "service-restart-policy",
    ),
    "web update pauses on failure": (
        good_service,
        lambda p: p["updateConfig"].update(failureAction="pause"),
        "web-update-rollback",
    ),
    "web service without update config": (good_service, lambda p: p.pop("updateConfig"), "web-update-rollback"),
    "replicated service publishing a port counts as web": (
        lambda: good_service("api", "example/api:1.0"),
        lambda p: p.pop("updateConfig"),
        "web-update-rollback",
    ),
}


@pytest.mark.parametrize("case", BAD_CASES)
def test_each_policy_catches_its_violation_and_only_that(case: str) -> None:
    build, change, policy = BAD_CASES[case]
    assert violations_of(build()) == set(), "the starting point must be clean"
    assert violations_of(with_change(build(), change)) == {policy}


GOOD_VARIANTS: dict[str, tuple[Callable[[], dict[str, Any]], Callable[[dict[str, Any]], object]]] = {
    "digest without tag": (good_service, lambda p: container(p).update(image="wordpress@sha256:" + "a" * 64)),
    "latest pinned by digest": (
        good_service,
        lambda p: container(p).update(image="wordpress:latest@sha256:" + "b" * 64),
    ),
    "registry port and tag": (good_service, lambda p: container(p).update(image="registry.local:5000/wp:6.6")),
    "password file variables": (good_database, lambda p: container(p)["env"].update(MYSQL_ROOT_PASSWORD_FILE="/run/x")),
    "password read from a secret file in a shell": (
        good_database,
        lambda p: container(p)["healthcheck"].update(
            tests=["CMD-SHELL", "mysqladmin ping -uroot -p$(cat /run/secrets/root) --port=3306"]
        ),
    ),
    "--password-file flag": (good_service, lambda p: container(p).update(args=["--password-file=/run/secrets/db"])),
    "--password from a variable": (good_service, lambda p: container(p).update(args=["--password", "$DB_PASSWORD"])),
    "syslog route without credentials": (good_logger, lambda p: container(p).update(args=["syslog+tls://logs:6514"])),
    "logger exempted with a reason": (
        good_logger,
        lambda p: (
            container(p).pop("healthcheck"),
            p["labels"].append({"label": HEALTHCHECK_EXEMPT_LABEL, "value": "image has no HTTP client to probe with"}),
        ),
    ),
    "restart on failure": (good_service, lambda p: p["taskSpec"]["restartPolicy"].update(condition="on-failure")),
    "global web service needs no rollback": (
        good_service,
        lambda p: (p.update(mode={"global": True}), p.pop("updateConfig")),
    ),
    "internal replicated worker needs no rollback": (
        lambda: good_service("worker", "example/worker:2"),
        lambda p: (p.pop("endpointSpec"), p.pop("updateConfig")),
    ),
    "extra constraints beside the env label": (
        good_database,
        lambda p: p["taskSpec"]["placement"]["constraints"].append("node.hostname==db-1"),
    ),
}


@pytest.mark.parametrize("case", GOOD_VARIANTS)
def test_allowed_variants_pass(case: str) -> None:
    build, change = GOOD_VARIANTS[case]
    assert violations_of(with_change(build(), change)) == set()


def test_messages_say_how_to_fix() -> None:
    broken = with_change(good_service(), lambda p: container(p).update(image="wordpress:latest"))
    [violation] = run_pack([declared(SERVICE, "svc", broken)])
    assert "wordpress:<version>" in violation.message
    assert violation.level == EnforcementLevel.MANDATORY


@pytest.mark.parametrize(
    ("image", "name", "tag", "digest"),
    [
        ("mysql:8.4.3", "mysql", "8.4.3", None),
        ("bitnami/mysql", "mysql", None, None),
        ("registry.local:5000/a/b:1@sha256:ff", "b", "1", "sha256:ff"),
        ("registry.local:5000/a/b", "b", None, None),
    ],
)
def test_parse_image(image: str, name: str, tag: str | None, digest: str | None) -> None:
    ref = parse_image(image)
    assert (ref.name, ref.tag, ref.digest) == (name, tag, digest)


def test_secret_literal_ignores_the_programs_health_checks() -> None:
    from components.logging_daemon import LOGSPOUT_HEALTH
    from components.mysql import MYSQL_HEALTH
    from components.wordpress import WORDPRESS_HEALTH

    for check in (LOGSPOUT_HEALTH, MYSQL_HEALTH, WORDPRESS_HEALTH):
        assert secret_literal(check.test) is None


def test_plain_reads_unknowns_through_the_proxy_without_raising() -> None:
    proxied = unknown_checking_proxy({"a": UNKNOWN_STRING_VALUE, "b": [1.0, UNKNOWN_STRING_VALUE], "c": {"d": "x"}})
    assert plain(proxied) == {"a": UNKNOWN, "b": [1.0, UNKNOWN], "c": {"d": "x"}}


# --- Networks that carry secrets (advisory, stack-wide) ---------------------------------------------


def network(name: str, encrypted: bool, id_: str | None = None) -> Declared:
    inputs: dict[str, Any] = {"driver": "overlay", "options": {"encrypted": "true"} if encrypted else {}}
    if id_ is not None:
        inputs["id"] = id_
    return declared(NETWORK, name, inputs)


def secret_service(name: str, network_ids: Sequence[str], dependencies: Sequence[Declared] = ()) -> Declared:
    props = good_database()
    container(props)["secrets"] = [{"secretId": "s1", "secretName": "db-root", "fileName": "/run/secrets/root"}]
    props["taskSpec"]["networksAdvanceds"] = [{"id": n} for n in network_ids]
    return declared(SERVICE, name, props, [d.urn for d in dependencies])


def test_unencrypted_network_of_a_secret_holding_service_is_flagged_by_id() -> None:
    plain_net, secure_net = network("plain", False, "net-1"), network("secure", True, "net-2")
    found = run_pack([plain_net, secure_net, secret_service("db", ["net-1", "net-2"])])
    assert advisory(found) == {(SECRET_NETWORKS_POLICY, "plain")}
    assert mandatory(found) == set()


def test_networks_resolve_through_dependencies_when_ids_are_unknown() -> None:
    # Preview: neither the service's reference nor the network's id is known yet.
    plain_net, secure_net = network("plain", False, UNKNOWN_STRING_VALUE), network("secure", True)
    db = secret_service("db", [UNKNOWN_STRING_VALUE], dependencies=[plain_net])
    assert advisory(run_pack([plain_net, secure_net, db])) == {(SECRET_NETWORKS_POLICY, "plain")}


def test_services_without_secrets_may_use_plain_networks() -> None:
    props = good_service()
    props["taskSpec"]["networksAdvanceds"] = [{"id": "net-1"}]
    assert run_pack([network("plain", False, "net-1"), declared(SERVICE, "web", props)]) == []


def test_an_undeclared_network_carrying_secrets_is_reported_on_the_service() -> None:
    assert advisory(run_pack([secret_service("db", ["external-net"])])) == {(SECRET_NETWORKS_POLICY, "db")}


# --- The real program ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_program_passes_its_own_pack(stack: str) -> None:
    resources = deploy_stack(stack).resources
    assert {r.type for r in resources} >= {SERVICE, NETWORK}
    assert run_pack(resources) == []


def _computed_values(resources: Sequence[Declared]) -> set[str]:
    """What the mock providers made up (ids, auto-names): under preview these are unknown."""
    return {f"{r.name}-id" for r in resources} | {f"{r.name}-a1b2c3d" for r in resources}


def as_preview(resources: Sequence[Declared]) -> Callable[[Declared], dict[str, Any]]:
    computed = _computed_values(resources)

    def blank(value: Any) -> Any:
        if isinstance(value, str) and value in computed:
            return UNKNOWN_STRING_VALUE
        if isinstance(value, dict):
            return {k: blank(v) for k, v in cast(dict[str, Any], value).items()}
        if isinstance(value, list):
            return [blank(v) for v in cast(list[Any], value)]
        return value

    def props(resource: Declared) -> dict[str, Any]:
        if resource.type == "docker:index/secret:Secret":
            return {"data": UNKNOWN_STRING_VALUE}  # computed from the RandomPassword
        return cast(dict[str, Any], blank(resource.inputs))

    return props


@pytest.mark.parametrize("stack", STACKS)
def test_the_pack_runs_under_preview_without_reading_unknowns(stack: str) -> None:
    resources = deploy_stack(stack).resources
    preview = as_preview(resources)
    mysql = next(r for r in resources if r.type == SERVICE and r.name.endswith("mysql"))
    assert preview(mysql)["taskSpec"]["networksAdvanceds"][0]["id"] == UNKNOWN_STRING_VALUE
    # A policy that read an unknown would raise UnknownValueError here (the CLI's "can't run in preview").
    assert run_pack(resources, preview) == []


# --- A deliberately broken copy of each component -------------------------------------------------------


def _task(args: docker.ServiceArgs) -> docker.ServiceTaskSpecArgs:
    return cast(docker.ServiceTaskSpecArgs, args.task_spec)


def _container(args: docker.ServiceArgs) -> docker.ServiceTaskSpecContainerSpecArgs:
    return cast(docker.ServiceTaskSpecContainerSpecArgs, _task(args).container_spec)


@pytest.fixture
def broken_mysql(monkeypatch: pytest.MonkeyPatch) -> None:
    real = components.mysql.mysql_service_args

    def broken(*args: Any, **kwargs: Any) -> docker.ServiceArgs:
        spec = real(*args, **kwargs)
        container = _container(spec)
        env = dict(cast(Mapping[str, str], container.env))
        env.pop("MYSQL_ROOT_PASSWORD_FILE")
        container.env = {**env, "MYSQL_ROOT_PASSWORD": "hunter2"}
        container.image = "mysql:latest"
        container.healthcheck = None
        container.mounts = [
            *cast(list[docker.ServiceTaskSpecContainerSpecMountArgs], container.mounts),
            docker.ServiceTaskSpecContainerSpecMountArgs(
                type="bind", source="/var/run/docker.sock", target="/var/run/docker.sock"
            ),
        ]
        _task(spec).resources = None
        spec.endpoint_spec = docker.ServiceEndpointSpecArgs(
            mode="vip", ports=[docker.ServiceEndpointSpecPortArgs(target_port=3306, published_port=3306)]
        )
        return spec

    monkeypatch.setattr(components.mysql, "mysql_service_args", broken)


@pytest.mark.usefixtures("broken_mysql")
def test_a_broken_mysql_fails_with_exactly_the_expected_policies() -> None:
    found = run_pack(deploy_stack("dev").resources)
    assert mandatory(found) == {
        ("service-env-no-secrets", "db-mysql"),
        ("service-image-pinned", "db-mysql"),
        ("service-health-check", "db-mysql"),
        ("service-memory-limit", "db-mysql"),
        ("database-no-published-ports", "db-mysql"),
        ("docker-socket-logging-only", "db-mysql"),
    }
    assert advisory(found) == set()


@pytest.fixture
def broken_wordpress(monkeypatch: pytest.MonkeyPatch) -> None:
    real = components.wordpress.wordpress_service_args

    def broken(*args: Any, **kwargs: Any) -> docker.ServiceArgs:
        spec = real(*args, **kwargs)
        _container(spec).args = ["--db-password=hunter2"]
        _task(spec).placement = None
        _task(spec).restart_policy = docker.ServiceTaskSpecRestartPolicyArgs(condition="none")
        cast(docker.ServiceUpdateConfigArgs, spec.update_config).failure_action = "pause"
        return spec

    monkeypatch.setattr(components.wordpress, "wordpress_service_args", broken)


@pytest.mark.usefixtures("broken_wordpress")
def test_a_broken_wordpress_fails_with_exactly_the_expected_policies() -> None:
    assert mandatory(run_pack(deploy_stack("prod").resources)) == {
        ("service-no-secret-literals", "site-wordpress"),
        ("service-placement-env", "site-wordpress"),
        ("service-restart-policy", "site-wordpress"),
        ("web-update-rollback", "site-wordpress"),
    }


@pytest.fixture
def broken_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    real = components.logging_daemon.logging_service_args

    def broken(*args: Any, **kwargs: Any) -> docker.ServiceArgs:
        spec = real(*args, **kwargs)
        container = _container(spec)
        container.healthcheck = None
        socket, _hostname = cast(list[docker.ServiceTaskSpecContainerSpecMountArgs], container.mounts)
        socket.read_only = False
        return spec

    monkeypatch.setattr(components.logging_daemon, "logging_service_args", broken)


@pytest.mark.usefixtures("broken_logging")
def test_a_broken_logging_daemon_fails_with_exactly_the_expected_policies() -> None:
    assert mandatory(run_pack(deploy_stack("dev").resources)) == {
        ("docker-socket-logging-only", "logging-logspout"),
        ("service-health-check", "logging-logspout"),
    }


def test_the_logging_daemon_may_drop_its_health_check_by_saying_why(monkeypatch: pytest.MonkeyPatch) -> None:
    real = components.logging_daemon.logging_service_args

    def exempted(*args: Any, **kwargs: Any) -> docker.ServiceArgs:
        spec = real(*args, **kwargs)
        _container(spec).healthcheck = None
        spec.labels = [
            *cast(list[docker.ServiceLabelArgs], spec.labels),
            docker.ServiceLabelArgs(label=HEALTHCHECK_EXEMPT_LABEL, value="probe would need the HTTP module"),
        ]
        return spec

    monkeypatch.setattr(components.logging_daemon, "logging_service_args", exempted)
    assert run_pack(deploy_stack("dev").resources) == []


def test_an_unencrypted_secret_network_is_an_advisory_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    real = components.mysql.mysql_network_args
    monkeypatch.setattr(components.mysql, "mysql_network_args", lambda encrypted: real(False))
    found = run_pack(deploy_stack("dev").resources)
    assert advisory(found) == {(SECRET_NETWORKS_POLICY, "db-net")}
    assert mandatory(found) == set()
    [violation] = found
    assert "encrypted" in violation.message


# --- The pack itself --------------------------------------------------------------------------------------


def test_policy_names_are_unique_and_levels_as_designed() -> None:
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names))
    assert {n for n in names if n != SECRET_NETWORKS_POLICY} == MANDATORY
    levels = {p.name: _level(p) for p in POLICIES}
    assert levels[SECRET_NETWORKS_POLICY] == EnforcementLevel.ADVISORY
    assert {levels[n] for n in MANDATORY} == {EnforcementLevel.MANDATORY}
    assert all(p.description for p in POLICIES)


def test_main_builds_the_pack_from_the_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run policy/__main__.py as the CLI does (its directory first on sys.path), without the server."""
    built: dict[str, Any] = {}

    def fake_pack(**kwargs: Any) -> None:
        built.update(kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", fake_pack)
    monkeypatch.setattr(sys, "path", [str(POLICY_DIR), *sys.path])
    monkeypatch.delitem(sys.modules, "wpswarm_policies", raising=False)
    runpy.run_path(str(POLICY_DIR / "__main__.py"), run_name="__main__")
    assert built["enforcement_level"] == PACK_LEVEL
    assert [p.name for p in built["policies"]] == [p.name for p in POLICIES]


def _pins(path: Path) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return dict(cast(tuple[str, str], tuple(line.split("==", 1))) for line in lines if "==" in line)


def test_pack_files_pin_the_sdk_and_name_a_python_runtime() -> None:
    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    pins = _pins(POLICY_DIR / "requirements.txt")
    # The same pulumi as the program's requirements.txt: the pack's analyzer and the program agree.
    assert pins == {"pulumi-policy": "1.21.0", "pulumi": _pins(ROOT / "requirements.txt")["pulumi"]}


def test_the_pack_reads_the_role_label_the_program_writes() -> None:
    # The pack runs from policy/ on its own and can't import components: keep its copy in step.
    import policy.wpswarm_policies
    import stackconfig.names

    assert policy.wpswarm_policies.ROLE_LABEL == stackconfig.names.ROLE_LABEL
