"""Stack settings: every config key in one table (`KEYS`), parsed once into typed values before any
resource is declared.

`KEYS` is the one source of the keys, their defaults and what they mean: the parser reads its
defaults from it and docs/configuration.md's table is checked against it by a test. The structured
groups (`wordpress`, `mysql`, `logging`, `nodes`) are objects, which the project file's type system
can't declare, so Pulumi.yaml declares no config at all. Every problem names the full key and what
is allowed, and all problems are reported together.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    import pulumi

PublishMode = Literal["ingress", "host"]

# The namespace of the stack files' keys when no Pulumi runtime says otherwise (the project's name).
NAMESPACE = "wordpress-swarm"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Key:
    name: str  # "envLabel", or "<group>.<member>"
    default: Any  # REQUIRED, None (unset) or the value
    meaning: str  # docs/configuration.md's table renders it as is

    @property
    def group(self) -> str | None:
        group, dot, _ = self.name.partition(".")
        return group if dot else None

    @property
    def member(self) -> str:
        return self.name.rpartition(".")[2]


KEYS: tuple[Key, ...] = (
    Key(
        "envLabel",
        REQUIRED,
        "value of the `env` node label; every service is constrained to `node.labels.env==<envLabel>` "
        "(dev: `test`, prod: `prod`). Changing it alone moves every service",
    ),
    Key(
        "dockerHost",
        "unix:///var/run/docker.sock",
        "the swarm manager: local socket, or `ssh://user@manager` (an explicit `docker.Provider`)",
    ),
    Key(
        "dockerSshOpts",
        [],
        "extra ssh options for an `ssh://` host; the provider, the label resource, preflight and the tools add "
        "`BatchMode=yes`, `ConnectTimeout=10` and `ServerAlive…` after yours (ssh keeps the first value)",
    ),
    Key("wordpress.image", "wordpress:6.6.2-php8.2-apache", "pinned tag or digest; `latest` and untagged are refused"),
    Key("wordpress.replicas", 1, "0 to 100"),
    Key("wordpress.port", 30000, "published port, 1 to 65535 (dev uses 30080: one swarm may carry both stacks)"),
    Key("wordpress.publishMode", "ingress", "`ingress`, or `host` for single-node labs and kernels without IPVS"),
    Key(
        "wordpress.publicHost",
        None,
        "host name in the exported URL (default: the host of `dockerHost`); in host mode the port answers only "
        "on nodes running WordPress",
    ),
    Key(
        "wordpress.node",
        None,
        "hostname of the node holding `wp-content` (a node-local volume); WordPress is pinned there",
    ),
    Key("wordpress.keysGeneration", 1, "bump to regenerate WordPress's eight keys and salts on purpose"),
    Key("wordpress.cpus", 1.0, "CPU limit (a quarter is reserved)"),
    Key("wordpress.memoryMb", 512, "memory limit in MiB (a quarter is reserved)"),
    Key("mysql.image", "mysql:8.4.3", "pinned 8.x tag or digest"),
    Key("mysql.database", "wordpress", "database WordPress uses"),
    Key("mysql.user", "wordpress", "the application user WordPress logs in as"),
    Key("mysql.dataNode", None, "hostname of the node holding the data volume; MySQL is pinned there"),
    Key("mysql.rootPasswordGeneration", 1, "bump to rotate the root password on purpose"),
    Key("mysql.userPasswordGeneration", 1, "bump to rotate the application password on purpose"),
    Key(
        "mysql.encryptNetwork",
        True,
        "IPsec on the private overlay; `false` only where the nodes' network drops ESP (changing it replaces "
        "the network and both services)",
    ),
    Key("mysql.cpus", 1.0, "CPU limit"),
    Key("mysql.memoryMb", 1024, "memory limit in MiB"),
    Key("logging.image", "gliderlabs/logspout:v3.2.14", "pinned tag or digest"),
    Key("logging.route", None, "logspout route URI, e.g. `syslog+tls://logs.example.com:6514`"),
    Key("logging.cpus", 0.1, "CPU limit"),
    Key("logging.memoryMb", 64, "memory limit in MiB"),
    Key("backup.enabled", False, 'scheduled backups of the database and `wp-content` (docs/operations.md, "Backups")'),
    Key(
        "backup.node",
        None,
        "hostname of the node the backups are kept on; required with `backup.enabled`. `wp-content` is "
        "archived from this node's volume: set `wordpress.node` to the same node",
    ),
    Key("backup.intervalMinutes", 1440, "a backup every this many minutes, 5 to 10080 (aligned to UTC)"),
    Key("backup.keep", 7, "complete backups kept, 1 to 1000; older ones are deleted"),
    Key("backup.cpus", 0.5, "CPU limit of each backup job"),
    Key("backup.memoryMb", 256, "memory limit in MiB of each backup job"),
    Key("nodes.names", [], "nodes (hostnames or IDs) this stack labels `env=<envLabel>` itself"),
    Key("nodes.takeOver", False, "let the stack take listed nodes another environment's label holds"),
)

GROUPS: tuple[str, ...] = tuple(dict.fromkeys(key.group for key in KEYS if key.group))
# The top-level config keys, as the stack files name them (without the namespace).
CONFIG_KEYS: tuple[str, ...] = tuple(dict.fromkeys(key.group or key.name for key in KEYS))


# Top-level keys holding text (the rest hold lists or objects).
TEXT_KEYS: tuple[str, ...] = tuple(
    key.name for key in KEYS if key.group is None and (key.default is REQUIRED or isinstance(key.default, str))
)


def default(name: str) -> Any:
    return next(key.default for key in KEYS if key.name == name)


def group_defaults(group: str) -> dict[str, Any]:
    return {key.member: key.default for key in KEYS if key.group == group}


# A Docker label value we put in a placement constraint: no spaces, quotes or operators.
_LABEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
# repository[:port]/path:tag or @sha256:digest; a tag or digest is mandatory (see _Reader.image).
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
class LoggingSettings:
    image: str
    route: str | None
    cpus: float
    memory_mb: int


@dataclass(frozen=True)
class MySqlSettings:
    image: str
    database: str
    user: str
    # Node whose local volume holds the data; None leaves placement to the env label alone.
    data_node: str | None
    root_password_generation: int
    user_password_generation: int
    encrypt_network: bool
    cpus: float
    memory_mb: int


@dataclass(frozen=True)
class WordPressSettings:
    image: str
    replicas: int
    port: int
    publish_mode: PublishMode
    public_host: str
    node: str | None  # where wp-content's volume lives; None leaves placement to the env label alone
    keys_generation: int
    cpus: float
    memory_mb: int


@dataclass(frozen=True)
class BackupSettings:
    enabled: bool
    node: str | None  # set whenever enabled
    interval_minutes: int
    keep: int
    cpus: float
    memory_mb: int


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
    backup: BackupSettings
    node_labels: NodeLabelSettings

    @property
    def placement_constraint(self) -> str:
        return f"node.labels.env=={self.env_label}"


T = TypeVar("T")


class _Reader:
    """Collects problems instead of stopping at the first, so one run shows every bad key."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.problems: list[str] = []

    def fail(self, key: str, got: object, allowed: str) -> None:
        self.problems.append(f"{self.namespace}:{key}: got {got!r}; allowed: {allowed}")

    def group(self, key: str, raw: object) -> dict[str, Any]:
        defaults = group_defaults(key)
        if raw is None:
            return defaults
        if not isinstance(raw, Mapping):
            self.fail(key, raw, f"an object with keys {', '.join(defaults)}")
            return defaults
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

    def strings(self, key: str, value: object, pattern: re.Pattern[str] | None, allowed: str) -> tuple[str, ...]:
        if isinstance(value, list) and all(
            isinstance(item, str) and (pattern is None or pattern.match(item))
            for item in value  # pyright: ignore[reportUnknownVariableType]
        ):
            return tuple(value)  # pyright: ignore[reportUnknownArgumentType]
        self.fail(key, value, allowed)
        return ()

    def image(self, key: str, value: object) -> str:
        allowed = "a non-empty image reference with a tag other than 'latest' or a @sha256 digest"
        match = _IMAGE_RE.match(value) if isinstance(value, str) else None
        if match is None or not (match["tag"] or match["digest"]) or (match["tag"] == "latest" and not match["digest"]):
            self.fail(key, value, allowed)
            return ""
        return str(value)

    def cpus(self, key: str, group: Mapping[str, Any]) -> float:
        return self.number(f"{key}.cpus", group["cpus"], 0, 64)

    def memory_mb(self, key: str, group: Mapping[str, Any]) -> int:
        return self.integer(f"{key}.memoryMb", group["memoryMb"], 16, 1024 * 1024)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_settings(config: Mapping[str, Any], namespace: str = NAMESPACE) -> StackSettings:
    """Turns decoded config values (keys without the namespace) into StackSettings.

    Raises SettingsError listing every problem; nothing is declared before this returns.
    """
    read = _Reader(namespace)
    env_label = read.matching(
        "envLabel",
        config.get("envLabel"),
        _LABEL_RE,
        "1-63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit",
    )
    docker_host = read.matching(
        "dockerHost",
        config.get("dockerHost", default("dockerHost")),
        _DOCKER_HOST_RE,
        "a Docker host URL: unix://, tcp://, ssh://user@host or npipe://",
    )
    ssh_opts = read.strings(
        "dockerSshOpts", config.get("dockerSshOpts", default("dockerSshOpts")), None, "a list of strings (ssh options)"
    )

    log = read.group("logging", config.get("logging"))
    logging_settings = LoggingSettings(
        image=read.image("logging.image", log["image"]),
        route=read.optional(
            "logging.route",
            log["route"],
            _LOG_ROUTE_RE,
            "a logspout route URI such as syslog+tls://logs.example.com:6514",
        ),
        cpus=read.cpus("logging", log),
        memory_mb=read.memory_mb("logging", log),
    )

    db = read.group("mysql", config.get("mysql"))
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
        cpus=read.cpus("mysql", db),
        memory_mb=read.memory_mb("mysql", db),
    )

    wp = read.group("wordpress", config.get("wordpress"))
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
        node=read.optional("wordpress.node", wp["node"], _HOSTNAME_RE, "a node hostname"),
        keys_generation=read.integer("wordpress.keysGeneration", wp["keysGeneration"], 1, 1_000_000),
        cpus=read.cpus("wordpress", wp),
        memory_mb=read.memory_mb("wordpress", wp),
    )

    bk = read.group("backup", config.get("backup"))
    backup = BackupSettings(
        enabled=read.boolean("backup.enabled", bk["enabled"]),
        node=read.optional("backup.node", bk["node"], _HOSTNAME_RE, "a node hostname"),
        interval_minutes=read.integer("backup.intervalMinutes", bk["intervalMinutes"], 5, 10080),
        keep=read.integer("backup.keep", bk["keep"], 1, 1000),
        cpus=read.cpus("backup", bk),
        memory_mb=read.memory_mb("backup", bk),
    )
    if backup.enabled and backup.node is None:
        read.fail("backup.node", None, "a node hostname: with backup.enabled the backups need a node to live on")

    nodes_group = read.group("nodes", config.get("nodes"))
    node_labels = NodeLabelSettings(
        nodes=read.strings("nodes.names", nodes_group["names"], _HOSTNAME_RE, "a list of node hostnames or node IDs"),
        take_over=read.boolean("nodes.takeOver", nodes_group["takeOver"]),
    )

    if read.problems:
        raise SettingsError(read.problems)
    return StackSettings(
        env_label=env_label,
        docker_host=docker_host,
        docker_ssh_opts=ssh_opts,
        logging=logging_settings,
        mysql=mysql,
        wordpress=wordpress,
        backup=backup,
        node_labels=node_labels,
    )


def host_of_docker_url(docker_host: str) -> str:
    """Where published ports are reached when nothing else is said: the manager of an ssh:// or
    tcp:// host, this machine for a local socket."""
    scheme, _, rest = docker_host.partition("://")
    if scheme in ("ssh", "tcp"):
        return rest.rpartition("@")[2].split(":")[0].split("/")[0] or "localhost"
    return "localhost"


def read_settings(config: pulumi.Config | None = None) -> StackSettings:
    """Reads this stack's config (the project's namespace) through the Pulumi SDK and parses it."""
    import pulumi

    config = config or pulumi.Config()
    raw: dict[str, Any] = {}
    problems: list[str] = []
    for key in CONFIG_KEYS:
        if key in TEXT_KEYS:
            value: Any = config.get(key)
        else:
            try:
                # Lists and objects arrive as JSON text.
                value = config.get_object(key)
            except pulumi.ConfigTypeError as error:
                problems.append(
                    f"{config.name}:{key}: got {error.value!r}; allowed: a YAML object or list in the stack file"
                )
                continue
        if value is not None:
            raw[key] = value
    if problems:
        raise SettingsError(problems)
    return parse_settings(raw, namespace=config.name)
