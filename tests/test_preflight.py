"""Preflight judgement without an engine: each finding on hand-made swarm facts, and its fix."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from components.settings import StackSettings, parse_settings
from swarmops import preflight as preflight_module
from swarmops.preflight import (
    Finding,
    NodeFacts,
    PreflightError,
    PublishedPort,
    SwarmFacts,
    evaluate,
    preflight,
)
from tests.support import Deployment, deploy, run_main, stack_config


def settings_of(stack: str, **groups: dict[str, Any]) -> StackSettings:
    """A real stack file's settings with some structured groups' members overridden."""
    config = stack_config(stack)
    for group, members in groups.items():
        config[group] = {**(config.get(group) or {}), **members}
    return parse_settings(config)


def node(hostname: str, env: str | None = None, state: str = "ready", availability: str = "active") -> NodeFacts:
    return NodeFacts(f"id-{hostname}", hostname, state, availability, {"env": env} if env else {})


def swarm(*nodes: NodeFacts, ports: tuple[PublishedPort, ...] = ()) -> SwarmFacts:
    return SwarmFacts(docker_host="unix:///test.sock", swarm_state="active", is_manager=True, nodes=nodes, ports=ports)


def checks(findings: list[Finding]) -> list[str]:
    return [f.check for f in findings]


DEV = settings_of("dev")
PROD = settings_of("prod")
# The dev lab: one node, labelled by hand (dev lists no nodes).
DEV_LAB = swarm(node("vm", env="test"))
# Prod before its first deploy: nothing labelled yet, the stack labels its three nodes.
PROD_SWARM = swarm(node("swarm-manager"), node("swarm-web-1"), node("swarm-web-2"), node("swarm-db-1"))


def test_a_ready_swarm_passes() -> None:
    assert evaluate(DEV_LAB, DEV, "dev") == []


def test_nodes_the_stack_is_about_to_label_count_as_matching() -> None:
    assert PROD.node_labels.nodes  # prod labels its nodes itself
    assert evaluate(PROD_SWARM, PROD, "prod") == []


def test_an_unreachable_host_is_the_only_finding_and_points_at_docker_host() -> None:
    facts = SwarmFacts(docker_host="ssh://deploy@swarm-manager", unreachable="ssh: connection refused")
    (finding,) = evaluate(facts, PROD, "prod")
    assert finding.check == "docker-host"
    assert "ssh://deploy@swarm-manager" in finding.problem
    assert "connection refused" in finding.problem
    assert "wordpress-swarm:dockerHost" in finding.fix


def test_a_host_not_in_swarm_mode_says_swarm_init() -> None:
    (finding,) = evaluate(SwarmFacts(docker_host="unix:///x.sock", swarm_state="inactive"), DEV, "dev")
    assert finding.check == "swarm-mode"
    assert "docker swarm init" in finding.fix


def test_a_worker_is_refused_as_the_docker_host() -> None:
    facts = SwarmFacts(docker_host="unix:///x.sock", swarm_state="active", is_manager=False)
    (finding,) = evaluate(facts, DEV, "dev")
    assert finding.check == "swarm-manager"
    assert "manager" in finding.fix


def test_an_unlabelled_swarm_says_how_to_label_a_node() -> None:
    (finding,) = evaluate(swarm(node("vm")), DEV, "dev")
    assert finding.check == "placement"
    assert "node.labels.env==test" in finding.problem
    assert "vm" in finding.problem
    assert "docker node update --label-add env=test <node>" in finding.fix
    assert "wordpress-swarm:nodes.names" in finding.fix


def test_another_environments_label_does_not_count() -> None:
    assert checks(evaluate(swarm(node("vm", env="prod")), DEV, "dev")) == ["placement"]


@pytest.mark.parametrize(("state", "availability"), [("down", "active"), ("ready", "drain"), ("ready", "pause")])
def test_matching_nodes_that_cannot_take_tasks_do_not_count(state: str, availability: str) -> None:
    (finding,) = evaluate(swarm(node("vm", env="test", state=state, availability=availability)), DEV, "dev")
    assert finding.check == "placement"
    assert f"vm ({state}, {availability})" in finding.problem


def test_a_listed_node_of_another_environment_is_refused_unless_taken_over() -> None:
    dev_labelling_vm = settings_of("dev", nodes={"names": ["vm"]})
    facts = swarm(node("vm", env="prod"))
    findings = evaluate(facts, dev_labelling_vm, "dev")
    assert checks(findings) == ["node-names", "placement"]
    assert "env=prod" in findings[0].problem
    assert "vm" in findings[0].problem
    assert "wordpress-swarm:nodes.takeOver" in findings[0].fix

    taking_over = settings_of("dev", nodes={"names": ["vm"], "takeOver": True})
    assert evaluate(facts, taking_over, "dev") == []


def test_a_listed_node_may_be_named_by_id_or_id_prefix() -> None:
    facts = swarm(node("vm"))
    assert evaluate(facts, settings_of("dev", nodes={"names": ["id-vm"]}), "dev") == []
    assert evaluate(facts, settings_of("dev", nodes={"names": ["id-v"]}), "dev") == []


def test_a_listed_name_that_is_no_node_is_reported() -> None:
    findings = evaluate(DEV_LAB, settings_of("dev", nodes={"names": ["ghost"]}), "dev")
    assert checks(findings) == ["node-names"]
    assert "'ghost'" in findings[0].problem
    assert "docker node ls" in findings[0].fix


@pytest.mark.parametrize("owner", ["prod", None])
def test_the_port_published_by_a_service_outside_the_stack_is_taken(owner: str | None) -> None:
    other = PublishedPort(service="intruder", port=30080, protocol="tcp", mode="host", stack=owner)
    (finding,) = evaluate(replace(DEV_LAB, ports=(other,)), DEV, "dev")
    assert finding.check == "port"
    assert "30080" in finding.problem
    assert "intruder" in finding.problem
    assert "choose another wordpress-swarm:wordpress.port" in finding.fix


def test_the_stacks_own_service_and_other_ports_are_no_conflict() -> None:
    ports = (
        PublishedPort(service="site-wordpress", port=30080, protocol="tcp", mode="host", stack="dev"),
        PublishedPort(service="other", port=30081, protocol="tcp", mode="ingress", stack=None),
        PublishedPort(service="dns", port=30080, protocol="udp", mode="ingress", stack=None),
    )
    assert evaluate(replace(DEV_LAB, ports=ports), DEV, "dev") == []


def test_a_data_node_that_is_no_node_is_reported() -> None:
    facts = swarm(node("swarm-web-1"), node("swarm-web-2"), node("swarm-db-2"))
    settings = settings_of("prod", nodes={"names": ["swarm-web-1", "swarm-web-2"]})
    (finding,) = evaluate(facts, settings, "prod")
    assert finding.check == "data-node"
    assert "swarm-db-1" in finding.problem
    assert "wordpress-swarm:mysql.dataNode" in finding.fix


def test_a_data_node_outside_the_environment_is_reported() -> None:
    facts = swarm(node("swarm-web-1"), node("swarm-db-1", env="staging"))
    settings = settings_of("prod", nodes={"names": ["swarm-web-1"]})
    (finding,) = evaluate(facts, settings, "prod")
    assert finding.check == "data-node"
    assert "env=staging" in finding.problem
    assert "node.labels.env==prod" in finding.problem
    assert "docker node update --label-add env=prod swarm-db-1" in finding.fix


def test_a_data_node_that_is_down_is_reported() -> None:
    facts = swarm(node("swarm-web-1"), node("swarm-web-2"), node("swarm-db-1", state="down"))
    (finding,) = evaluate(facts, PROD, "prod")
    assert finding.check == "data-node"
    assert "down" in finding.problem


def test_every_finding_is_reported_at_once() -> None:
    taken = PublishedPort(service="intruder", port=30000, protocol="tcp", mode="ingress", stack=None)
    facts = swarm(node("swarm-web-1", env="staging"), node("swarm-db-1"), ports=(taken,))
    settings = settings_of("prod", nodes={"names": ["swarm-web-1", "ghost"]})
    assert checks(evaluate(facts, settings, "prod")) == ["node-names", "node-names", "placement", "port", "data-node"]


# --------------------------------------------------------------------------- #
# preflight(): what the program does with the findings
# --------------------------------------------------------------------------- #

UNREACHABLE = SwarmFacts(docker_host="ssh://deploy@swarm-manager", unreachable="timed out")


def test_a_preview_that_cannot_reach_the_host_warns_and_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(preflight_module.pulumi.log, "warn", lambda message, *_a, **_k: warnings.append(message))
    with preflight_module.facts_from(lambda _settings: UNREACHABLE):
        preflight(PROD, stack="prod", dry_run=True)
    assert len(warnings) == 1
    assert "ssh://deploy@swarm-manager" in warnings[0]


def test_an_update_that_cannot_reach_the_host_fails() -> None:
    with preflight_module.facts_from(lambda _settings: UNREACHABLE), pytest.raises(PreflightError, match="timed out"):
        preflight(PROD, stack="prod", dry_run=False)


def test_a_preview_of_an_unready_swarm_fails_listing_every_finding() -> None:
    with (
        preflight_module.facts_from(lambda _settings: swarm(node("vm"))),
        pytest.raises(PreflightError) as raised,
    ):
        preflight(DEV, stack="dev", dry_run=True)
    assert checks(raised.value.findings) == ["placement"]
    assert "fix: label a node" in str(raised.value)


def test_the_program_declares_nothing_when_preflight_fails() -> None:
    attempted = Deployment()
    with pytest.raises(PreflightError, match="docker swarm init"):
        deploy(
            run_main,
            stack_config("dev"),
            into=attempted,
            swarm=lambda settings: SwarmFacts(docker_host=settings.docker_host, swarm_state="inactive"),
        )
    assert attempted.resources == []
