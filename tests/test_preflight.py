"""Preflight judgement without an engine: each finding on hand-made swarm facts, and its fix."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from components.node_labels import OWNER_LABEL_KEY
from components.settings import StackSettings, parse_settings
from swarmops import preflight as preflight_module
from swarmops.preflight import (
    Finding,
    NodeFacts,
    PreflightError,
    PublishedPort,
    SwarmFacts,
    evaluate,
    nodes_for_stack,
    preflight,
)
from tests.support import STACKS, Deployment, deploy, ready_swarm, run_main, stack_config


def settings_of(stack: str, **groups: dict[str, Any]) -> StackSettings:
    """A real stack file's settings with some structured groups' members overridden."""
    config = stack_config(stack)
    for group, members in groups.items():
        config[group] = {**(config.get(group) or {}), **members}
    return parse_settings(config)


def node(
    hostname: str, env: str | None = None, state: str = "ready", availability: str = "active", marker: str | None = None
) -> NodeFacts:
    labels = ({"env": env} if env else {}) | ({OWNER_LABEL_KEY: marker} if marker else {})
    return NodeFacts(f"id-{hostname}", hostname, state, availability, labels)


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


# What NodeEnvLabel leaves on prod's nodes: env=prod and the marker `<project>/<stack>#<resource id>`.
PROD_MARKER = "wordpress-swarm/prod#5f0c1e2d"
PROD_NODES = ("swarm-web-1", "swarm-web-2", "swarm-db-1")


def prod_labelled(marker: str | None = PROD_MARKER, env: str = "prod") -> SwarmFacts:
    """Prod after a deploy: its listed nodes labelled (and marked) by the stack, the manager not."""
    return swarm(node("swarm-manager"), *(node(n, env=env, marker=marker) for n in PROD_NODES))


def with_env_label(stack: str, env_label: str) -> StackSettings:
    return parse_settings(stack_config(stack) | {"envLabel": env_label})


def test_a_changed_env_label_moves_the_nodes_the_stack_marked_as_its_own() -> None:
    # Only envLabel changed: the nodes hold the stack's old value under its own marker.
    blue = with_env_label("prod", "blue")
    assert evaluate(prod_labelled(), blue, "prod") == []
    assert {n.hostname for n in nodes_for_stack(prod_labelled(), blue, "wordpress-swarm/prod")} == set(PROD_NODES)


@pytest.mark.parametrize(
    ("marker", "held_by"),
    [
        ("wordpress-swarm/staging#77aa", "stack wordpress-swarm/staging's label"),  # another stack
        ("other-project/prod#77aa", "stack other-project/prod's label"),  # another project's stack of that name
        (None, "another environment's label"),  # unmarked: labelled by hand, or before markers existed
    ],
)
def test_another_env_value_without_the_stacks_marker_is_refused(marker: str | None, held_by: str) -> None:
    facts = prod_labelled(marker=None)
    facts = replace(facts, nodes=(*facts.nodes[:-1], node("swarm-db-1", env="prod", marker=marker)))
    blue = with_env_label("prod", "blue")
    findings = evaluate(facts, blue, "prod")
    # The unmarked web nodes are refused too, and so the data node is out of the environment.
    refused = [f.problem for f in findings if f.check == "node-names"]
    assert len(refused) == 3
    assert "swarm-db-1 (id-swarm-db-1) has env=prod, " + held_by in refused[2]
    assert "this stack would label it env=blue" in refused[2]
    assert "wordpress-swarm:nodes.takeOver" in findings[2].fix

    taking_over = parse_settings(
        stack_config("prod") | {"envLabel": "blue", "nodes": {"names": list(PROD_NODES), "takeOver": True}}
    )
    assert evaluate(facts, taking_over, "prod") == []


def test_the_marker_only_counts_for_the_stack_it_names() -> None:
    # staging listing prod's nodes: prod's marker makes them no more staging's than before.
    staging = with_env_label("prod", "staging")
    assert checks(evaluate(prod_labelled(), staging, "staging")) == ["node-names"] * 3 + ["placement", "data-node"]


def test_a_node_already_holding_the_value_is_fine_whoever_marked_it() -> None:
    assert evaluate(prod_labelled(marker="wordpress-swarm/other#1"), PROD, "prod") == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_mock_engine_swarm_passes_preflight(stack: str) -> None:
    settings = parse_settings(stack_config(stack))
    assert evaluate(ready_swarm(settings), settings, stack) == []


def test_the_program_declares_a_changed_env_label_on_the_nodes_it_marked() -> None:
    blue = deploy(run_main, stack_config("prod") | {"envLabel": "blue"}, "prod", swarm=lambda _s: prod_labelled())
    labels = blue.one("pulumi-python:dynamic/wordpress-swarm:NodeEnvLabel")
    assert (labels.inputs["value"], labels.inputs["owner"]) == ("blue", "wordpress-swarm/prod")

    # Another stack of the project on the same nodes is refused before anything is declared.
    attempted = Deployment()
    with pytest.raises(PreflightError, match="stack wordpress-swarm/prod's label"):
        deploy(
            run_main,
            stack_config("prod") | {"envLabel": "staging"},
            "staging",
            into=attempted,
            swarm=lambda _s: prod_labelled(),
        )
    assert attempted.resources == []


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
