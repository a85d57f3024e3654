"""NodeEnvLabel: the `env=<label>` node labels a stack deploys to, declared as code.

A Pulumi dynamic resource: its provider runs in Pulumi's dynamic-provider process and talks to the
swarm through the docker SDK, on the same Docker host as the pulumi-docker provider. All of the
docker work lives in plain functions (`apply_labels`, `read_labels`, `remove_labels`) that tests
call against a real engine; the provider methods only translate between them and Pulumi state.

The provider is pickled by reference (this module is importable from the project directory, where
Pulumi starts the provider process), so it holds no state and imports docker only where it runs.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import tempfile
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi.dynamic

from components.settings import PROJECT, StackSettings

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.nodes import Node

ENV_LABEL_KEY = "env"
NAMES_KEY = f"{PROJECT}:nodes.names"
TAKE_OVER_KEY = f"{PROJECT}:nodes.takeOver"

# How often a label change is retried when another writer bumped the node's version in between.
_UPDATE_ATTEMPTS = 5


class NodeLabelError(Exception):
    """A listed node cannot be labelled: unknown, ambiguous, or held by another environment.
    Raised before any node is changed; one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("cannot label swarm nodes:\n  " + "\n  ".join(self.problems))


@dataclass(frozen=True)
class LabelledNode:
    """What one listed name stands for on the swarm, and its label's value right now."""

    name: str  # as listed in wordpress-swarm:nodes.names
    node_id: str | None  # None: no node of that name (any more)
    hostname: str | None
    value: str | None  # None: the node has no such label

    def as_output(self) -> dict[str, str | None]:
        return {"name": self.name, "id": self.node_id, "hostname": self.hostname, "value": self.value}

    @classmethod
    def from_output(cls, raw: Mapping[str, Any]) -> LabelledNode:
        return cls(name=raw["name"], node_id=raw.get("id"), hostname=raw.get("hostname"), value=raw.get("value"))


# --------------------------------------------------------------------------- #
# connecting
# --------------------------------------------------------------------------- #


def docker_client(docker_host: str, ssh_opts: Sequence[str] = (), timeout: int = 30) -> DockerClient:
    """A client for the stack's Docker host. ssh:// shells out to the ssh client, so the operator's
    ~/.ssh/config (keys, jump hosts, known hosts) applies as it does for the pulumi-docker provider."""
    import docker

    if docker_host.startswith("ssh://"):
        if ssh_opts:
            _put_ssh_with_options_on_path(tuple(ssh_opts))
        return docker.DockerClient(base_url=docker_host, use_ssh_client=True, timeout=timeout)
    return docker.DockerClient(base_url=docker_host, timeout=timeout)


@cache
def _put_ssh_with_options_on_path(ssh_opts: tuple[str, ...]) -> None:
    # The SDK runs a bare `ssh` from PATH and has no way to pass options; a wrapper placed first on
    # PATH adds wordpress-swarm:dockerSshOpts, so both providers reach the host the same way.
    real_ssh = shutil.which("ssh")
    if real_ssh is None:
        raise RuntimeError("an ssh:// dockerHost needs the ssh client on PATH")
    directory = tempfile.mkdtemp(prefix=f"{PROJECT}-ssh-")
    atexit.register(shutil.rmtree, directory, True)
    wrapper = os.path.join(directory, "ssh")
    with open(wrapper, "w") as script:
        script.write(f'#!/bin/sh\nexec {shlex.quote(real_ssh)} {shlex.join(ssh_opts)} "$@"\n')
    os.chmod(wrapper, 0o755)
    os.environ["PATH"] = directory + os.pathsep + os.environ.get("PATH", "")


# --------------------------------------------------------------------------- #
# docker work, called by the provider and by real-engine tests
# --------------------------------------------------------------------------- #


def find_node_ids(name: str, nodes: Iterable[tuple[str, str]]) -> list[str]:
    """IDs of the nodes `name` means among (id, hostname) pairs: an exact node ID, else every node
    with that hostname, else the nodes whose ID starts with it (as `docker node` accepts)."""
    pairs = list(nodes)
    exact = [node_id for node_id, _ in pairs if node_id == name]
    if exact:
        return exact
    by_hostname = [node_id for node_id, hostname in pairs if hostname == name]
    if by_hostname:
        return by_hostname
    return [node_id for node_id, _ in pairs if node_id.startswith(name)]


def _hostname(node: Node) -> str:
    return str(node.attrs["Description"]["Hostname"])


def _labels(node: Node) -> dict[str, str]:
    return dict(node.attrs["Spec"].get("Labels") or {})


def _resolve(client: DockerClient, names: Sequence[str]) -> tuple[dict[str, Node | None], list[str]]:
    """Each name's node (None when it names none or several), and a problem for each such name."""
    by_id = {str(node.id): node for node in client.nodes.list()}
    pairs = [(node_id, _hostname(node)) for node_id, node in by_id.items()]
    found: dict[str, Node | None] = {}
    problems: list[str] = []
    for name in names:
        ids = find_node_ids(name, pairs)
        found[name] = by_id[ids[0]] if len(ids) == 1 else None
        if not ids:
            problems.append(f"{NAMES_KEY} lists {name!r}, which is no node of this swarm (see `docker node ls`)")
        elif len(ids) > 1:
            problems.append(f"{NAMES_KEY} lists {name!r}, which matches nodes {', '.join(ids)}: list node IDs instead")
    return found, problems


def _describe(name: str, node: Node | None, key: str) -> LabelledNode:
    if node is None:
        return LabelledNode(name=name, node_id=None, hostname=None, value=None)
    return LabelledNode(name=name, node_id=str(node.id), hostname=_hostname(node), value=_labels(node).get(key))


def _change_label(client: DockerClient, node_id: str, key: str, change: Callable[[str | None], str | None]) -> bool:
    """Sets the node's label to change(current) (None removes it), retrying when another writer got
    in first, so `change` always decides on the value it replaces. True when the node changed."""
    from docker.errors import APIError

    for attempt in range(_UPDATE_ATTEMPTS):
        node = client.nodes.get(node_id)
        spec: dict[str, Any] = dict(node.attrs["Spec"])
        labels = dict(spec.get("Labels") or {})
        current = labels.get(key)
        wanted = change(current)
        if wanted == current:
            return False
        if wanted is None:
            del labels[key]
        else:
            labels[key] = wanted
        spec["Labels"] = labels
        try:
            node.update(spec)
            return True
        except APIError as error:
            if "out of sequence" not in str(error) or attempt == _UPDATE_ATTEMPTS - 1:
                raise
    return False


def _refusal(name: str, node: Node, key: str, current: str, value: str) -> str:
    return (
        f"node {_hostname(node)} ({node.id}, listed as {name!r}) has {key}={current}, another environment's "
        f"label, and this stack labels {key}={value}; set {TAKE_OVER_KEY}: true to move it to this stack "
        f"(the other environment's services leave it), or remove it from {NAMES_KEY}"
    )


def apply_labels(
    client: DockerClient,
    names: Sequence[str],
    value: str,
    take_over: bool = False,
    *,
    ours: Collection[str] = (),
    key: str = ENV_LABEL_KEY,
) -> dict[str, LabelledNode]:
    """Puts key=value on every listed node (hostname or node ID) and returns them as labelled.

    A node whose label holds another value is refused unless `take_over`; values in `ours` (the
    stack's previous value, on an update) count as this stack's. Every node is checked before any
    is changed, so a refusal leaves the swarm as it was.
    """
    found, problems = _resolve(client, names)
    acceptable = {None, value, *ours}
    for name, node in found.items():
        if node is None:
            continue  # already a problem
        current = _labels(node).get(key)
        if current not in acceptable and not take_over:
            problems.append(_refusal(name, node, key, str(current), value))
    if problems:
        raise NodeLabelError(problems)

    def claim(name: str, node: Node) -> Callable[[str | None], str | None]:
        def decide(current: str | None) -> str | None:
            # Re-checked on the value actually replaced: someone may have labelled it since.
            if current not in acceptable and not take_over:
                raise NodeLabelError([_refusal(name, node, key, str(current), value)])
            return value

        return decide

    for name, node in found.items():
        assert node is not None  # unknown names raised above
        _change_label(client, str(node.id), key, claim(name, node))
    return read_labels(client, names, key=key)


def read_labels(client: DockerClient, names: Sequence[str], *, key: str = ENV_LABEL_KEY) -> dict[str, LabelledNode]:
    """The listed nodes and their label's current value; a name that matches no node (or several)
    is reported with node_id None rather than failing, so a refresh can show it."""
    found, _ambiguous = _resolve(client, names)
    return {name: _describe(name, node, key) for name, node in found.items()}


def remove_labels(client: DockerClient, node_ids: Iterable[str], value: str, *, key: str = ENV_LABEL_KEY) -> list[str]:
    """Removes the label from the given nodes where it still holds `value`; a node relabelled since
    (by hand or by another stack) or gone from the swarm is left alone. Returns the IDs changed."""
    from docker.errors import NotFound

    removed: list[str] = []
    for node_id in dict.fromkeys(node_ids):
        try:
            if _change_label(client, node_id, key, lambda current: None if current == value else current):
                removed.append(node_id)
        except NotFound:
            continue
    return removed


# --------------------------------------------------------------------------- #
# the dynamic provider: Pulumi state <-> the functions above
# --------------------------------------------------------------------------- #

# Input properties; changing one of REPLACE_ON relabels from scratch (another swarm or key),
# the rest are updated in place.
REPLACE_ON = ("docker_host", "label_key")
UPDATE_IN_PLACE = ("node_names", "value", "take_over", "ssh_opts")


@contextmanager
def _connect(props: Mapping[str, Any]) -> Iterator[DockerClient]:
    client = docker_client(str(props["docker_host"]), [str(o) for o in props.get("ssh_opts") or []])
    try:
        yield client
    finally:
        client.close()


def _outputs(props: Mapping[str, Any], labelled: Mapping[str, LabelledNode]) -> dict[str, Any]:
    inputs = {name: props[name] for name in (*REPLACE_ON, *UPDATE_IN_PLACE) if name in props}
    return {**inputs, "nodes": [node.as_output() for node in labelled.values()]}


def _recorded(props: Mapping[str, Any]) -> list[LabelledNode]:
    return [LabelledNode.from_output(raw) for raw in props.get("nodes") or []]


class NodeEnvLabelProvider(pulumi.dynamic.ResourceProvider):
    """CRUD of one stack's env labels. State `nodes` lists each listed name with the node it
    resolved to and the label's value as last seen, which is how refresh shows drift."""

    # Nothing secret is captured: keep the serialized provider readable in the state.
    serialize_as_secret_always = False

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        failures: list[pulumi.dynamic.CheckFailure] = []
        names = news.get("node_names")
        if not (isinstance(names, list) and names and all(isinstance(n, str) and n for n in names)):  # pyright: ignore[reportUnknownVariableType]
            failures.append(pulumi.dynamic.CheckFailure("node_names", "a non-empty list of node hostnames or IDs"))
        for name in ("docker_host", "value", "label_key"):
            if not (isinstance(news.get(name), str) and news[name]):
                failures.append(pulumi.dynamic.CheckFailure(name, "a non-empty string"))
        return pulumi.dynamic.CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        with _connect(props) as client:
            labelled = apply_labels(
                client, props["node_names"], props["value"], bool(props.get("take_over")), key=props["label_key"]
            )
        return pulumi.dynamic.CreateResult(id_=uuid.uuid4().hex, outs=_outputs(props, labelled))

    def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
        with _connect(props) as client:
            labelled = read_labels(client, props["node_names"], key=props["label_key"])
        return pulumi.dynamic.ReadResult(id_=id_, outs=_outputs(props, labelled))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        replaces = [name for name in REPLACE_ON if olds.get(name) != news.get(name)]
        changed = [name for name in UPDATE_IN_PLACE if olds.get(name) != news.get(name)]
        # After a refresh the recorded values are the live ones: relabelled or vanished nodes show here.
        drifted = any(node.value != news.get("value") for node in _recorded(olds))
        return pulumi.dynamic.DiffResult(
            changes=bool(replaces or changed or drifted),
            replaces=replaces,
            # Old labels go first: on the same swarm under another URL, create-then-delete would
            # remove the labels the new resource had just set.
            delete_before_replace=bool(replaces),
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        with _connect(news) as client:
            labelled = apply_labels(
                client,
                news["node_names"],
                news["value"],
                bool(news.get("take_over")),
                ours=[olds["value"]],
                key=news["label_key"],
            )
            kept = {node.node_id for node in labelled.values()}
            dropped = [node.node_id for node in _recorded(olds) if node.node_id and node.node_id not in kept]
            remove_labels(client, dropped, olds["value"], key=news["label_key"])
        return pulumi.dynamic.UpdateResult(outs=_outputs(news, labelled))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with _connect(props) as client:
            ids = [node.node_id for node in _recorded(props) if node.node_id]
            remove_labels(client, ids, props["value"], key=props["label_key"])


# --------------------------------------------------------------------------- #
# the resource
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class NodeEnvLabelArgs:
    docker_host: str
    nodes: Sequence[str]  # hostnames or node IDs
    value: str
    take_over: bool = False
    ssh_opts: Sequence[str] = ()
    label_key: str = ENV_LABEL_KEY

    @classmethod
    def from_settings(cls, settings: StackSettings) -> NodeEnvLabelArgs:
        return cls(
            docker_host=settings.docker_host,
            nodes=settings.node_labels.nodes,
            value=settings.env_label,
            take_over=settings.node_labels.take_over,
            ssh_opts=settings.docker_ssh_opts,
        )


class NodeEnvLabel(pulumi.dynamic.Resource, module=PROJECT, name="NodeEnvLabel"):
    """`<label_key>=<value>` on the listed swarm nodes; `nodes` reports each one as last seen."""

    nodes: pulumi.Output[list[dict[str, str | None]]]

    def __init__(self, name: str, args: NodeEnvLabelArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {
            "docker_host": args.docker_host,
            "ssh_opts": list(args.ssh_opts),
            "node_names": list(args.nodes),
            "value": args.value,
            "take_over": args.take_over,
            "label_key": args.label_key,
            "nodes": None,  # an output: declared so the attribute exists
        }
        super().__init__(NodeEnvLabelProvider(), name, props, opts)


def node_env_labels(settings: StackSettings) -> list[pulumi.Resource]:
    """What every service waits for: the stack's label resource, or nothing when
    wordpress-swarm:nodes.names is empty and operators label nodes by hand."""
    if not settings.node_labels.nodes:
        return []
    return [NodeEnvLabel("node-env-label", NodeEnvLabelArgs.from_settings(settings))]
