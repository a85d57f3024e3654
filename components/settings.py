"""Stack settings: parsed once from Pulumi config into typed values, validated before any resource.

Scalar keys are declared with types and defaults in Pulumi.yaml; the structured groups
(`wordpress`, `mysql`, `logging`, `nodes`) are objects, which the project file's type system cannot
describe, so their members, defaults and rules live here. Every problem names the full key and what
is allowed, and all problems are reported together.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import pulumi

PROJECT = "wordpress-swarm"

PublishMode = Literal["ingress", "host"]

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"

# A Docker label value we put in a placement constraint: no spaces, quotes or operators.
_LABEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
# repository[:port]/path:tag or @sha256:digest; a tag or digest is mandatory (see _check_image).
_IMAGE_RE = re.compile(
    r"^(?P<repo>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_MYSQL_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,32}$")
_LOG_ROUTE_RE = re.compile(r"^[a-z][a-z0-9+]*://[^\s'\"]+$")
_DOCKER_HOST_RE = re.compile(r"^(unix|tcp|ssh|npipe)://\S+$")


class SettingsError(ValueError):
    """Raised before any resource is declared; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid stack configuration:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class Limits:
    cpus: float
    memory_mb: int


@dataclass(frozen=True)
class LoggingSettings:
    image: str
    route: str | None
    limits: Limits


@dataclass(frozen=True)
class MySqlSettings:
    image: str
    database: str
    user: str
    # Node whose local volume holds the data; None leaves placement to the env label alone.
    data_node: str | None
    # Bumping a generation regenerates that password on purpose (see README, "Rotation").
    root_password_generation: int
    user_password_generation: int
    # IPsec on the private overlay; off only where the nodes' network drops ESP between hosts.
    encrypt_network: bool
    limits: Limits


@dataclass(frozen=True)
class WordPressSettings:
    image: str
    replicas: int
    port: int
    publish_mode: PublishMode
    public_host: str
    # Bumping it regenerates the keys and salts on purpose: every session ends (README, "Rotation").
    keys_generation: int
    limits: Limits


@dataclass(frozen=True)
class NodeLabelSettings:
    """Nodes (hostname or node ID) that this stack labels env=<label>, and whether it may take
    a node another environment's label holds."""

    nodes: tuple[str, ...]
    take_over: bool


@dataclass(frozen=True)
class StackSettings:
    env_label: str
    docker_host: str
    docker_ssh_opts: tuple[str, ...]
    logging: LoggingSettings
    mysql: MySqlSettings
    wordpress: WordPressSettings
    node_labels: NodeLabelSettings

    @property
    def placement_constraint(self) -> str:
        return f"node.labels.env=={self.env_label}"


# Defaults of the structured groups. Images are pinned: a stack may move them, never to "latest".
LOGGING_DEFAULTS: dict[str, Any] = {
    "image": "gliderlabs/logspout:v3.2.14",
    "route": None,
    "cpus": 0.1,
    "memoryMb": 64,
}
MYSQL_DEFAULTS: dict[str, Any] = {
    "image": "mysql:8.4.3",
    "database": "wordpress",
    "user": "wordpress",
    "dataNode": None,
    "rootPasswordGeneration": 1,
    "userPasswordGeneration": 1,
    "encryptNetwork": True,
    "cpus": 1.0,
    "memoryMb": 1024,
}
WORDPRESS_DEFAULTS: dict[str, Any] = {
    "image": "wordpress:6.6.2-php8.2-apache",
    "replicas": 1,
    "port": 30000,
    "publishMode": "ingress",
    "publicHost": None,
    "keysGeneration": 1,
    "cpus": 1.0,
    "memoryMb": 512,
}
NODES_DEFAULTS: dict[str, Any] = {"names": [], "takeOver": False}

T = TypeVar("T")


class _Reader:
    """Collects problems instead of stopping at the first, so one run shows every bad key."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, key: str, got: object, allowed: str) -> None:
        self.problems.append(f"{PROJECT}:{key}: got {got!r}; allowed: {allowed}")

    def group(self, key: str, raw: object, defaults: Mapping[str, Any]) -> dict[str, Any]:
        if raw is None:
            return dict(defaults)
        if not isinstance(raw, Mapping):
            self.fail(key, raw, f"an object with keys {', '.join(defaults)}")
            return dict(defaults)
        merged = dict(defaults)
        for member, value in raw.items():  # pyright: ignore[reportUnknownVariableType]
            if member not in defaults:
                self.fail(f"{key}.{member}", value, f"one of the keys {', '.join(defaults)}")
            else:
                merged[member] = value
        return merged

    def check(
        self, key: str, value: object, test: Callable[[Any], bool], allowed: str, convert: Callable[[Any], T]
    ) -> T | None:
        try:
            if test(value):
                return convert(value)
        except (TypeError, ValueError):
            pass
        self.fail(key, value, allowed)
        return None

    def boolean(self, key: str, value: object) -> bool:
        return bool(self.check(key, value, lambda v: isinstance(v, bool), "true or false", bool))

    def integer(self, key: str, value: object, low: int, high: int) -> int:
        got = self.check(key, value, lambda v: _is_int(v) and low <= v <= high, f"an integer from {low} to {high}", int)
        return low if got is None else got

    def number(self, key: str, value: object, low: float, high: float) -> float:
        got = self.check(
            key,
            value,
            lambda v: (_is_int(v) or isinstance(v, float)) and low < v <= high,
            f"a number greater than {low} and at most {high}",
            float,
        )
        return high if got is None else got

    def matching(self, key: str, value: object, pattern: re.Pattern[str], allowed: str) -> str:
        got = self.check(key, value, lambda v: isinstance(v, str) and bool(pattern.match(v)), allowed, str)
        return "" if got is None else got

    def optional(self, key: str, value: object, pattern: re.Pattern[str], allowed: str) -> str | None:
        return None if value is None else self.matching(key, value, pattern, allowed + ", or null")

    def image(self, key: str, value: object) -> str:
        allowed = "a non-empty image reference with a tag other than 'latest' or a @sha256 digest"
        match = _IMAGE_RE.match(value) if isinstance(value, str) else None
        if match is None or not (match["tag"] or match["digest"]) or (match["tag"] == "latest" and not match["digest"]):
            self.fail(key, value, allowed)
            return ""
        return str(value)

    def limits(self, key: str, group: Mapping[str, Any]) -> Limits:
        return Limits(
            cpus=self.number(f"{key}.cpus", group["cpus"], 0, 64),
            memory_mb=self.integer(f"{key}.memoryMb", group["memoryMb"], 16, 1024 * 1024),
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_settings(config: Mapping[str, Any]) -> StackSettings:
    """Turns decoded config values (keys without the project prefix) into StackSettings.

    Raises SettingsError listing every problem; nothing is declared before this returns.
    """
    read = _Reader()
    env_label = read.matching(
        "envLabel",
        config.get("envLabel"),
        _LABEL_RE,
        "1-63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit",
    )
    docker_host = read.matching(
        "dockerHost",
        config.get("dockerHost", DEFAULT_DOCKER_HOST),
        _DOCKER_HOST_RE,
        "a Docker host URL: unix://, tcp://, ssh://user@host or npipe://",
    )
    ssh_opts = config.get("dockerSshOpts", [])
    if not (isinstance(ssh_opts, list) and all(isinstance(o, str) for o in ssh_opts)):  # pyright: ignore[reportUnknownVariableType]
        read.fail("dockerSshOpts", ssh_opts, "a list of strings (ssh options)")
        ssh_opts = []

    log = read.group("logging", config.get("logging"), LOGGING_DEFAULTS)
    logging = LoggingSettings(
        image=read.image("logging.image", log["image"]),
        route=read.optional(
            "logging.route",
            log["route"],
            _LOG_ROUTE_RE,
            "a logspout route URI such as syslog+tls://logs.example.com:6514",
        ),
        limits=read.limits("logging", log),
    )

    db = read.group("mysql", config.get("mysql"), MYSQL_DEFAULTS)
    mysql = MySqlSettings(
        image=read.image("mysql.image", db["image"]),
        database=read.matching("mysql.database", db["database"], _MYSQL_NAME_RE, "1-32 letters, digits or '_'"),
        user=read.matching("mysql.user", db["user"], _MYSQL_NAME_RE, "1-32 letters, digits or '_'"),
        data_node=read.optional("mysql.dataNode", db["dataNode"], _HOSTNAME_RE, "a node hostname"),
        root_password_generation=read.integer(
            "mysql.rootPasswordGeneration", db["rootPasswordGeneration"], 1, 1_000_000
        ),
        user_password_generation=read.integer(
            "mysql.userPasswordGeneration", db["userPasswordGeneration"], 1, 1_000_000
        ),
        encrypt_network=read.boolean("mysql.encryptNetwork", db["encryptNetwork"]),
        limits=read.limits("mysql", db),
    )

    wp = read.group("wordpress", config.get("wordpress"), WORDPRESS_DEFAULTS)
    publish_mode = read.check(
        "wordpress.publishMode", wp["publishMode"], lambda v: v in ("ingress", "host"), "'ingress' or 'host'", str
    )
    public_host = read.optional("wordpress.publicHost", wp["publicHost"], _HOSTNAME_RE, "a host name or IP address")
    wordpress = WordPressSettings(
        image=read.image("wordpress.image", wp["image"]),
        replicas=read.integer("wordpress.replicas", wp["replicas"], 0, 100),
        port=read.integer("wordpress.port", wp["port"], 1, 65535),
        publish_mode="host" if publish_mode == "host" else "ingress",
        public_host=public_host or host_of_docker_url(docker_host),
        keys_generation=read.integer("wordpress.keysGeneration", wp["keysGeneration"], 1, 1_000_000),
        limits=read.limits("wordpress", wp),
    )

    nodes_group = read.group("nodes", config.get("nodes"), NODES_DEFAULTS)
    names: object = nodes_group["names"]
    if not (isinstance(names, list) and all(isinstance(n, str) and _HOSTNAME_RE.match(n) for n in names)):  # pyright: ignore[reportUnknownVariableType]
        read.fail("nodes.names", names, "a list of node hostnames or node IDs")
        names = []
    take_over = read.boolean("nodes.takeOver", nodes_group["takeOver"])
    node_labels = NodeLabelSettings(nodes=tuple(names), take_over=take_over)  # pyright: ignore[reportUnknownArgumentType]

    if read.problems:
        raise SettingsError(read.problems)
    return StackSettings(
        env_label=env_label,
        docker_host=docker_host,
        docker_ssh_opts=tuple(ssh_opts),  # pyright: ignore[reportUnknownArgumentType]
        logging=logging,
        mysql=mysql,
        wordpress=wordpress,
        node_labels=node_labels,
    )


def host_of_docker_url(docker_host: str) -> str:
    """Where published ports are reached when nothing else is said: the manager of an ssh:// or
    tcp:// host, this machine for a local socket."""
    scheme, _, rest = docker_host.partition("://")
    if scheme in ("ssh", "tcp"):
        return rest.rpartition("@")[2].split(":")[0].split("/")[0] or "localhost"
    return "localhost"


# Keys read from Pulumi config; the structured ones arrive as JSON text.
CONFIG_KEYS = ("envLabel", "dockerHost", "dockerSshOpts", "logging", "mysql", "wordpress", "nodes")


def read_settings(config: pulumi.Config | None = None) -> StackSettings:
    """Reads this stack's config through the Pulumi SDK and parses it."""
    config = config or pulumi.Config(PROJECT)
    raw: dict[str, Any] = {}
    problems: list[str] = []
    for key in CONFIG_KEYS:
        text = config.get(key)
        if text is None:
            continue
        if key in ("envLabel", "dockerHost"):
            raw[key] = text
            continue
        try:
            raw[key] = json.loads(text)
        except json.JSONDecodeError:
            problems.append(f"{PROJECT}:{key}: got {text!r}; allowed: a YAML object/list in the stack file")
    if problems:
        raise SettingsError(problems)
    return parse_settings(raw)
