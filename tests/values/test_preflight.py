"""Preflight judgement without an engine: each finding on hand-made swarm facts, and its fix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from stackconfig.names import STACK_LABEL
from stackconfig.settings import StackSettings
from swarmlib.claims import owner_key
from swarmlib.client import DockerHostError
from swarmlib.facts import NodeFacts, PortFacts, ServiceFacts, SwarmFacts
from swarmlib.preflight import (
    PreflightError,
    evaluate,
    nodes_for_stack,
    preflight,
    unreachable_finding,
)
from tests.support import (
    STACKS,
    Deployment,
    checks,
    deploy,
    of_stack,
    ready_swarm,
    run_as,
    run_main,
    settings_of,
    stack_config,
    swarm_reads,
)


def node(
    hostname: str, env: str | None = None, state: str = "ready", availability: str = "active", marker: str | None = None
) -> NodeFacts:
    labels = ({"env": env} if env else {}) | ({owner_key(): marker} if marker else {})
    return NodeFacts(f"id-{hostname}", hostname, state=state, availability=availability, labels=labels)


def publishing(
    name: str, port: int, protocol: str = "tcp", mode: str = "ingress", stack: str | None = None
) -> ServiceFacts:
    """A service publishing `port`, labelled as `stack`'s if given."""
    return ServiceFacts(
        f"id-{name}",
        name,
        labels={STACK_LABEL: stack} if stack else {},
        ports=(PortFacts(target=80, published=port, protocol=protocol, mode=mode),),
    )


def swarm(*nodes: NodeFacts, services: tuple[ServiceFacts, ...] = ()) -> SwarmFacts:
    return SwarmFacts(docker_host="unix:///test.sock", nodes=nodes, services=services)


DEV = settings_of("dev")
PROD = settings_of("prod")
# The dev lab: one node, labelled by hand (dev lists no nodes).
DEV_LAB = swarm(node("vm", env="test"))
# Prod before its first deploy: nothing labelled yet, the stack labels its three nodes.
PROD_SWARM = swarm(node("swarm-manager"), node("swarm-web-1"), node("swarm-web-2"), node("swarm-db-1"))


def test_a_ready_swarm_passes() -> None:
    assert evaluate(DEV_LAB, DEV, of_stack("dev")) == []


def test_nodes_the_stack_is_about_to_label_count_as_matching() -> None:
    assert PROD.node_labels.nodes  # prod labels its nodes itself
    assert evaluate(PROD_SWARM, PROD, of_stack("prod")) == []
    assert [n.hostname for n in nodes_for_stack(PROD_SWARM, PROD, of_stack("prod"))] == list(PROD.node_labels.nodes)


def test_an_unreachable_host_points_at_docker_host() -> None:
    finding = unreachable_finding("ssh://deploy@swarm-manager", "ssh: connection refused", of_stack("prod"))
    assert finding.check == "docker-host"
    assert finding.problem == "cannot reach the Docker host ssh://deploy@swarm-manager: ssh: connection refused"
    assert "wordpress-swarm:dockerHost" in finding.fix


def test_a_host_not_in_swarm_mode_says_swarm_init() -> None:
    (finding,) = evaluate(SwarmFacts(docker_host="unix:///x.sock", swarm_state="inactive"), DEV, of_stack("dev"))
    assert finding.check == "swarm-mode"
    assert "docker swarm init" in finding.fix


def test_a_worker_is_refused_as_the_docker_host() -> None:
    facts = SwarmFacts(docker_host="unix:///x.sock", is_manager=False)
    (finding,) = evaluate(facts, DEV, of_stack("dev"))
    assert finding.check == "swarm-manager"
    assert "manager" in finding.fix


def test_an_unlabelled_swarm_says_how_to_label_a_node() -> None:
    (finding,) = evaluate(swarm(node("vm")), DEV, of_stack("dev"))
    assert finding.check == "placement"
    assert "node.labels.env==test" in finding.problem
    assert "(ready, active nodes: vm)" in finding.problem
    assert "docker node update --label-add env=test <node>" in finding.fix
    assert "wordpress-swarm:nodes.names" in finding.fix


def test_another_environments_label_does_not_count() -> None:
    assert checks(evaluate(swarm(node("vm", env="prod")), DEV, of_stack("dev"))) == ["placement"]


@pytest.mark.parametrize(
    ("state", "availability", "accepts", "keeps"),
    [
        ("ready", "active", True, True),
        ("ready", "pause", False, True),  # keeps its tasks, takes no new one
        ("ready", "drain", False, False),
        ("down", "active", False, False),
    ],
)
def test_which_nodes_take_new_tasks_and_which_keep_theirs(
    state: str, availability: str, accepts: bool, keeps: bool
) -> None:
    vm = node("vm", state=state, availability=availability)
    assert (vm.accepts_new_tasks, vm.keeps_tasks) == (accepts, keeps)


@pytest.mark.parametrize(("state", "availability"), [("down", "active"), ("ready", "drain"), ("ready", "pause")])
def test_matching_nodes_that_cannot_take_new_tasks_do_not_count(state: str, availability: str) -> None:
    (finding,) = evaluate(swarm(node("vm", env="test", state=state, availability=availability)), DEV, of_stack("dev"))
    assert finding.check == "placement"
    assert f"vm ({state}, {availability})" in finding.problem
    assert "docker node update --availability active <node>" in finding.fix


def test_a_listed_node_of_another_environment_is_refused_unless_taken_over() -> None:
    dev_labelling_vm = settings_of("dev", nodes={"names": ["vm"]})
    facts = swarm(node("vm", env="prod"))
    findings = evaluate(facts, dev_labelling_vm, of_stack("dev"))
    assert checks(findings) == ["node-names", "placement"]
    # The one rule's words (swarmlib.claims.refusal), as the label resource would refuse it.
    assert (
        findings[0].problem
        == "node vm (id-vm) has env=prod, another environment's label, and this stack labels env=test"
    )
    assert "wordpress-swarm:nodes.takeOver" in findings[0].fix

    taking_over = settings_of("dev", nodes={"names": ["vm"], "takeOver": True})
    assert evaluate(facts, taking_over, of_stack("dev")) == []


# What NodeEnvLabel leaves on prod's nodes: env=prod and the marker `<project>/<stack>#<resource id>`.
PROD_MARKER = "wordpress-swarm/prod#5f0c1e2d"
PROD_NODES = ("swarm-web-1", "swarm-web-2", "swarm-db-1")


def prod_labelled(marker: str | None = PROD_MARKER, env: str = "prod") -> SwarmFacts:
    """Prod after a deploy: its listed nodes labelled (and marked) by the stack, the manager not."""
    return swarm(node("swarm-manager"), *(node(n, env=env, marker=marker) for n in PROD_NODES))


BLUE = settings_of("prod", {"envLabel": "blue"})


def test_a_changed_env_label_moves_the_nodes_the_stack_marked_as_its_own() -> None:
    # Only envLabel changed: the nodes hold the stack's old value under its own marker.
    assert evaluate(prod_labelled(), BLUE, of_stack("prod")) == []
    assert {n.hostname for n in nodes_for_stack(prod_labelled(), BLUE, of_stack("prod"))} == set(PROD_NODES)


@pytest.mark.parametrize(
    ("marker", "held_by"),
    [
        ("wordpress-swarm/staging#77aa", "stack wordpress-swarm/staging's label"),  # another stack
        ("other-project/prod#77aa", "stack other-project/prod's label"),  # another project's stack of that name
        (None, "another environment's label"),  # unmarked: labelled by hand
    ],
)
def test_another_env_value_without_the_stacks_marker_is_refused(marker: str | None, held_by: str) -> None:
    facts = prod_labelled(marker=None)
    facts = replace(facts, nodes=(*facts.nodes[:-1], node("swarm-db-1", env="prod", marker=marker)))
    findings = evaluate(facts, BLUE, of_stack("prod"))
    # The unmarked web nodes are refused too, and so the data node is out of the environment.
    assert checks(findings) == ["node-names"] * 3 + ["placement", "data-node"]
    assert (
        findings[2].problem
        == f"node swarm-db-1 (id-swarm-db-1) has env=prod, {held_by}, and this stack labels env=blue"
    )
    assert "wordpress-swarm:nodes.takeOver" in findings[2].fix

    taking_over = settings_of("prod", {"envLabel": "blue"}, nodes={"takeOver": True})
    assert evaluate(facts, taking_over, of_stack("prod")) == []


def test_the_marker_only_counts_for_the_stack_it_names() -> None:
    # staging listing prod's nodes: prod's marker makes them no more staging's than before.
    staging = settings_of("prod", {"envLabel": "staging"})
    findings = evaluate(prod_labelled(), staging, of_stack("staging"))
    assert checks(findings) == ["node-names"] * 3 + ["placement", "data-node"]
    assert "stack wordpress-swarm/prod's label" in findings[0].problem


def test_a_node_already_holding_the_value_is_fine_whoever_marked_it() -> None:
    assert evaluate(prod_labelled(marker="wordpress-swarm/other#1"), PROD, of_stack("prod")) == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_mock_engine_swarm_passes_preflight(stack: str) -> None:
    settings = settings_of(stack)
    assert evaluate(ready_swarm(settings), settings, of_stack(stack)) == []


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
    assert evaluate(facts, settings_of("dev", nodes={"names": ["id-vm"]}), of_stack("dev")) == []
    assert evaluate(facts, settings_of("dev", nodes={"names": ["id-v"]}), of_stack("dev")) == []


def test_a_listed_name_that_is_no_node_or_several_is_reported() -> None:
    findings = evaluate(DEV_LAB, settings_of("dev", nodes={"names": ["ghost"]}), of_stack("dev"))
    assert checks(findings) == ["node-names"]
    assert findings[0].problem == "wordpress-swarm:nodes.names lists 'ghost', which matches no node of this swarm"
    assert "docker node ls" in findings[0].fix

    twins = swarm(node("vm", env="test"), replace(node("vm", env="test"), id="id-vm-2"))
    (finding,) = evaluate(twins, settings_of("dev", nodes={"names": ["vm"]}), of_stack("dev"))
    assert finding.problem == "wordpress-swarm:nodes.names lists 'vm', which matches 2 nodes"


@pytest.mark.parametrize(
    ("owner", "owned_by"), [("prod", "of stack 'prod'"), (None, "which no stack of this project owns")]
)
def test_the_port_published_by_a_service_outside_the_stack_is_taken(owner: str | None, owned_by: str) -> None:
    other = publishing("intruder", 30080, mode="host", stack=owner)
    (finding,) = evaluate(replace(DEV_LAB, services=(other,)), DEV, of_stack("dev"))
    assert finding.check == "port"
    assert finding.problem == f"port 30080 is already published (host mode) by service intruder, {owned_by}"
    assert "choose another wordpress-swarm:wordpress.port" in finding.fix
    assert "docker service rm intruder" in finding.fix


def test_the_stacks_own_service_and_other_ports_are_no_conflict() -> None:
    services = (
        publishing("site-wordpress", 30080, mode="host", stack="dev"),
        publishing("other", 30081),
        publishing("dns", 30080, protocol="udp"),
        ServiceFacts("id-internal", "internal", ports=(PortFacts(target=30080, published=None),)),  # not published
    )
    assert evaluate(replace(DEV_LAB, services=services), DEV, of_stack("dev")) == []


def test_a_data_node_that_is_no_node_is_reported() -> None:
    facts = swarm(node("swarm-web-1"), node("swarm-web-2"), node("swarm-db-2"))
    settings = settings_of("prod", nodes={"names": ["swarm-web-1", "swarm-web-2"]})
    (finding,) = evaluate(facts, settings, of_stack("prod"))
    assert finding.check == "data-node"
    assert "swarm-db-1" in finding.problem
    assert "wordpress-swarm:mysql.dataNode" in finding.fix


def test_a_data_node_outside_the_environment_is_reported() -> None:
    facts = swarm(node("swarm-web-1"), node("swarm-db-1", env="staging"))
    settings = settings_of("prod", nodes={"names": ["swarm-web-1"]})
    (finding,) = evaluate(facts, settings, of_stack("prod"))
    assert finding.check == "data-node"
    assert "env=staging" in finding.problem
    assert "node.labels.env==prod" in finding.problem
    assert "docker node update --label-add env=prod swarm-db-1" in finding.fix


def test_a_data_node_that_is_down_is_reported() -> None:
    facts = swarm(node("swarm-web-1"), node("swarm-web-2"), node("swarm-db-1", state="down"))
    (finding,) = evaluate(facts, PROD, of_stack("prod"))
    assert finding.check == "data-node"
    assert "swarm-db-1 is down and active" in finding.problem


def test_every_finding_is_reported_at_once() -> None:
    taken = publishing("intruder", 30000)
    facts = swarm(node("swarm-web-1", env="staging"), node("swarm-db-1"), services=(taken,))
    settings = settings_of("prod", nodes={"names": ["swarm-web-1", "ghost"]})
    assert checks(evaluate(facts, settings, of_stack("prod"))) == [
        "node-names",
        "node-names",
        "placement",
        "port",
        "data-node",
    ]


# --------------------------------------------------------------------------- #
# preflight(): what the program does with the findings
# --------------------------------------------------------------------------- #


def unreachable(_settings: StackSettings) -> SwarmFacts:
    raise DockerHostError("timed out")


def test_a_preview_that_cannot_reach_the_host_warns_and_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    logged = run_as(monkeypatch, "prod", preview=True)
    with swarm_reads(unreachable):
        preflight(PROD)
    (warning,) = logged.warnings
    assert "ssh://deploy@swarm-manager (timed out)" in warning
    assert logged.infos == []


def test_an_update_that_cannot_reach_the_host_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    run_as(monkeypatch, "prod", preview=False)
    with swarm_reads(unreachable), pytest.raises(PreflightError) as raised:
        preflight(PROD)
    assert raised.value.findings == [unreachable_finding(PROD.docker_host, "timed out", of_stack("prod"))]


def test_a_preview_of_an_unready_swarm_fails_listing_every_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    run_as(monkeypatch, "dev", preview=True)
    with swarm_reads(lambda _settings: swarm(node("vm"))), pytest.raises(PreflightError) as raised:
        preflight(DEV)
    assert checks(raised.value.findings) == ["placement"]
    assert "fix: label a node" in str(raised.value)


def test_a_ready_swarm_passes_and_says_where_the_stack_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    logged = run_as(monkeypatch, "prod", preview=False)
    with swarm_reads(lambda _settings: PROD_SWARM):
        preflight(PROD)
    assert logged.infos == [
        "preflight passed on unix:///test.sock: node.labels.env==prod matches swarm-web-1, swarm-web-2, swarm-db-1"
    ]
    assert logged.warnings == []


def test_preflight_judges_for_the_stack_the_runtime_names(monkeypatch: pytest.MonkeyPatch) -> None:
    # The nodes' marker names prod: they are blue's own as prod, another stack's as staging.
    run_as(monkeypatch, "prod", preview=False)
    with swarm_reads(lambda _settings: prod_labelled()):
        preflight(BLUE)
    run_as(monkeypatch, "staging", preview=False)
    with swarm_reads(lambda _settings: prod_labelled()), pytest.raises(PreflightError, match="wordpress-swarm/prod's"):
        preflight(BLUE)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (lambda settings: SwarmFacts(docker_host=settings.docker_host, swarm_state="inactive"), "docker swarm init"),
        (unreachable, "cannot reach the Docker host unix:///var/run/docker.sock: timed out"),
    ],
)
def test_the_program_declares_nothing_when_preflight_fails(
    source: Callable[[StackSettings], SwarmFacts], reason: str
) -> None:
    attempted = Deployment()
    with pytest.raises(PreflightError, match=reason):
        deploy(run_main, stack_config("dev"), into=attempted, swarm=source)
    assert attempted.resources == []
