"""NodeEnvLabel: the `env=<label>` node labels a stack deploys to, declared as code.

A Pulumi dynamic resource: its provider runs in Pulumi's dynamic-provider process and talks to the
swarm through the docker SDK, on the same Docker host as the pulumi-docker provider. All of the
docker work lives in plain functions (`apply_labels`, `read_labels`, `remove_labels`) that tests
call against a real engine; the provider methods only translate between them and Pulumi state.

Next to `env` every labelled node carries an ownership marker, `wordpress-swarm.env-owner=
<project>/<stack>#<resource id>`: the stack it belongs to, so that preflight (which has no Pulumi
state) and the provider both know a node holding the stack's previous envLabel is the stack's own,
and the resource instance that set it, so that the old instance's delete after a create-before-
delete replacement leaves the labels its successor has just claimed.

The provider is pickled by reference (this module is importable from the project directory, where
Pulumi starts the provider process), so it holds no state and imports docker only where it runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi.dynamic

from components.names import ENV_LABEL_KEY
from components.settings import PROJECT, StackSettings
from swarmops.docker_host import docker_client

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.nodes import Node

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
    """What one listed name stands for on the swarm, its label's value and its marker right now."""

    name: str  # as listed in wordpress-swarm:nodes.names
    node_id: str | None  # None: no node of that name (any more)
    hostname: str | None
    value: str | None  # None: the node has no such label
    marker: str | None = None  # the ownership marker (see owner_key); None: unmarked

    def as_output(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "id": self.node_id,
            "hostname": self.hostname,
            "value": self.value,
            "marker": self.marker,
        }

    @classmethod
    def from_output(cls, raw: Mapping[str, Any]) -> LabelledNode:
        # State written before markers existed has no "marker": such nodes read as unmarked.
        return cls(
            name=raw["name"],
            node_id=raw.get("id"),
            hostname=raw.get("hostname"),
            value=raw.get("value"),
            marker=raw.get("marker"),
        )


# --------------------------------------------------------------------------- #
# ownership markers
# --------------------------------------------------------------------------- #


def owner_key(key: str = ENV_LABEL_KEY) -> str:
    """The marker label that goes with label `key`: wordpress-swarm.env-owner for `env`."""
    return f"{PROJECT}.{key}-owner"


OWNER_LABEL_KEY = owner_key(ENV_LABEL_KEY)


def stack_owner(stack: str, project: str = PROJECT) -> str:
    """Whose labels these are: `<project>/<stack>` (neither name may contain '/' or '#')."""
    return f"{project}/{stack}"


def marker_value(owner: str, resource_id: str) -> str:
    """The marker one resource instance writes: its owner, and its own id."""
    return f"{owner}#{resource_id}"


def owner_of(marker: str) -> str:
    """The `<project>/<stack>` a marker names (a marker without an instance is all owner)."""
    return marker.partition("#")[0]


def is_ours(
    current: str | None,
    marker: str | None,
    value: str,
    *,
    owners: Collection[str] = (),
    ours: Collection[str] = (),
) -> bool:
    """Whether a node whose label holds `current` and whose marker is `marker` may be labelled
    `value` by a stack that goes by `owners` without taking it over: the label is unset or already
    `value`, or the marker names one of `owners` (whatever the value: the stack's previous
    envLabel), or the value is one of `ours` on an unmarked node (state from before markers)."""
    if current is None or current == value:
        return True
    if marker is not None:
        return owner_of(marker) in owners
    return current in ours


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
    labels = _labels(node)
    return LabelledNode(
        name=name,
        node_id=str(node.id),
        hostname=_hostname(node),
        value=labels.get(key),
        marker=labels.get(owner_key(key)),
    )


LabelChange = Callable[[Mapping[str, str]], Mapping[str, str | None]]


def change_node_labels(client: DockerClient, node_id: str, change: LabelChange) -> bool:
    """Applies change(current labels) to the node (a None value removes that label) in one node
    update, retrying when another writer got in first, so `change` always decides on the labels it
    replaces. True when the node changed."""
    from docker.errors import APIError

    for attempt in range(_UPDATE_ATTEMPTS):
        node = client.nodes.get(node_id)
        spec: dict[str, Any] = dict(node.attrs["Spec"])
        labels: dict[str, str] = dict(spec.get("Labels") or {})
        wanted = dict(labels)
        for label, new in change(labels).items():
            if new is None:
                wanted.pop(label, None)
            else:
                wanted[label] = new
        if wanted == labels:
            return False
        spec["Labels"] = wanted
        try:
            node.update(spec)
            return True
        except APIError as error:
            if "out of sequence" not in str(error) or attempt == _UPDATE_ATTEMPTS - 1:
                raise
    return False


def _refusal(name: str, node: Node, key: str, current: str, marker: str | None, value: str) -> str:
    held = f"stack {owner_of(marker)}'s label" if marker else "another environment's label"
    return (
        f"node {_hostname(node)} ({node.id}, listed as {name!r}) has {key}={current}, {held}, "
        f"and this stack labels {key}={value}; set {TAKE_OVER_KEY}: true to move it to this stack "
        f"(the other environment's services leave it), or remove it from {NAMES_KEY}"
    )


def apply_labels(
    client: DockerClient,
    names: Sequence[str],
    value: str,
    take_over: bool = False,
    *,
    marker: str | None = None,
    previous_markers: Collection[str] = (),
    ours: Collection[str] = (),
    key: str = ENV_LABEL_KEY,
) -> dict[str, LabelledNode]:
    """Puts key=value, and the ownership `marker` if given, on every listed node (hostname or
    node ID) and returns them as labelled.

    A node whose label holds another value is refused unless `take_over` or it is this stack's (see
    `is_ours`): its marker names the owner of `marker` or of one of `previous_markers` (the stack's
    markers before a rename), or it is unmarked and its value is in `ours` (the value in state from
    before markers existed). A node already labelled `value` under another stack's marker is
    shared: it keeps that marker unless taken over. Every node is checked before any is changed, so
    a refusal leaves the swarm as it was.
    """
    owners = {owner_of(m) for m in (marker, *previous_markers) if m}
    mkey = owner_key(key)
    found, problems = _resolve(client, names)
    for name, node in found.items():
        if node is None:
            continue  # already a problem
        labels = _labels(node)
        current, current_marker = labels.get(key), labels.get(mkey)
        if not take_over and not is_ours(current, current_marker, value, owners=owners, ours=ours):
            problems.append(_refusal(name, node, key, str(current), current_marker, value))
    if problems:
        raise NodeLabelError(problems)

    def claim(name: str, node: Node) -> LabelChange:
        def decide(labels: Mapping[str, str]) -> Mapping[str, str | None]:
            # Re-checked on the labels actually replaced: someone may have labelled it since.
            current, current_marker = labels.get(key), labels.get(mkey)
            if not take_over and not is_ours(current, current_marker, value, owners=owners, ours=ours):
                raise NodeLabelError([_refusal(name, node, key, str(current), current_marker, value)])
            shared = current_marker is not None and owner_of(current_marker) not in owners
            if marker is None or (shared and not take_over):
                return {key: value}
            return {key: value, mkey: marker}

        return decide

    for name, node in found.items():
        assert node is not None  # unknown names raised above
        change_node_labels(client, str(node.id), claim(name, node))
    return read_labels(client, names, key=key)


def read_labels(client: DockerClient, names: Sequence[str], *, key: str = ENV_LABEL_KEY) -> dict[str, LabelledNode]:
    """The listed nodes with their label's current value and marker; a name that matches no node
    (or several) is reported with node_id None rather than failing, so a refresh can show it."""
    found, _ambiguous = _resolve(client, names)
    return {name: _describe(name, node, key) for name, node in found.items()}


def remove_labels(
    client: DockerClient,
    node_ids: Iterable[str],
    value: str,
    *,
    marker: str | None = None,
    key: str = ENV_LABEL_KEY,
) -> list[str]:
    """Gives the given nodes up: removes the label where it still holds `value` and the node is
    unmarked or carries `marker`, and removes `marker` itself. A node relabelled since, or claimed
    by another stack or by another instance of this one (a replacement created before this one is
    deleted), keeps its labels; a node gone from the swarm is skipped. Returns the IDs changed."""
    from docker.errors import NotFound

    mkey = owner_key(key)

    def give_up(labels: Mapping[str, str]) -> Mapping[str, str | None]:
        current_marker = labels.get(mkey)
        if current_marker is not None and current_marker != marker:
            return {}
        changes: dict[str, str | None] = {mkey: None}
        if labels.get(key) == value:
            changes[key] = None
        return changes

    removed: list[str] = []
    for node_id in dict.fromkeys(node_ids):
        try:
            if change_node_labels(client, node_id, give_up):
                removed.append(node_id)
        except NotFound:
            continue
    return removed


# --------------------------------------------------------------------------- #
# the dynamic provider: Pulumi state <-> the functions above
# --------------------------------------------------------------------------- #

# Input properties. Only another label key makes a new resource (its labels are other labels, so
# the replacement is created before the old one is deleted: no node is ever without its env label).
# The Docker host and ssh options are how the swarm is reached, not which labels exist: another
# URL for the same swarm (a local socket vs ssh://, a CI override) changes no node.
REPLACE_ON = ("label_key",)
UPDATE_IN_PLACE = ("docker_host", "ssh_opts", "node_names", "value", "take_over", "owner")


@contextmanager
def _connect(props: Mapping[str, Any]) -> Iterator[DockerClient]:
    client = docker_client(str(props["docker_host"]), [str(o) for o in props.get("ssh_opts") or []])
    try:
        yield client
    finally:
        client.close()


def swarm_id(client: DockerClient) -> str | None:
    """The ID of the swarm the client's engine is a manager of (None outside a swarm)."""
    cluster: Mapping[str, Any] = (client.info().get("Swarm") or {}).get("Cluster") or {}
    return str(cluster["ID"]) if cluster.get("ID") else None


def _outputs(props: Mapping[str, Any], swarm: str | None, labelled: Mapping[str, LabelledNode]) -> dict[str, Any]:
    inputs = {name: props[name] for name in (*REPLACE_ON, *UPDATE_IN_PLACE) if name in props}
    return {**inputs, "swarm_id": swarm, "nodes": [node.as_output() for node in labelled.values()]}


def _recorded(props: Mapping[str, Any]) -> list[LabelledNode]:
    return [LabelledNode.from_output(raw) for raw in props.get("nodes") or []]


def _marker(props: Mapping[str, Any], id_: str) -> str | None:
    """The marker this resource writes; None for state from before markers existed."""
    owner = props.get("owner")
    return marker_value(str(owner), id_) if owner else None


class NodeEnvLabelProvider(pulumi.dynamic.ResourceProvider):
    """CRUD of one stack's env labels. State `nodes` lists each listed name with the node it
    resolved to and the label's value and marker as last seen, which is how refresh shows drift;
    `swarm_id` is the swarm they are on."""

    # Nothing secret is captured: keep the serialized provider readable in the state.
    serialize_as_secret_always = False

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        failures: list[pulumi.dynamic.CheckFailure] = []
        names = news.get("node_names")
        if not (isinstance(names, list) and names and all(isinstance(n, str) and n for n in names)):  # pyright: ignore[reportUnknownVariableType]
            failures.append(pulumi.dynamic.CheckFailure("node_names", "a non-empty list of node hostnames or IDs"))
        for name in ("docker_host", "value", "label_key", "owner"):
            if not (isinstance(news.get(name), str) and news[name]):
                failures.append(pulumi.dynamic.CheckFailure(name, "a non-empty string"))
        return pulumi.dynamic.CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        id_ = uuid.uuid4().hex
        with _connect(props) as client:
            labelled = apply_labels(
                client,
                props["node_names"],
                props["value"],
                bool(props.get("take_over")),
                marker=_marker(props, id_),
                key=props["label_key"],
            )
            swarm = swarm_id(client)
        return pulumi.dynamic.CreateResult(id_=id_, outs=_outputs(props, swarm, labelled))

    def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
        with _connect(props) as client:
            labelled = read_labels(client, props["node_names"], key=props["label_key"])
            swarm = swarm_id(client)
        return pulumi.dynamic.ReadResult(id_=id_, outs=_outputs(props, swarm, labelled))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        replaces = [name for name in REPLACE_ON if olds.get(name) != news.get(name)]
        changed = [name for name in UPDATE_IN_PLACE if olds.get(name) != news.get(name)]
        # After a refresh the recorded values are the live ones: relabelled or vanished nodes show
        # here, and so do nodes without a marker (labelled before markers existed, or removed by hand).
        marking = bool(news.get("owner"))
        drifted = any(node.value != news.get("value") or (marking and node.marker is None) for node in _recorded(olds))
        return pulumi.dynamic.DiffResult(
            changes=bool(replaces or changed or drifted),
            replaces=replaces,
            # The replacement writes another label key, so creating it first removes nothing it
            # sets; and should the same key ever be replaced (`pulumi up --replace`, a renamed
            # resource), the old instance's delete leaves nodes whose marker is its successor's.
            delete_before_replace=False,
        )

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        old_marker = _marker(olds, id_)
        recorded = [node.node_id for node in _recorded(olds) if node.node_id]
        with _connect(news) as client:
            swarm = swarm_id(client)
            # dockerHost now reaches another swarm: what the old state says is about the old one.
            moved = olds.get("swarm_id") is not None and swarm is not None and olds["swarm_id"] != swarm
            labelled = apply_labels(
                client,
                news["node_names"],
                news["value"],
                bool(news.get("take_over")),
                marker=_marker(news, id_),
                previous_markers=[old_marker] if old_marker and not moved else [],
                ours=[] if moved else [olds["value"]],
                key=news["label_key"],
            )
            if not moved:
                kept = {node.node_id for node in labelled.values()}
                dropped = [node_id for node_id in recorded if node_id not in kept]
                remove_labels(client, dropped, olds["value"], marker=old_marker, key=news["label_key"])
        if moved:
            _give_up_old_swarm(olds, recorded, old_marker)
        return pulumi.dynamic.UpdateResult(outs=_outputs(news, swarm, labelled))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        with _connect(props) as client:
            ids = [node.node_id for node in _recorded(props) if node.node_id]
            remove_labels(client, ids, props["value"], marker=_marker(props, id_), key=props["label_key"])


def _give_up_old_swarm(olds: Mapping[str, Any], node_ids: Sequence[str], marker: str | None) -> None:
    """After a move to another swarm, removes this stack's labels from the old one through the old
    dockerHost. Best effort: a swarm that cannot be reached from here (decommissioned, or only from
    elsewhere) keeps them, and must not fail the move; remove them there by hand if it lives on."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    try:
        with _connect(olds) as old_client:
            remove_labels(old_client, node_ids, olds["value"], marker=marker, key=olds["label_key"])
    except (DockerException, RequestException, OSError):
        pass


# --------------------------------------------------------------------------- #
# the resource
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class NodeEnvLabelArgs:
    docker_host: str
    nodes: Sequence[str]  # hostnames or node IDs
    value: str
    owner: str  # `<project>/<stack>`, see stack_owner: the marker names it
    take_over: bool = False
    ssh_opts: Sequence[str] = ()
    label_key: str = ENV_LABEL_KEY

    @classmethod
    def from_settings(cls, settings: StackSettings, owner: str) -> NodeEnvLabelArgs:
        return cls(
            docker_host=settings.docker_host,
            nodes=settings.node_labels.nodes,
            value=settings.env_label,
            owner=owner,
            take_over=settings.node_labels.take_over,
            ssh_opts=settings.docker_ssh_opts,
        )


class NodeEnvLabel(pulumi.dynamic.Resource, module=PROJECT, name="NodeEnvLabel"):
    """`<label_key>=<value>` on the listed swarm nodes; `nodes` reports each one as last seen."""

    nodes: pulumi.Output[list[dict[str, str | None]]]
    swarm_id: pulumi.Output[str | None]

    def __init__(self, name: str, args: NodeEnvLabelArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {
            "docker_host": args.docker_host,
            "ssh_opts": list(args.ssh_opts),
            "node_names": list(args.nodes),
            "value": args.value,
            "take_over": args.take_over,
            "label_key": args.label_key,
            "owner": args.owner,
            "swarm_id": None,  # outputs: declared so the attributes exist
            "nodes": None,
        }
        super().__init__(NodeEnvLabelProvider(), name, props, opts)


def node_env_labels(settings: StackSettings) -> list[pulumi.Resource]:
    """What every service waits for: the stack's label resource, or nothing when
    wordpress-swarm:nodes.names is empty and operators label nodes by hand."""
    if not settings.node_labels.nodes:
        return []
    # The provider runs in another process: the stack's name travels in the inputs.
    owner = stack_owner(pulumi.get_stack(), pulumi.get_project())
    return [NodeEnvLabel("node-env-label", NodeEnvLabelArgs.from_settings(settings, owner))]
